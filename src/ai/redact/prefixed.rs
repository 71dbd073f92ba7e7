//! The key formats with a prefix of their own (gitleaks' default rule
//! set): one table, which `rules` puts into the first pass where
//! `Rule::Prefixed` stands, each as `Rule::Whole(placeholder)`.

/// Key formats with a prefix of their own, from gitleaks' default rules
/// (`config/gitleaks.toml`): (placeholder, pattern). Matched
/// wherever they are.
pub(super) const PREFIXED: &[(&str, &str)] = &[
    (
        "github_token",
        r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}",
    ),
    (
        "gitlab_token",
        r"gl(?:pat|dt|rt|ptt|ft|imt|soat|cbt|oas|agent|ffct)-[A-Za-z0-9_-]{20,}",
    ),
    ("slack_token", r"(?:xox[abeprs]|xapp)-[A-Za-z0-9-]{10,}"),
    ("google_key", r"AIza[A-Za-z0-9_-]{35}"),
    (
        "google_token",
        r"ya29\.[A-Za-z0-9_-]{20,}|GOCSPX-[A-Za-z0-9_-]{28}",
    ),
    ("sendgrid_key", r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    ("pypi_token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
    ("age_key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    ("vault_token", r"hv[sb]\.[A-Za-z0-9_-]{24,}"),
    (
        "doppler_token",
        r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}",
    ),
    (
        "grafana_token",
        r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2}",
    ),
    ("sentry_token", r"sntry[us]_[A-Za-z0-9+/=_]{40,}"),
    ("postman_key", r"PMAK-[A-Fa-f0-9]{24}-[A-Fa-f0-9]{34}"),
    ("digitalocean_token", r"do[opr]_v1_[a-f0-9]{64}"),
    ("shopify_token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("newrelic_key", r"NR(?:AK|II|JS)-[A-Za-z0-9]{19,32}"),
    (
        "dynatrace_token",
        r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}",
    ),
    ("sendinblue_key", r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
    ("square_token", r"sq0(?:atp|csp)-[A-Za-z0-9_-]{22,}"),
    ("atlassian_token", r"ATATT3[A-Za-z0-9_=-]{100,}"),
    ("linear_key", r"lin_api_[A-Za-z0-9]{40}"),
    ("heroku_key", r"HRKU-AA[A-Za-z0-9_-]{58}"),
    (
        "planetscale_token",
        r"pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_.=-]{32,64}",
    ),
    (
        "flyio_token",
        r"fo1_[A-Za-z0-9_-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3}",
    ),
    ("onepassword_token", r"ops_eyJ[A-Za-z0-9+/]{100,}={0,3}"),
    ("artifactory_key", r"AKCp[A-Za-z0-9]{69}"),
];

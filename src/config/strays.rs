//! Environment variables that look like loggate's settings but are not
//! one: `JWT_SECERT=…` would otherwise start a gateway with open
//! subscriptions, and `LOGGATE_ENVIRONMENT=production` one in development
//! mode with the dev tokens, without a word.
//!
//! A name is a stray when it is not a name loggate reads and either starts
//! with one of loggate's prefixes ([`PREFIXES`]) or is within a small edit
//! distance of a known name. Names that platforms set on their own
//! (Kubernetes' service links, `LOGGATE_PORT=tcp://…` for a service called
//! `loggate`) are not strays. Development warns about each one; production
//! refuses to start (`validate.rs`).
//!
//! Pure functions over the names, so the tests need no process
//! environment; `Config::from_env` feeds it the real one.

use super::ENV_NAMES;

/// Names the `loggate` command-line clients read (`tail`, `publish`,
/// `channels`): a shell that runs both the gateway and the CLI holds them,
/// and they are not strays.
pub const CLI_ENV_NAMES: &[&str] = &[
    "LOGGATE_URL",
    "LOGGATE_TOKEN",
    "LOGGATE_PROFILE",
    "LOGGATE_CLI_CONFIG",
];

/// Prefixes only loggate's own settings use here: any other name that
/// starts with one is taken for a mistake. `FLY_` is not among them (Fly.io
/// sets `FLY_REGION`, `FLY_ALLOC_ID` and more in every machine), nor are
/// `AUTH_` and `ADMIN_`, which other software uses; typos of those names
/// are still caught by their edit distance.
pub const PREFIXES: &[&str] = &[
    "LOGGATE_",
    "JWT_",
    "NATS_",
    "HISTORY_",
    "PUBLISH_",
    "AI_",
    "OPENROUTER_",
    "SSE_",
    "ALERT_",
    "LOG_BUFFER_",
];

/// An environment variable that looks like a setting and is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayEnv {
    pub name: String,
    /// The known name it is closest to, when one is close enough to be a
    /// plausible meaning.
    pub closest: Option<&'static str>,
}

impl std::fmt::Display for StrayEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a loggate setting and is ignored", self.name)?;
        match self.closest {
            Some(known) => write!(f, " (did you mean {known}?)"),
            None => Ok(()),
        }
    }
}

/// The strays among `vars` (name, value), in the order given. The value
/// is only looked at to recognise a Kubernetes service link; it is never
/// kept or shown, since it may be a secret.
pub fn strays<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<StrayEnv> {
    vars.into_iter()
        .filter(|(name, _)| !is_known(name))
        .filter(|(name, value)| !is_kubernetes_link(name, value))
        .filter_map(|(name, _)| {
            let (closest, distance) = closest_known(name)?;
            let prefixed = PREFIXES.iter().any(|p| name.starts_with(p));
            let near = distance <= typo_distance(closest);
            (prefixed || near).then(|| StrayEnv {
                name: name.to_owned(),
                closest: if let Some(known) = without_app_prefix(name) {
                    Some(known)
                } else if distance <= plausible_distance(name) {
                    Some(closest)
                } else {
                    shortened_or_extended(name)
                },
            })
        })
        .collect()
}

fn is_known(name: &str) -> bool {
    ENV_NAMES.contains(&name) || CLI_ENV_NAMES.contains(&name)
}

fn known_names() -> impl Iterator<Item = &'static str> {
    ENV_NAMES.iter().chain(CLI_ENV_NAMES).copied()
}

/// The edit distance under which a name is taken for a typo of `known`.
/// Short names get none: `HOST` and `PORT` are one letter from `POST`,
/// `HOSTS` and many names other software uses.
fn typo_distance(known: &str) -> usize {
    match known.len() {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

/// How far a name may be from the closest known one for the message to
/// suggest it (`NATS_USER` → `NATS_URL`); further than this, a suggestion
/// would only confuse.
fn plausible_distance(name: &str) -> usize {
    (name.len() / 3).max(1)
}

/// The known name nearest to `name` (comparing without case, so
/// `jwt_secret` is one step from `JWT_SECRET`, not ten).
fn closest_known(name: &str) -> Option<(&'static str, usize)> {
    let upper = name.to_ascii_uppercase();
    known_names()
        .map(|known| {
            let d = osa_distance(upper.as_bytes(), known.as_bytes());
            // A name that differs only in case is still wrong: environment
            // names are case-sensitive.
            (known, d.max(usize::from(name != known)))
        })
        .min_by_key(|&(known, d)| (d, known))
}

/// `LOGGATE_PORT` → `PORT`, `LOGGATE_JWT_SECRET` → `JWT_SECRET`: the
/// setting with the application's name put in front, as many deploy
/// files name everything.
fn without_app_prefix(name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix("LOGGATE_")?;
    known_names().find(|known| *known == rest)
}

/// A known name that this one shortens or extends, in its first word
/// (`LOGGATE_ENVIRONMENT` → `LOGGATE_ENV`, `PUBLISH_RATE` →
/// `PUBLISH_RATE_PER_SEC`, `AI_KEY` → `AI_API_KEY`): too many letters apart
/// for the edit distance, yet plainly what was meant. The nearest in
/// length wins.
fn shortened_or_extended(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let first_word = |s: &str| s.split('_').next().unwrap_or_default().to_owned();
    known_names()
        .filter(|known| first_word(known) == first_word(&upper))
        .filter(|known| {
            is_subsequence(known.as_bytes(), upper.as_bytes())
                || is_subsequence(upper.as_bytes(), known.as_bytes())
        })
        .min_by_key(|known| (known.len().abs_diff(upper.len()), *known))
}

/// Whether every byte of `short` appears in `long`, in order.
fn is_subsequence(short: &[u8], long: &[u8]) -> bool {
    let mut rest = long.iter();
    short.iter().all(|b| rest.any(|l| l == b))
}

/// Kubernetes gives every pod `<SERVICE>_SERVICE_HOST`,
/// `<SERVICE>_SERVICE_PORT[_<NAME>]`, `<SERVICE>_PORT=tcp://…` and
/// `<SERVICE>_PORT_<N>_<PROTO>[_PROTO|_PORT|_ADDR]` for each service in its
/// namespace, so a service named `nats` or `loggate` makes names with our
/// prefixes that nobody wrote.
fn is_kubernetes_link(name: &str, value: &str) -> bool {
    if let Some((_, rest)) = name.split_once("_SERVICE_")
        && (rest == "HOST" || rest == "PORT" || rest.starts_with("PORT_"))
    {
        return true;
    }
    // `<SERVICE>_PORT_<N>_<PROTO>` and its `_PROTO`, `_PORT`, `_ADDR`.
    if let Some((_, rest)) = name.rsplit_once("_PORT_") {
        let rest = rest
            .strip_suffix("_PROTO")
            .or_else(|| rest.strip_suffix("_PORT"))
            .or_else(|| rest.strip_suffix("_ADDR"))
            .unwrap_or(rest);
        return rest.split_once('_').is_some_and(|(port, proto)| {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && matches!(proto, "TCP" | "UDP" | "SCTP")
        });
    }
    name.ends_with("_PORT")
        && ["tcp://", "udp://", "sctp://"]
            .iter()
            .any(|scheme| value.starts_with(scheme))
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours (`SECERT` → `SECRET` is one step), each
/// costing 1. Names are short, so the full table is cheap.
fn osa_distance(a: &[u8], b: &[u8]) -> usize {
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(vars: &[(&str, &str)]) -> Vec<(String, Option<&'static str>)> {
        strays(vars.iter().copied())
            .into_iter()
            .map(|s| (s.name, s.closest))
            .collect()
    }

    #[test]
    fn the_distance_counts_a_swap_as_one_step() {
        assert_eq!(osa_distance(b"JWT_SECERT", b"JWT_SECRET"), 1);
        assert_eq!(osa_distance(b"PORT", b"PORT"), 0);
        assert_eq!(osa_distance(b"", b"ABC"), 3);
        assert_eq!(osa_distance(b"ADMIN_TOKN", b"ADMIN_TOKEN"), 1);
        assert_eq!(osa_distance(b"KITTEN", b"SITTING"), 3);
    }

    #[test]
    fn typos_and_prefixed_names_are_strays_naming_the_closest_setting() {
        let found = names(&[
            ("JWT_SECERT", "x"),
            ("LOGGATE_ENVIRONMENT", "production"),
            ("ADMIN_TOKN", "x"),
            ("SERVCE_TOKENS", "etl=x"),
            ("ALLOWED_ORIGIN", "https://a.example"),
            ("jwt_secret", "x"),
            ("NATS_USER", "me"),
            ("PUBLISH_RATE", "10"),
            ("AI_KEY", "x"),
            ("OPENROUTER_KEY", "x"),
            ("LOGGATE_SOMETHING_ELSE_ENTIRELY", "1"),
            ("LOGGATE_JWT_SECRET", "x"),
        ]);
        assert_eq!(
            found,
            vec![
                ("JWT_SECERT".into(), Some("JWT_SECRET")),
                ("LOGGATE_ENVIRONMENT".into(), Some("LOGGATE_ENV")),
                ("ADMIN_TOKN".into(), Some("ADMIN_TOKEN")),
                ("SERVCE_TOKENS".into(), Some("SERVICE_TOKENS")),
                ("ALLOWED_ORIGIN".into(), Some("ALLOWED_ORIGINS")),
                ("jwt_secret".into(), Some("JWT_SECRET")),
                ("NATS_USER".into(), Some("NATS_URL")),
                ("PUBLISH_RATE".into(), Some("PUBLISH_RATE_PER_SEC")),
                ("AI_KEY".into(), Some("AI_API_KEY")),
                ("OPENROUTER_KEY".into(), Some("OPENROUTER_API_KEY")),
                ("LOGGATE_SOMETHING_ELSE_ENTIRELY".into(), None),
                ("LOGGATE_JWT_SECRET".into(), Some("JWT_SECRET")),
            ]
        );
    }

    #[test]
    fn every_known_name_passes() {
        let all: Vec<(&str, &str)> = known_names().map(|n| (n, "x")).collect();
        assert_eq!(names(&all), vec![]);
    }

    /// What shells, CI, cargo, container platforms and clouds set by
    /// themselves must never stop a production start.
    #[test]
    fn what_platforms_set_is_not_a_stray() {
        let platform = [
            "PATH",
            "HOME",
            "USER",
            "SHELL",
            "TERM",
            "PWD",
            "OLDPWD",
            "LANG",
            "LC_ALL",
            "HOSTNAME",
            "HOSTTYPE",
            "SHLVL",
            "LOGNAME",
            "MAIL",
            "TZ",
            "EDITOR",
            "DISPLAY",
            "SSH_AUTH_SOCK",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "RUST_BACKTRACE",
            "RUST_LOG_STYLE",
            "RUST_MIN_STACK",
            "RUST_TEST_THREADS",
            "RUSTFLAGS",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "NO_COLOR",
            "CLICOLOR",
            "CLICOLOR_FORCE",
            "FLY_ALLOC_ID",
            "FLY_IMAGE_REF",
            "FLY_MACHINE_ID",
            "FLY_MACHINE_VERSION",
            "FLY_PRIVATE_IP",
            "FLY_PROCESS_GROUP",
            "FLY_PUBLIC_IP",
            "FLY_REGION",
            "FLY_VM_MEMORY_MB",
            "FLY_SSH",
            "PRIMARY_REGION",
            "RENDER",
            "RENDER_SERVICE_ID",
            "RENDER_SERVICE_NAME",
            "RENDER_EXTERNAL_URL",
            "RENDER_EXTERNAL_HOSTNAME",
            "RENDER_GIT_COMMIT",
            "RENDER_GIT_BRANCH",
            "RENDER_INSTANCE_ID",
            "IS_PULL_REQUEST",
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
            "KUBERNETES_SERVICE_PORT_HTTPS",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "CI",
            "GITHUB_ACTIONS",
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "NPM_TOKEN",
            "HF_TOKEN",
            "CI_JOB_TOKEN",
            "JAVA_HOME",
            "container",
            "DEBIAN_FRONTEND",
            "MALLOC_CONF",
            "_RJEM_MALLOC_CONF",
            "TOKIO_WORKER_THREADS",
            "NODE_ENV",
            "PYTHONPATH",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "OTEL_SERVICE_NAME",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "API_TOKEN",
            "LOG_LEVEL",
            "HOSTS",
            "POST",
            "PORTS",
            "_",
        ];
        let vars: Vec<(&str, &str)> = platform.iter().map(|n| (*n, "x")).collect();
        assert_eq!(names(&vars), vec![]);
    }

    #[test]
    fn kubernetes_service_links_are_not_strays() {
        let links = [
            ("NATS_SERVICE_HOST", "10.0.0.5"),
            ("NATS_SERVICE_PORT", "4222"),
            ("NATS_SERVICE_PORT_CLIENT", "4222"),
            ("NATS_PORT", "tcp://10.0.0.5:4222"),
            ("NATS_PORT_4222_TCP", "tcp://10.0.0.5:4222"),
            ("NATS_PORT_4222_TCP_PROTO", "tcp"),
            ("NATS_PORT_4222_TCP_PORT", "4222"),
            ("NATS_PORT_4222_TCP_ADDR", "10.0.0.5"),
            ("LOGGATE_PORT", "tcp://10.0.0.9:3002"),
            ("LOGGATE_SERVICE_HOST", "10.0.0.9"),
            ("LOGGATE_PORT_3002_TCP_ADDR", "10.0.0.9"),
        ];
        assert_eq!(names(&links), vec![]);
        // Someone who meant PORT is still told.
        assert_eq!(
            names(&[("LOGGATE_PORT", "8080"), ("NATS_PORT_X_TCP", "1")]),
            vec![
                ("LOGGATE_PORT".into(), Some("PORT")),
                ("NATS_PORT_X_TCP".into(), None),
            ]
        );
    }
}

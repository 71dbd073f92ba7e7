//! Subscriber authentication (JWT or static token), channel grants, and
//! where a request's token may come from.
//!
//! The `loggate_token` cookie is special: a browser attaches it to requests
//! whatever page makes them, so on its own it proves nothing about who
//! asked. It counts only on requests from the gateway's own pages, from an
//! origin listed in `ALLOWED_ORIGINS`, or from clients that are not
//! browser pages of another site (see [`PageOrigin`]). `*` in
//! `ALLOWED_ORIGINS` lends it to no one. A header or `?token=` counts from
//! anywhere: a page can only send one it already holds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{AuthError, MAX_TOKEN_BYTES};
use crate::channel::{ChannelPattern, ROOT};
use crate::config::{AuthConfig, ConfigError};
use crate::digest::sha256;

/// What a credential lets its holder read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Open mode or `AUTH_TOKEN`: every channel.
    All,
    /// The union of these patterns and everything below them.
    Patterns(Vec<ChannelPattern>),
}

impl Grants {
    /// May a subscription to `requested` be opened? Only if every channel it
    /// can ever match lies under a grant. One grant must cover it on its
    /// own: segments are unbounded strings, so a `*` in the request can only
    /// be covered by a `*` in a grant, and a union of grants that each cover
    /// part of a request never covers all of it.
    pub fn allows(&self, requested: &ChannelPattern) -> bool {
        match self {
            Grants::All => true,
            Grants::Patterns(grants) => grants.iter().any(|g| g.covers(requested)),
        }
    }

    /// Checks every requested pattern; the first one not covered is named.
    pub fn check(&self, requested: &[ChannelPattern]) -> Result<(), AuthError> {
        match requested.iter().find(|p| !self.allows(p)) {
            Some(p) => Err(AuthError::NotGranted(p.as_str().to_owned())),
            None => Ok(()),
        }
    }
}

/// The claims loggate reads from a subscriber JWT. `exp` is required;
/// `nbf`, `aud` and `iss` are checked by the validation when present or
/// configured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims {
    /// Required; optional here only so that its absence is reported by the
    /// validation as "missing claim exp" rather than as bad JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at; when present, `exp - iat` is the token's lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Channel patterns granted, e.g. `logs:etl:ws1`, `logs:*:ws2`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Workspaces granted: `w` grants `logs:*:w`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<String>,
}

impl Claims {
    fn grants(&self) -> Result<Grants, AuthError> {
        let mut patterns = Vec::with_capacity(self.channels.len() + self.workspaces.len());
        for c in &self.channels {
            patterns.push(
                ChannelPattern::parse(c)
                    .map_err(|e| AuthError::InvalidToken(format!("claim channels: {e}")))?,
            );
        }
        for w in &self.workspaces {
            // `*` is not a workspace name: it would grant every tenant.
            let p = ChannelPattern::parse(&format!("{ROOT}:*:{w}"))
                .ok()
                .filter(|_| w != "*")
                .ok_or_else(|| {
                    AuthError::InvalidToken(format!(
                        "claim workspaces: {:?} is not a workspace name",
                        w.chars().take(64).collect::<String>()
                    ))
                })?;
            patterns.push(p);
        }
        Ok(Grants::Patterns(patterns))
    }
}

/// An accepted subscriber credential.
#[derive(Debug, Clone)]
pub struct Credential {
    pub grants: Grants,
    /// When the credential stops being valid; the session ends then.
    pub expires_at: Option<SystemTime>,
}

enum Mode {
    /// No credential configured: everyone reads everything.
    Open,
    Closed {
        jwt: Option<Box<(DecodingKey, Validation)>>,
        /// SHA-256 of `AUTH_TOKEN`.
        static_token: Option<[u8; 32]>,
    },
}

/// Verifies subscriber credentials against the configuration.
pub struct SubscriberAuth {
    mode: Mode,
    cookie: bool,
    /// The origins listed in `ALLOWED_ORIGINS` (never `*`): pages there may
    /// use the cookie, as the gateway's own may.
    cookie_origins: Vec<String>,
    /// Longest a token may live (`exp` after `iat`, or after now); 0: any.
    max_lifetime_secs: u64,
    /// Clock skew tolerated on `nbf` and on the lifetime check.
    leeway_secs: u64,
}

impl std::fmt::Debug for SubscriberAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.mode {
            Mode::Open => "open",
            Mode::Closed { .. } => "closed",
        };
        f.debug_struct("SubscriberAuth")
            .field("mode", &mode)
            .finish()
    }
}

impl SubscriberAuth {
    pub fn new(cfg: &AuthConfig) -> Result<Self, ConfigError> {
        if cfg.is_open() {
            return Ok(SubscriberAuth {
                mode: Mode::Open,
                cookie: cfg.cookie,
                cookie_origins: listed_origins(cfg),
                max_lifetime_secs: cfg.jwt_max_lifetime_secs,
                leeway_secs: cfg.jwt_leeway_secs,
            });
        }
        let jwt = match (&cfg.jwt_secret, &cfg.jwt_public_key_file) {
            (Some(secret), _) => Some((
                DecodingKey::from_secret(secret.expose().as_bytes()),
                Algorithm::HS256,
            )),
            (None, Some(path)) => {
                let key_err = |problem: String| ConfigError {
                    key: "JWT_PUBLIC_KEY_FILE".into(),
                    problem,
                };
                let pem = std::fs::read(path)
                    .map_err(|e| key_err(format!("cannot read {}: {e}", path.display())))?;
                // The key's own type fixes the one algorithm accepted, so a
                // token cannot pick a weaker or confused one.
                let key = DecodingKey::from_rsa_pem(&pem)
                    .map(|k| (k, Algorithm::RS256))
                    .or_else(|_| DecodingKey::from_ec_pem(&pem).map(|k| (k, Algorithm::ES256)))
                    .map_err(|_| {
                        key_err(format!(
                            "{} is not a PEM RSA or EC (P-256) public key",
                            path.display()
                        ))
                    })?;
                Some(key)
            }
            (None, None) => None,
        }
        .map(|(key, alg)| {
            let mut v = Validation::new(alg);
            // The leeway is for `nbf` (an issuer whose clock runs ahead).
            // `exp` is checked to the second after decoding, by the same
            // rule the stream's expiry timer follows: a token accepted
            // with leeway past its `exp` would get `ready` and then
            // `expired` at once, and a browser would reconnect in a loop.
            v.leeway = cfg.jwt_leeway_secs;
            // A configured audience or issuer must also be present: the
            // library checks them only when the token carries them.
            let mut required = vec!["exp"];
            v.validate_exp = true;
            v.validate_nbf = true;
            if cfg.jwt_audience.is_empty() {
                v.validate_aud = false;
            } else {
                v.set_audience(&cfg.jwt_audience);
                required.push("aud");
            }
            if !cfg.jwt_issuer.is_empty() {
                v.set_issuer(&cfg.jwt_issuer);
                required.push("iss");
            }
            v.set_required_spec_claims(&required);
            Box::new((key, v))
        });
        Ok(SubscriberAuth {
            mode: Mode::Closed {
                jwt,
                static_token: cfg
                    .auth_token
                    .as_ref()
                    .map(|t| sha256(t.expose().as_bytes())),
            },
            cookie: cfg.cookie,
            cookie_origins: listed_origins(cfg),
            max_lifetime_secs: cfg.jwt_max_lifetime_secs,
            leeway_secs: cfg.jwt_leeway_secs,
        })
    }

    pub fn is_open(&self) -> bool {
        matches!(self.mode, Mode::Open)
    }

    /// Whether the `loggate_token` cookie is a token source at all.
    pub fn accepts_cookie(&self) -> bool {
        self.cookie
    }

    /// Whether the `loggate_token` cookie may authenticate a request sent
    /// from `page`: cookie auth is on, and the page is the gateway's own,
    /// listed, or not another site's.
    pub fn accepts_cookie_from(&self, page: &PageOrigin<'_>) -> bool {
        self.cookie && page.may_use_cookie(&self.cookie_origins)
    }

    /// Turns a presented token into a credential.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Credential, AuthError> {
        let Mode::Closed { jwt, static_token } = &self.mode else {
            return Ok(Credential {
                grants: Grants::All,
                expires_at: None,
            });
        };
        let token = presented
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidToken(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        if let Some(expected) = static_token
            && bool::from(expected.ct_eq(&sha256(token.as_bytes())))
        {
            return Ok(Credential {
                grants: Grants::All,
                expires_at: None,
            });
        }
        let Some((key, validation)) = jwt.as_deref() else {
            return Err(AuthError::InvalidToken("not the configured token".into()));
        };
        // RFC 7515 §4.1.11: a token whose `crit` names extensions the
        // recipient does not understand must be refused; loggate
        // understands none. jsonwebtoken does not check this itself.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::InvalidToken(describe(&e)))?;
        if header.crit.is_some() {
            return Err(AuthError::InvalidToken(
                "critical header parameters (crit) are not supported".into(),
            ));
        }
        let data = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|e| AuthError::InvalidToken(describe(&e)))?;
        let claims = data.claims;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Required by the validation, so present.
        let exp = claims.exp.unwrap_or_default();
        if exp <= now {
            return Err(AuthError::InvalidToken("expired".into()));
        }
        if self.max_lifetime_secs > 0 {
            let max = self.max_lifetime_secs;
            let from_now = exp - now;
            let lifetime = claims.iat.map_or(0, |iat| exp.saturating_sub(iat));
            if from_now > max.saturating_add(self.leeway_secs) || lifetime > max {
                return Err(AuthError::InvalidToken(format!(
                    "lives longer than the {max} s this gateway accepts (auth.jwt_max_lifetime_secs)"
                )));
            }
        }
        Ok(Credential {
            grants: claims.grants()?,
            // `checked_add`: a hostile `exp` near u64::MAX must not panic.
            expires_at: UNIX_EPOCH.checked_add(Duration::from_secs(exp)),
        })
    }
}

/// Signs `claims` as an HS256 JWT with `secret`: what `loggate token` prints
/// and what a backend does to let a browser read its tenant's logs.
pub fn mint_hs256(secret: &str, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// A short reason for a refused JWT; never echoes the token.
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not valid yet (nbf)".into(),
        K::InvalidSignature => "bad signature".into(),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not accepted".into(),
        K::MissingRequiredClaim(c) => format!("missing claim {c}"),
        K::InvalidAudience => "audience not accepted".into(),
        K::InvalidIssuer => "issuer not accepted".into(),
        K::InvalidClaimFormat(c) => format!("malformed claim {c}"),
        K::Json(_) => {
            "claims are not as expected: exp is a number, channels and workspaces are lists of strings".into()
        }
        _ => "malformed token".into(),
    }
}

/// The origins of `ALLOWED_ORIGINS` other than `*`.
fn listed_origins(cfg: &AuthConfig) -> Vec<String> {
    cfg.allowed_origins
        .iter()
        .filter(|o| *o != "*")
        .cloned()
        .collect()
}

/// What a request's headers say about the page that sent it; browsers set
/// these and no page can change them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageOrigin<'a> {
    /// `Origin`: `scheme://host[:port]` of the page, or `null` for an
    /// opaque one (a sandboxed frame, a `file:` page, after a cross-site
    /// redirect). Browsers send it on every cross-origin request, every
    /// WebSocket handshake and every request that is not GET or HEAD; a
    /// same-origin GET (`EventSource`, `fetch`) goes without it.
    pub origin: Option<&'a str>,
    /// `Sec-Fetch-Site`: `cross-site` on a navigation from another site,
    /// which sends no `Origin`.
    pub fetch_site: Option<&'a str>,
    /// `Host`: the gateway as the browser addressed it.
    pub host: Option<&'a str>,
}

impl PageOrigin<'_> {
    /// A page may use the cookie if it is the gateway's own or listed in
    /// `listed`. Without `Origin` the request is a same-origin GET, a
    /// navigation, or no browser's at all; only a cross-site navigation is
    /// refused then.
    fn may_use_cookie(&self, listed: &[String]) -> bool {
        match self.origin {
            Some(origin) => {
                listed.iter().any(|o| o.eq_ignore_ascii_case(origin))
                    || is_own_origin(origin, self.host)
            }
            None => !self
                .fetch_site
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("cross-site")),
        }
    }
}

/// Whether `origin` (an `Origin` header) names the host the request was
/// sent to (its `Host` header): a page the gateway serves itself. Only
/// `Host` is compared: behind a proxy that rewrites it, list the public
/// origin in `ALLOWED_ORIGINS` (`X-Forwarded-Host` is not read; nothing
/// here says which proxy set it). `null`, a scheme other than http(s) and
/// an absent `Host` are never the gateway's own.
pub fn is_own_origin(origin: &str, host: Option<&str>) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    web && !authority.is_empty() && host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
}

/// Stands in for a malformed `Authorization` header; no token equals it.
const NOT_A_TOKEN: &str = "\0";

/// The subscriber token a request presents, by precedence:
/// `Authorization: Bearer`, then `?token=`, then cookie `loggate_token` (if
/// enabled). The first source present is the only one used: a bad header
/// is never rescued by a good cookie, so a request means one thing.
pub fn presented_subscriber_token<'a>(
    authorization: Option<&'a str>,
    query: Option<&'a str>,
    cookie_header: Option<&'a str>,
    cookies: bool,
) -> Option<&'a str> {
    if let Some(auth) = authorization {
        // A header that is not `Bearer <token>` is a present, invalid token,
        // never an absent one that would fall through to the cookie.
        return Some(match auth.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => NOT_A_TOKEN,
        });
    }
    if let Some(q) = query {
        return Some(q);
    }
    if cookies {
        return cookie_header?
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == "loggate_token")
            .map(|(_, value)| value.trim_matches('"'));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelName;
    use crate::config::{Config, Secret};
    use jsonwebtoken::{EncodingKey, Header, encode};
    use proptest::prelude::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth(adjust: impl FnOnce(&mut AuthConfig)) -> SubscriberAuth {
        let mut cfg = Config::default().auth;
        cfg.jwt_secret = Some(Secret::new(SECRET));
        adjust(&mut cfg);
        SubscriberAuth::new(&cfg).unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn mint(claims: &serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn pat(s: &str) -> ChannelPattern {
        ChannelPattern::parse(s).unwrap()
    }

    #[test]
    fn workspace_grants_cover_exactly_their_tenant() {
        let a = auth(|_| {});
        let token = mint(&serde_json::json!({"exp": now() + 60, "workspaces": ["ws1"]}));
        let cred = a.authenticate(Some(&token)).unwrap();
        for ok in [
            "logs:*:ws1",
            "logs:etl:ws1",
            "logs:etl:ws1:job7",
            "logs:*:ws1:*",
        ] {
            assert!(cred.grants.allows(&pat(ok)), "{ok}");
        }
        for no in ["logs:*", "logs:etl", "logs:*:ws2", "logs:*:*", "logs:etl:*"] {
            assert!(!cred.grants.allows(&pat(no)), "{no}");
        }
        assert_eq!(
            cred.grants.check(&[pat("logs:etl:ws1"), pat("logs:etl")]),
            Err(AuthError::NotGranted("logs:etl".into()))
        );
    }

    #[test]
    fn refusals() {
        let a = auth(|_| {});
        let cases = [
            (
                serde_json::json!({"workspaces": ["ws1"]}),
                "missing claim exp",
            ),
            (
                serde_json::json!({"exp": now() - 3600, "workspaces": ["ws1"]}),
                "expired",
            ),
            (
                serde_json::json!({"exp": now() + 60, "nbf": now() + 3600}),
                "not valid yet",
            ),
            (
                serde_json::json!({"exp": now() + 60, "workspaces": ["*"]}),
                "claim workspaces",
            ),
            (
                serde_json::json!({"exp": now() + 60, "channels": ["logs:a.b"]}),
                "claim channels",
            ),
            (serde_json::json!({"exp": "tomorrow"}), "exp is a number"),
        ];
        for (claims, want) in cases {
            let err = a.authenticate(Some(&mint(&claims))).unwrap_err();
            assert!(err.to_string().contains(want), "{claims}: {err}");
            assert_eq!(err.code(), "invalid_token");
        }
        assert_eq!(a.authenticate(None).unwrap_err(), AuthError::MissingToken);
        assert!(a.authenticate(Some("a.b.c")).is_err());
        assert!(
            a.authenticate(Some(&"a".repeat(MAX_TOKEN_BYTES + 1)))
                .is_err()
        );
        // Signed with another key.
        let other = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"exp": now() + 60}),
            &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
        )
        .unwrap();
        assert!(
            a.authenticate(Some(&other))
                .unwrap_err()
                .to_string()
                .contains("bad signature")
        );
        // HS384 is not HS256.
        let hs384 = encode(
            &Header::new(Algorithm::HS384),
            &serde_json::json!({"exp": now() + 60}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(a.authenticate(Some(&hs384)).is_err());
    }

    #[test]
    fn audience_issuer_and_static_token() {
        let a = auth(|c| {
            c.jwt_audience = vec!["loggate".into()];
            c.jwt_issuer = vec!["https://auth.example".into()];
            c.auth_token = Some(Secret::new("static-token-for-ops"));
        });
        let good = mint(
            &serde_json::json!({"exp": now() + 60, "aud": "loggate", "iss": "https://auth.example", "channels": ["logs:etl"]}),
        );
        assert!(a.authenticate(Some(&good)).is_ok());
        let wrong_aud = mint(
            &serde_json::json!({"exp": now() + 60, "aud": "other", "iss": "https://auth.example"}),
        );
        assert!(a.authenticate(Some(&wrong_aud)).is_err());
        let no_iss = mint(&serde_json::json!({"exp": now() + 60, "aud": "loggate"}));
        assert!(a.authenticate(Some(&no_iss)).is_err());
        let no_aud = mint(&serde_json::json!({"exp": now() + 60, "iss": "https://auth.example"}));
        assert!(a.authenticate(Some(&no_aud)).is_err());
        let ops = a.authenticate(Some("static-token-for-ops")).unwrap();
        assert_eq!(ops.grants, Grants::All);
        assert!(a.authenticate(Some("static-token-for-op")).is_err());
    }

    #[test]
    fn a_key_file_that_cannot_be_read_names_its_variable() {
        let mut cfg = Config::default().auth;
        cfg.jwt_public_key_file = Some("/nonexistent.pem".into());
        let err = SubscriberAuth::new(&cfg).unwrap_err();
        assert_eq!(err.key, "JWT_PUBLIC_KEY_FILE");
        cfg.jwt_public_key_file = Some(file!().into());
        let err = SubscriberAuth::new(&cfg).unwrap_err();
        assert!(err.problem.contains("not a PEM"), "{err}");
    }

    #[test]
    fn token_precedence_never_falls_back() {
        let p = |a, q, c| presented_subscriber_token(a, q, c, true);
        assert_eq!(
            p(Some("Bearer h"), Some("q"), Some("loggate_token=c")),
            Some("h")
        );
        assert_eq!(p(None, Some("q"), Some("loggate_token=c")), Some("q"));
        assert_eq!(p(None, None, Some("a=1; loggate_token=c; b=2")), Some("c"));
        assert_eq!(
            presented_subscriber_token(None, None, Some("loggate_token=c"), false),
            None
        );
        // A non-bearer Authorization header is present and invalid; the
        // cookie does not rescue it.
        assert_eq!(
            p(Some("Basic abc"), None, Some("loggate_token=c")),
            Some(NOT_A_TOKEN)
        );
        assert_eq!(p(None, None, None), None);
    }

    #[test]
    fn the_cookie_counts_only_from_own_or_listed_pages() {
        let listed = |origins: &[&str]| {
            auth(|c| c.allowed_origins = origins.iter().map(|o| o.to_string()).collect())
        };
        let page = |origin, fetch_site, host| PageOrigin {
            origin,
            fetch_site,
            host,
        };
        let host = Some("logs.example.com");
        let any = listed(&["*"]);
        let own = Some("https://logs.example.com");
        for (from, want) in [
            (page(None, None, host), true),
            (page(None, Some("same-origin"), host), true),
            (page(None, Some("none"), host), true),
            (page(None, Some("cross-site"), host), false),
            (page(None, Some(" Cross-Site "), host), false),
            (page(own, None, host), true),
            (page(Some("HTTP://LOGS.example.com"), None, host), true),
            (page(own, Some("cross-site"), host), true),
            (page(own, None, None), false),
            (page(Some("https://evil.example"), None, host), false),
            (page(Some("null"), None, host), false),
            (page(Some(""), None, host), false),
            (
                page(Some("https://logs.example.com:8443"), None, host),
                false,
            ),
            (page(Some("ftp://logs.example.com"), None, host), false),
            (
                page(Some("https://logs.example.com.evil.example"), None, host),
                false,
            ),
        ] {
            assert_eq!(any.accepts_cookie_from(&from), want, "{from:?}");
        }
        let app = listed(&["https://app.example.com"]);
        assert!(app.accepts_cookie_from(&page(Some("https://app.example.com"), None, host)));
        assert!(app.accepts_cookie_from(&page(own, None, host)));
        assert!(!app.accepts_cookie_from(&page(Some("http://app.example.com"), None, host)));
        assert!(!app.accepts_cookie_from(&page(Some("https://evil.example"), None, host)));
        let off = auth(|c| c.cookie = false);
        assert!(!off.accepts_cookie_from(&page(None, None, host)));
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![Just("a"), Just("b")].prop_map(String::from)
    }

    fn pattern() -> impl Strategy<Value = String> {
        let seg = prop_oneof![3 => segment(), 1 => Just("*".to_string())];
        prop::collection::vec(seg, 1..=3).prop_map(|s| format!("logs:{}", s.join(":")))
    }

    fn channel() -> impl Strategy<Value = String> {
        // "z" never appears in grants or requests: it stands for the
        // unbounded rest of the alphabet a wildcard can reach.
        let seg = prop_oneof![Just("a"), Just("b"), Just("z")].prop_map(String::from);
        prop::collection::vec(seg, 1..=3).prop_map(|s| format!("logs:{}", s.join(":")))
    }

    proptest! {
        /// An allowed request never matches a channel outside the grants.
        #[test]
        fn allowed_requests_stay_inside_grants(
            grants in prop::collection::vec(pattern(), 0..5),
            request in pattern(),
            probes in prop::collection::vec(channel(), 1..30),
        ) {
            let grants: Vec<ChannelPattern> = grants.iter().map(|g| pat(g)).collect();
            let g = Grants::Patterns(grants.clone());
            let request = pat(&request);
            if g.allows(&request) {
                for c in &probes {
                    let c = ChannelName::parse(c).unwrap();
                    if request.matches(&c) {
                        prop_assert!(grants.iter().any(|g| g.matches(&c)), "{} reaches {} outside {:?}", request, c, grants);
                    }
                }
            }
        }
    }
}

//! Publisher authentication: service tokens, and where a request shows
//! one.
//!
//! A request shows its token in `X-Service-Token`, else in
//! `Authorization: Bearer`. The shipper endpoints also take
//! `Authorization: Basic` with the token as the password (the user name
//! is not looked at): python-logging-loki can send nothing else, and
//! Grafana Cloud's convention (user = tenant, password = key) is what many
//! shipper configurations already have. `/api/logs/publish` does not: its
//! clients are loggate's own, and a browser may send Basic credentials it
//! remembers on its own.

use std::borrow::Cow;

use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{AuthError, MAX_TOKEN_BYTES};
use crate::config::Secret;
use crate::digest::{sha256, token_digest};

/// Which `Authorization` schemes carry a service token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schemes {
    /// `Bearer` only: `/api/logs/publish`.
    Bearer,
    /// `Bearer`, or `Basic` with the token as the password: the shipper
    /// endpoints.
    BearerOrBasic,
}

/// Base64 as clients write it: with or without its padding.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Longest `Basic` credential decoded: a token at its limit, a long user
/// name, in base64.
const MAX_BASIC_BYTES: usize = (MAX_TOKEN_BYTES + 1024) / 3 * 4 + 4;

fn bad_basic(problem: &str) -> AuthError {
    AuthError::InvalidToken(format!(
        "Authorization: Basic must carry base64 of user:token, the service token as the password ({problem})"
    ))
}

/// The service token `headers` show: `X-Service-Token`, else
/// `Authorization: Bearer`, else (with [`Schemes::BearerOrBasic`]) the
/// password of `Authorization: Basic`. `None`: none shown. A Basic header
/// that does not decode (bad base64, bad UTF-8, no colon) is a refusal, not
/// an absent token.
pub fn presented_service_token(
    headers: &HeaderMap,
    schemes: Schemes,
) -> Result<Option<Cow<'_, str>>, AuthError> {
    if let Some(v) = headers.get("x-service-token") {
        return Ok(v.to_str().ok().map(Cow::Borrowed));
    }
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some((scheme, rest)) = auth.trim().split_once(' ') else {
        return Ok(None);
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(Cow::Borrowed(rest.trim())));
    }
    if !(scheme.eq_ignore_ascii_case("basic") && schemes == Schemes::BearerOrBasic) {
        return Ok(None);
    }
    let encoded = rest.trim();
    if encoded.len() > MAX_BASIC_BYTES {
        return Err(bad_basic("too long"));
    }
    let decoded = BASE64
        .decode(encoded)
        .map_err(|_| bad_basic("not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| bad_basic("not UTF-8"))?;
    let (_user, token) = text.split_once(':').ok_or_else(|| bad_basic("no colon"))?;
    Ok(Some(Cow::Owned(token.to_owned())))
}

/// The configured service tokens, held as SHA-256 digests only.
#[derive(Clone)]
pub struct ServiceTokens {
    entries: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let services: Vec<&str> = self.entries.iter().map(|(s, _)| s.as_str()).collect();
        f.debug_struct("ServiceTokens")
            .field("services", &services)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// `map` is service → token or `sha256:<hex>`; entries that are neither
    /// were refused by config validation and are skipped here.
    pub fn new(map: &std::collections::BTreeMap<String, Secret>) -> Self {
        ServiceTokens {
            entries: map
                .iter()
                .filter_map(|(s, t)| Some((s.clone(), token_digest(t.expose()).ok()?)))
                .collect(),
        }
    }

    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(s, _)| s.as_str())
    }

    /// The service a presented token belongs to. The presented token is
    /// hashed and compared with every configured digest in constant time, so
    /// timing reveals neither how close a guess came nor which entry matched.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<&str, AuthError> {
        let presented = presented
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingServiceToken)?;
        if presented.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::UnknownServiceToken);
        }
        let digest = sha256(presented.as_bytes());
        let mut found: Option<&str> = None;
        for (service, expected) in &self.entries {
            if bool::from(expected.ct_eq(&digest)) {
                found = Some(service);
            }
        }
        found.ok_or(AuthError::UnknownServiceToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use std::collections::BTreeMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn shown(
        pairs: &[(&'static str, &str)],
        schemes: Schemes,
    ) -> Result<Option<String>, AuthError> {
        presented_service_token(&headers(pairs), schemes).map(|t| t.map(Cow::into_owned))
    }

    #[test]
    fn basic_carries_the_token_as_its_password_on_the_shipper_endpoints_only() {
        use Schemes::{Bearer, BearerOrBasic};
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let auth = |v: &str| vec![("authorization", v.to_owned())];
        let run = |pairs: Vec<(&'static str, String)>, schemes| {
            let pairs: Vec<(&'static str, &str)> =
                pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            shown(&pairs, schemes)
        };
        assert_eq!(
            run(auth(&basic("etl:l5-etl-token")), BearerOrBasic),
            Ok(Some("l5-etl-token".into()))
        );
        assert_eq!(
            run(auth(&basic(":tok:en")), BearerOrBasic),
            Ok(Some("tok:en".into())),
            "the user may be empty, the password may hold a colon"
        );
        assert_eq!(
            run(auth("basic ZXRsOmw1LWV0bC10b2tlbg"), BearerOrBasic),
            Ok(Some("l5-etl-token".into())),
            "any case, padding optional"
        );
        assert_eq!(run(auth(&basic("etl:l5-etl-token")), Bearer), Ok(None));
        assert_eq!(run(auth("Bearer  t0k "), Bearer), Ok(Some("t0k".into())));
        let xst = vec![
            ("x-service-token", "first".to_owned()),
            ("authorization", basic("u:second")),
        ];
        assert_eq!(run(xst, BearerOrBasic), Ok(Some("first".into())));
        for bad in [
            "Basic !!!".to_owned(),
            basic("no colon here"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(b"u:\xff\xfe")
            ),
            format!("Basic {}", "A".repeat(MAX_BASIC_BYTES + 4)),
        ] {
            let e = run(auth(&bad), BearerOrBasic).unwrap_err();
            assert_eq!(e.code(), "invalid_token", "{bad}");
            assert!(e.to_string().contains("Basic"), "{e}");
        }
        assert_eq!(run(auth("Digest x"), BearerOrBasic), Ok(None));
        assert_eq!(run(auth("Basic"), BearerOrBasic), Ok(None));
        assert_eq!(run(vec![], BearerOrBasic), Ok(None));
    }

    #[test]
    fn plain_and_hashed_tokens() {
        let mut map = BTreeMap::new();
        map.insert("etl".to_string(), Secret::new("l5-etl-token"));
        let digest = hex::encode(sha256(b"faas-token"));
        map.insert("faas".to_string(), Secret::new(format!("sha256:{digest}")));
        let t = ServiceTokens::new(&map);
        assert_eq!(t.authenticate(Some("l5-etl-token")), Ok("etl"));
        assert_eq!(t.authenticate(Some(" faas-token ")), Ok("faas"));
        assert_eq!(
            t.authenticate(Some(&format!("sha256:{digest}"))),
            Err(AuthError::UnknownServiceToken),
            "the digest is not the token"
        );
        assert_eq!(
            t.authenticate(Some("l5-etl-toke")),
            Err(AuthError::UnknownServiceToken)
        );
        assert_eq!(
            t.authenticate(Some(&"x".repeat(100_000))),
            Err(AuthError::UnknownServiceToken)
        );
        assert_eq!(
            t.authenticate(Some("")),
            Err(AuthError::MissingServiceToken)
        );
        assert_eq!(t.authenticate(None), Err(AuthError::MissingServiceToken));
        assert!(!format!("{t:?}").contains("l5-etl-token"));
    }
}

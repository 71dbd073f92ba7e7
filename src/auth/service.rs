//! Publisher authentication: service tokens.

use subtle::ConstantTimeEq;

use super::{AuthError, MAX_TOKEN_BYTES};
use crate::config::Secret;
use crate::digest::{sha256, token_digest};

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
    use std::collections::BTreeMap;

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

//! Authentication of publishers (service tokens).
//!
//! Owns the token → service mapping and its constant-time lookup. It knows
//! nothing of HTTP: the ingest handlers pass it the presented token and get a
//! service name back. Tokens are never logged or echoed in errors.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

/// Why a publisher was refused; both are 401 at the HTTP boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing service token: send X-Service-Token or Authorization: Bearer")]
    MissingToken,
    #[error("unknown service token")]
    UnknownToken,
}

/// The configured service tokens.
#[derive(Clone)]
pub struct ServiceTokens {
    entries: Vec<(String, Vec<u8>)>,
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
    pub fn new(map: &BTreeMap<String, String>) -> Self {
        ServiceTokens {
            entries: map
                .iter()
                .map(|(s, t)| (s.clone(), t.as_bytes().to_vec()))
                .collect(),
        }
    }

    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(s, _)| s.as_str())
    }

    /// The service a presented token belongs to. Every configured token is
    /// compared, in constant time, so timing tells neither which token came
    /// close nor where in the list it sits.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<&str, AuthError> {
        let presented = presented
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?
            .as_bytes();
        let mut found: Option<&str> = None;
        for (service, token) in &self.entries {
            // `ct_eq` on slices of different length returns false at once;
            // lengths are not secret enough to matter, contents are.
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(service);
            }
        }
        found.ok_or(AuthError::UnknownToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticates_by_token() {
        let mut map = BTreeMap::new();
        map.insert("etl".to_string(), "l5-etl-token".to_string());
        map.insert("faas".to_string(), "faas-token".to_string());
        let t = ServiceTokens::new(&map);
        assert_eq!(t.authenticate(Some("l5-etl-token")), Ok("etl"));
        assert_eq!(t.authenticate(Some(" faas-token ")), Ok("faas"));
        assert_eq!(
            t.authenticate(Some("l5-etl-toke")),
            Err(AuthError::UnknownToken)
        );
        assert_eq!(t.authenticate(Some("")), Err(AuthError::MissingToken));
        assert_eq!(t.authenticate(None), Err(AuthError::MissingToken));
        assert!(!format!("{t:?}").contains("l5-etl-token"));
    }
}

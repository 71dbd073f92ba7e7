//! The operator's credential: `Authorization: Bearer $ADMIN_TOKEN`.

use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::digest::sha256;

/// The configured admin token, held as a digest.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl AdminToken {
    pub fn new(token: &Secret) -> Self {
        AdminToken(sha256(token.expose().as_bytes()))
    }

    /// Whether an `Authorization` header value presents this token (as
    /// `Bearer <token>`), compared in constant time.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        authorization
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .is_some_and(|(_, token)| bool::from(sha256(token.trim().as_bytes()).ct_eq(&self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_only() {
        let t = AdminToken::new(&Secret::new("an-admin-token"));
        assert!(t.accepts(Some("Bearer an-admin-token")));
        assert!(t.accepts(Some("bearer  an-admin-token ")));
        assert!(!t.accepts(Some("Basic an-admin-token")));
        assert!(!t.accepts(Some("Bearer an-admin-toke")));
        assert!(!t.accepts(None));
    }
}

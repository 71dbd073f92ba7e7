//! The one minter of subscriber JWTs: HS256 with a test's secret, RS/ES
//! algorithms with a private key in PEM (`tests/fixtures`), any header
//! (`crit`), and the unsigned `alg: none` form. Claims are plain JSON, so a
//! test can leave out or misspell any claim; independent of loggate's own
//! `mint_hs256`, so a bug there cannot hide in the tests.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// Seconds since the Unix epoch, as `exp`, `nbf` and `iat` count them.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `claims` signed with HS256 and `secret`.
pub fn hs256(secret: impl AsRef<[u8]>, claims: &Value) -> String {
    sign(
        &Header::new(Algorithm::HS256),
        &EncodingKey::from_secret(secret.as_ref()),
        claims,
    )
}

/// `claims` signed with `alg` (RS* or ES*) and the private key in the PEM
/// file at `private_pem`.
pub fn pem(alg: Algorithm, private_pem: &Path, claims: &Value) -> String {
    let pem =
        std::fs::read(private_pem).unwrap_or_else(|e| panic!("{}: {e}", private_pem.display()));
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap_or_else(|e| panic!("{} is a {alg:?} key: {e}", private_pem.display()));
    sign(&Header::new(alg), &key, claims)
}

/// `claims` under any `header`, signed with `key`.
pub fn sign(header: &Header, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, key).expect("claims encode")
}

/// `claims` with `alg: none` and no signature.
pub fn alg_none(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

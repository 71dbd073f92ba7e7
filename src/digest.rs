//! Token digests: tokens are held and compared as SHA-256 digests only, so
//! a configuration may carry `sha256:<hex>` instead of a secret, and a
//! comparison takes the same time whatever matches.
//!
//! A leaf: it imports nothing of loggate, so the configuration's
//! validation (service tokens, dev tokens) and `auth` both use it.

/// The prefix of a token written as its SHA-256 digest.
pub const SHA256_PREFIX: &str = "sha256:";

/// Shortest service token accepted as written (a digest has no minimum).
const MIN_TOKEN_LEN: usize = 8;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The digest a configured service token stands for: `sha256:<hex>` as
/// written, anything else hashed.
pub fn token_digest(configured: &str) -> Result<[u8; 32], String> {
    match configured.strip_prefix(SHA256_PREFIX) {
        Some(hex_digest) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(hex_digest.trim(), &mut out)
                .map_err(|_| "sha256: must be followed by 64 hex digits".to_string())?;
            Ok(out)
        }
        None if configured.len() < MIN_TOKEN_LEN => {
            Err(format!("token is shorter than {MIN_TOKEN_LEN} characters"))
        }
        None => Ok(sha256(configured.as_bytes())),
    }
}

/// `sha256:<hex>` of a token, for a configuration file.
pub fn written_digest(token: &str) -> String {
    format!("{SHA256_PREFIX}{}", hex::encode(sha256(token.as_bytes())))
}

//! Opaque credentials: `fy_` + 43 base62 characters (256 random bits) + 6 base62 characters of
//! CRC32 over everything before them, 52 characters in all.
//!
//! The fixed prefix and the checksum let secret scanners recognise a leaked Ferry credential
//! and reject look-alikes without asking Ferry (the scheme GitHub uses for its tokens). The
//! checksum is not a secret and proves nothing: only the store's record does. Ferry keeps only
//! the SHA-256 of the credential, with the credential's claims as record (the same claims a JWT
//! of the grant would carry); comparisons of digests are constant-time.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::Minted;
use crate::domain::{sha256_hex, Secret};

pub const OPAQUE_PREFIX: &str = "fy_";
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
pub const OPAQUE_LEN: usize = OPAQUE_PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new opaque credential and what the store keeps of it.
pub struct OpaqueIssue {
    pub token: Secret,
    /// SHA-256 (hex) of the credential: the only form in which it is stored.
    pub digest: String,
    /// `{"digest": …, "claims": {…}}`: the record stored under the digest.
    pub record: String,
}

/// Makes an opaque credential for a minted JWT: same id, lifetime and claims (read from the
/// JWT's payload, so every claim a JWT grant carries, `act` included, is in the record); the
/// JWT itself is discarded.
pub fn from_minted(minted: &Minted) -> Result<OpaqueIssue, &'static str> {
    let payload = minted
        .token
        .expose()
        .split('.')
        .nth(1)
        .ok_or("minted credential is not a JWS")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| "minted payload is not base64url")?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| "minted payload is not JSON")?;
    let token = generate()?;
    let digest = sha256_hex(token.as_bytes());
    let record = json!({ "digest": digest, "claims": claims }).to_string();
    Ok(OpaqueIssue {
        token: Secret::new(token),
        digest,
        record,
    })
}

fn generate() -> Result<String, &'static str> {
    let mut random = [0u8; 32];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| "no randomness")?;
    let mut token = String::with_capacity(OPAQUE_LEN);
    token.push_str(OPAQUE_PREFIX);
    token.push_str(&base62(&random, BODY_LEN));
    let checksum = crc32(token.as_bytes());
    token.push_str(&base62(&checksum.to_be_bytes(), CHECKSUM_LEN));
    Ok(token)
}

/// Whether `token` has the shape of a Ferry opaque credential (prefix, length, alphabet).
pub fn looks_opaque(token: &str) -> bool {
    token.starts_with(OPAQUE_PREFIX)
}

/// The digest to look `token` up by, when its format and checksum are right.
pub fn digest_of(token: &str) -> Option<String> {
    if token.len() != OPAQUE_LEN
        || !token.starts_with(OPAQUE_PREFIX)
        || !token[OPAQUE_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let (head, checksum) = token.split_at(OPAQUE_LEN - CHECKSUM_LEN);
    let expected = base62(&crc32(head.as_bytes()).to_be_bytes(), CHECKSUM_LEN);
    (expected == checksum).then(|| sha256_hex(token.as_bytes()))
}

/// The claims of a stored record, if the record belongs to `digest` (compared in constant time).
pub fn record_claims(record: &str, digest: &str) -> Option<Value> {
    let mut record: Value = serde_json::from_str(record).ok()?;
    let stored = record.get("digest")?.as_str()?;
    verify_slices_are_equal(stored.as_bytes(), digest.as_bytes()).ok()?;
    Some(record.get_mut("claims")?.take())
}

/// Big-endian base62 of `bytes`, left-padded with `0` to `width` characters.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut digits = Vec::with_capacity(width);
    let mut number = bytes.to_vec();
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            remainder = acc % 62;
        }
        digits.push(BASE62[remainder as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

/// CRC-32 (IEEE 802.3, the zlib/PNG polynomial), bitwise: tokens are short.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn opaque_credentials_have_the_prefix_length_and_a_valid_checksum() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), OPAQUE_LEN);
        assert!(a.starts_with("fy_"));
        assert_eq!(digest_of(&a), Some(sha256_hex(a.as_bytes())));
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let t = generate().unwrap();
        let mut bytes = t.into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(digest_of(&String::from_utf8(bytes).unwrap()), None);
        assert_eq!(digest_of("fy_short"), None);
        assert_eq!(digest_of(&format!("fy_{}", "!".repeat(49))), None);
    }

    #[test]
    fn a_record_answers_only_for_its_own_digest() {
        let record = json!({"digest": "ab", "claims": {"sub": "s"}}).to_string();
        assert_eq!(record_claims(&record, "ab").unwrap()["sub"], "s");
        assert!(record_claims(&record, "ac").is_none());
    }
}

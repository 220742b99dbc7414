//! Randomness, hashing and constant-time comparison for tokens. Only this module and the
//! TLS module touch `ring` directly.

use ring::rand::{SecureRandom, SystemRandom};

/// `n` random bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS RNG failing is unrecoverable and would make every token guessable: abort loudly.
    SystemRandom::new()
        .fill(&mut buf)
        .unwrap_or_else(|_| panic!("the operating system's random number generator failed"));
    buf
}

/// A random token of `bytes` bytes, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    hex(&random_bytes(bytes))
}

/// A 256-bit secret token, URL-safe base64 without padding (43 characters).
pub fn new_secret_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32))
}

/// SHA-256 of `data`, hex encoded. Used for high-entropy tokens at rest, where a slow
/// password hash buys nothing.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// SHA-256 fingerprint in the colon-separated upper-case form browsers and `openssl` show.
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = new_secret_token();
        let b = new_secret_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

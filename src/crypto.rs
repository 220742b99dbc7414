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

/// base64url without padding (JOSE).
/// Standard base64 with padding (Sparkle's signatures and keys).
pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.as_bytes())
        .ok()
}

/// A new Ed25519 key: (PKCS#8 document, raw 32-byte public key).
pub fn ed25519_generate() -> Result<(Vec<u8>, Vec<u8>), ring::error::Unspecified> {
    use ring::signature::KeyPair;
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| ring::error::Unspecified)?;
    Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

/// Signs `message` with an Ed25519 PKCS#8 key.
pub fn ed25519_sign(pkcs8: &[u8], message: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
    use std::cell::RefCell;
    // Parsing a key derives its public half (a scalar multiplication); the gateway signs
    // every lease with the same key, so each thread keeps the last one parsed.
    thread_local! {
        static LAST: RefCell<Option<(Vec<u8>, ring::signature::Ed25519KeyPair)>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.as_ref().is_none_or(|(k, _)| k.as_slice() != pkcs8) {
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8)
                .map_err(|_| ring::error::Unspecified)?;
            *last = Some((pkcs8.to_vec(), pair));
        }
        let (_, pair) = last.as_ref().ok_or(ring::error::Unspecified)?;
        Ok(pair.sign(message).as_ref().to_vec())
    })
}

/// The device key algorithms accepted: Ed25519 (`EdDSA`) and P-256 (`ES256`, what the
/// Secure Enclave of a Mac holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAlg {
    EdDsa,
    Es256,
}

impl DeviceAlg {
    pub fn jose_name(self) -> &'static str {
        match self {
            DeviceAlg::EdDsa => "EdDSA",
            DeviceAlg::Es256 => "ES256",
        }
    }
}

/// Verifies a signature by a raw public key: Ed25519 (32 bytes) or P-256 (65-byte
/// uncompressed point, signature as JOSE's r||s).
pub fn verify_signature(
    alg: DeviceAlg,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match alg {
        DeviceAlg::EdDsa => &ring::signature::ED25519,
        DeviceAlg::Es256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
    };
    ring::signature::UnparsedPublicKey::new(algorithm, public_key)
        .verify(message, signature)
        .is_ok()
}

/// SHA-256 of `data`, raw.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// ChaCha20-Poly1305 under a key derived from a passphrase with Argon2id: the encryption
/// of backup bundles (`crate::bundle`).
pub struct PassphraseKey(ring::aead::LessSafeKey);

/// Bytes an AEAD tag adds to each sealed message.
pub const AEAD_TAG_LEN: usize = 16;
/// Bytes of an AEAD nonce.
pub const AEAD_NONCE_LEN: usize = 12;

impl PassphraseKey {
    /// Argon2id over `passphrase` and `salt` with `m_kib` KiB, `t` passes and `p` lanes.
    pub fn derive(
        passphrase: &[u8],
        salt: &[u8],
        m_kib: u32,
        t: u32,
        p: u32,
    ) -> Result<PassphraseKey, String> {
        use argon2::{Algorithm, Argon2, Params, Version};
        let params = Params::new(m_kib, t, p, Some(32)).map_err(|e| e.to_string())?;
        let mut key = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, salt, &mut key)
            .map_err(|e| e.to_string())?;
        let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &key)
            .map_err(|_| "the derived key has the wrong length".to_string())?;
        key.fill(0);
        Ok(PassphraseKey(ring::aead::LessSafeKey::new(unbound)))
    }

    /// Encrypts `data` in place and appends the tag. Each nonce is used once per key.
    pub fn seal(
        &self,
        nonce: [u8; AEAD_NONCE_LEN],
        aad: &[u8],
        data: &mut Vec<u8>,
    ) -> Result<(), String> {
        self.0
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(aad),
                data,
            )
            .map_err(|_| "encryption failed".to_string())
    }

    /// Decrypts `data` (ciphertext and tag) in place; `None` if it or `aad` was altered or
    /// the key is not the one that sealed it.
    pub fn open<'a>(
        &self,
        nonce: [u8; AEAD_NONCE_LEN],
        aad: &[u8],
        data: &'a mut [u8],
    ) -> Option<&'a mut [u8]> {
        self.0
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(aad),
                data,
            )
            .ok()
    }
}

/// Bytes from hex digits; `None` for anything else.
pub fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

/// Whether `tag` is the HMAC-SHA256 of `message` under `key` (compared in constant time).
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::verify(&key, message, tag).is_ok()
}

/// A new Ed25519 key for signing update packages: its 32-byte seed (Sparkle's
/// `generate_keys` keeps the same).
pub fn ed25519_seed() -> Vec<u8> {
    random_bytes(32)
}

/// The raw public key of a seed (Sparkle's `SUPublicEDKey`, base64).
pub fn ed25519_public_of_seed(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// Ed25519 over a whole file, as Sparkle's `sign_update` makes an `edSignature`, read in
/// two streaming passes (Ed25519 hashes the message twice) instead of held in memory.
pub fn ed25519_sign_file(seed: &[u8; 32], path: &std::path::Path) -> std::io::Result<[u8; 64]> {
    use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign_byupdate};
    use sha2::Digest;
    use std::io::Read;
    let signing = ed25519_dalek::SigningKey::from_bytes(seed);
    let expanded = ExpandedSecretKey::from(seed);
    let failure = std::cell::RefCell::new(None);
    let feed = |digest: &mut sha2::Sha512| {
        let read = (|| {
            let mut file = std::fs::File::open(path)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                digest.update(&buf[..n]);
            }
        })();
        read.map_err(|e| {
            *failure.borrow_mut() = Some(e);
            ed25519_dalek::SignatureError::new()
        })
    };
    match raw_sign_byupdate::<sha2::Sha512, _>(&expanded, feed, &signing.verifying_key()) {
        Ok(signature) => Ok(signature.to_bytes()),
        Err(_) => Err(failure
            .take()
            .unwrap_or_else(|| std::io::Error::other("the file could not be signed"))),
    }
}

/// SHA-256 over data arriving in pieces.
#[derive(Clone)]
pub struct Sha256Stream(ring::digest::Context);

impl Default for Sha256Stream {
    fn default() -> Self {
        Sha256Stream(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl Sha256Stream {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_file_signature_is_plain_ed25519_over_the_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("app.pkg");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let seed: [u8; 32] = ed25519_seed().try_into().expect("32");
        let signature = ed25519_sign_file(&seed, &path).expect("sign");
        let public = ed25519_public_of_seed(&seed);
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public);
        assert!(key.verify(&bytes, &signature).is_ok());
        let mut other = bytes.clone();
        other[1_000_000] ^= 1;
        assert!(key.verify(&other, &signature).is_err());
    }

    #[test]
    fn ed25519_keys_sign_and_verify() {
        let (pkcs8, public) = ed25519_generate().expect("key");
        let sig = ed25519_sign(&pkcs8, b"lease").expect("sign");
        assert!(verify_signature(DeviceAlg::EdDsa, &public, b"lease", &sig));
        assert!(!verify_signature(
            DeviceAlg::EdDsa,
            &public,
            b"lease!",
            &sig
        ));
        assert!(!verify_signature(DeviceAlg::Es256, &public, b"lease", &sig));
    }

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

//! The development vendor key. Its private half is in this repository, so nothing signed
//! with it proves anything: seatgate trusts it only in builds with the `dev-vendor-key`
//! feature (the test suite's) and inside `seatgate demo`, never in release packages.

use crate::entitlement::TrustedKey;

/// The development key as a trusted key.
pub const DEV_KEY: TrustedKey = TrustedKey {
    kid: "seatgate-dev-1",
    public_key: "CTbk8MMIIEM46MHikizl3hPoAvv-tLSgenOzmvjtFOE",
};

/// The development key's private half (PKCS#8), for `seatgate-vendor --dev` and tests.
#[cfg(feature = "dev-signing")]
pub fn signing_key() -> crate::jws::KeyPair {
    // The document is compiled in and known good; the tests cover that it parses.
    match crate::jws::KeyPair::from_pkcs8(include_bytes!("../keys/dev-vendor.pk8")) {
        Ok(key) => key,
        Err(_) => unreachable!("the compiled-in development key is a valid Ed25519 key"),
    }
}

#[cfg(all(test, feature = "dev-signing"))]
mod tests {
    #[test]
    fn the_private_half_matches_the_trusted_public_key() {
        let key = super::signing_key();
        assert_eq!(
            crate::jws::b64url(key.public_key()),
            super::DEV_KEY.public_key
        );
    }
}

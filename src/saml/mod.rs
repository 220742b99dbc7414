//! SAML 2.0 service provider. So far: the pre-filter every SAMLResponse passes before
//! signature verification, IdP metadata parsing, SP metadata, per-IdP presets and IdP
//! connections; samael-based verification and the ACS build on them.

pub mod acs;
pub mod connections;
pub mod fetch;
pub mod identity;
pub mod login;
pub mod metadata;
pub mod prefilter;
pub mod preset;
pub mod signing;

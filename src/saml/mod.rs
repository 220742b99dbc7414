//! SAML 2.0 service provider. So far: the pre-filter every SAMLResponse passes before
//! signature verification (see SECURITY.md, "SAML SP"); samael-based verification, IdP
//! connections and the ACS build on it.

pub mod prefilter;

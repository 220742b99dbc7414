//! The vendor's signed formats, shared by the gateway (`seatgate`) and the vendor's tool
//! (`seatgate-vendor`), so both read and write exactly the same bytes:
//!
//! - [`entitlement`]: what an organization bought, signed by the vendor;
//! - [`registration`]: a gateway's request for an entitlement bound to it, signed by the
//!   gateway's instance key;
//! - [`usage`]: a month of seat usage for true-up, signed by the gateway's instance key;
//! - [`jws`]: the one signature format under all three (compact JWS, EdDSA only), keys
//!   and RFC 7638 thumbprints.
//!
//! Pure: no I/O, no clock (callers pass the time), no knowledge of the gateway's storage.

pub mod dev;
pub mod entitlement;
pub mod jws;
pub mod registration;
pub mod usage;

pub use entitlement::{Entitlement, EntitlementError, TrustedKey};
pub use jws::{InstanceKey, JwsError, KeyPair};

//! The SCIM 2.0 service provider (RFC 7643/7644) at `/scim/v2`.

pub mod filter;
pub mod patch;
pub mod resource;
pub mod schema;

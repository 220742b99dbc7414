//! The domain core: the licensing engine, SCIM resources, filters and PATCH, what a
//! verified sign-in says, and the domain's error. Pure: no I/O, no database, no HTTP;
//! it imports only std, serde and the leaf utilities (`clock`, `crypto`, `caps`). The
//! store (`db`) and the services above it use these types; `tests/tidy.rs`
//! (`domain_is_pure`) holds the boundary.

pub mod connection;
pub mod engine;
pub mod files;
pub mod identity;
pub mod inventory;
pub mod jose;
pub mod policy;
pub mod problem;
pub mod scim;

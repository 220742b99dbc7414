//! SCIM 2.0 resources without the store: the schemas, the resource shapes and their
//! normalization, the filter language and PATCH.

pub mod filter;
pub mod patch;
pub mod resource;
pub mod schema;

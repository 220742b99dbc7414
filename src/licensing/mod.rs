//! Licensing: seats derived from the directory, device activations and signed leases.
//!
//! - [`engine`]: pure rules: entitlement, pool precedence, capacity.
//! - [`reconcile`]: applies them in the transaction of each directory or admin change.
//! - [`verdict`]: whether a user may activate a device now (activation and `explain`).

pub mod activation;
pub mod entitlements;
pub mod explain;
pub mod history;
pub mod inventory;
pub mod keys;
pub mod leases;
pub mod manage;
pub mod policies;
pub mod reconcile;
pub mod usage;
pub mod verdict;

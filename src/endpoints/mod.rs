//! The protocol endpoints outside the admin portal: each reads its HTTP request into the
//! service's terms and renders the service's result (routed, authenticated and limited by
//! the pipeline from `routes::ROUTES`).
//!
//! - [`device`]: the device API and the end-user activation flow (`/api/v1/activate`,
//!   `/activate`, leases);
//! - [`files`]: golden images: the admin API's uploads, the device listing, downloads;
//! - [`invite`]: the invitation landing page at `/invite/{token}`;
//! - [`updates`]: the local update server: packages, appcast and JSON feeds, downloads;
//! - [`scim`]: the SCIM 2.0 service provider at `/scim/v2`.

pub mod device;
pub mod files;
pub mod invite;
pub mod scim;
pub mod updates;

//! Integration tests: the real binary, a real data directory, real sockets.
//! One test binary (faster to build and link than one per file).

#[path = "../kit/mod.rs"]
mod kit;

mod activation;
mod admin;
mod admin_api;
mod backup_keys;
mod bounds;
mod browser;
mod demo;
mod durability;
mod entitlements;
mod fleet_view;
mod front;
mod health;
mod images;
mod license_keys;
mod licensing;
mod lifecycle;
mod mail;
mod ops;
mod policies;
mod portal;
mod profiles;
mod public_url;
mod pysaml2;
mod routes;
mod saml;
mod saml_options;
mod scim;
mod scim_errors;
mod scim_filters;
mod support;
mod trust;
mod updates;
mod version;

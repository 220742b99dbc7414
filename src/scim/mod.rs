//! The SCIM 2.0 service provider (RFC 7643/7644) at `/scim/v2`: the directory that drives
//! licensing. See IDP-DIALECTS.md for the shapes real IdPs send; each has a test.
//!
//! - [`api`]: authentication, rate limiting, routing, request log, shared helpers;
//! - [`users`], [`groups`], [`discovery`]: the endpoints;
//! - [`filter`], [`patch`], [`resource`], [`schema`]: pure parsing and transformation.

pub mod discovery;
pub mod groups;
pub mod reqlog;
pub mod service;
pub mod users;

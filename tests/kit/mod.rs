//! The test kit, one copy shared by the integration tests (`tests/it`, as `crate::kit`) and
//! the benchmarks (`benches/common`, as `common::kit`): the server launcher, the HTTP client
//! with its cookies and forms, the test IdP and its xmlsec1 signer, polling instead of
//! sleeping, and the check for tools besides Rust.
//! (A subdirectory module: Cargo takes it for no test of its own.)

#![allow(dead_code)] // each user takes part of it

pub mod http;
pub mod saml;
pub mod server;
pub mod tools;
pub mod vendor;
pub mod wait;

//! Logging to stderr via env_logger. `RUST_LOG` wins over the configured level.
//! Never log secrets: tokens, passwords, assertions, keys (reviewed per call site).

/// The target of the start-up banner (`listening on …`, the CA fingerprint, the setup
/// link). It logs at info whatever `log_level` says: scripts wait for `listening on`
/// (INTERFACES.md), and an operator must see the setup link.
pub const STARTUP: &str = "seatgate::startup";

pub fn init(level: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    builder.filter_module(STARTUP, log::LevelFilter::Info);
    // Third-party crates are quiet unless asked for.
    builder.filter_module("rustls", log::LevelFilter::Warn);
    builder.filter_module("tiny_http", log::LevelFilter::Warn);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format_timestamp_millis();
    let _ = builder.try_init();
}

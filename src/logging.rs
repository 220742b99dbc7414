//! Logging to stderr via env_logger. `RUST_LOG` wins over the configured level.
//! Never log secrets: tokens, passwords, assertions, keys (reviewed per call site).

pub fn init(level: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    // Third-party crates are quiet unless asked for.
    builder.filter_module("rustls", log::LevelFilter::Warn);
    builder.filter_module("tiny_http", log::LevelFilter::Warn);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format_timestamp_millis();
    let _ = builder.try_init();
}

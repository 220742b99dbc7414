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

/// Characters of client-sent text a log line shows at most.
const CLIENT_TEXT_CHARS: usize = 200;

/// Text a client (or an IdP) sent, fit for a log line: at most [`CLIENT_TEXT_CHARS`]
/// characters with `…` when cut, and control characters, quotes and backslashes escaped
/// as in Rust strings, so it can neither flood the log nor start a line of its own.
/// Callers quote it (`"{}"`) where a reader must see where it ends.
pub fn client_text(text: &str) -> ClientText<'_> {
    ClientText(text)
}

pub struct ClientText<'a>(&'a str);

impl std::fmt::Display for ClientText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(CLIENT_TEXT_CHARS) {
            write!(f, "{}", c.escape_debug())?;
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_bounded_and_cannot_break_the_line() {
        assert_eq!(
            client_text("ryan\r\n[INFO] forged \"x\"").to_string(),
            "ryan\\r\\n[INFO] forged \\\"x\\\""
        );
        let long = client_text(&"é".repeat(5000)).to_string();
        assert_eq!(long.chars().count(), CLIENT_TEXT_CHARS + 1);
        assert!(long.ends_with('…'));
        assert!(
            !client_text("a\u{1b}[31mb\u{0}")
                .to_string()
                .contains(['\u{1b}', '\0'])
        );
    }
}

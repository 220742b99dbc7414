//! Sending one message over SMTP (lettre's blocking transport, rustls with ring): the
//! connection as `[smtp]` describes it, every step bounded by `[smtp] timeout`, and each
//! failure sorted into permanent (the server refused: 5xx, a bad address) or temporary
//! (4xx, the server down, hanging or its certificate refused), which the outbox retries.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

use crate::config::{SmtpConfig, SmtpSecurity};
use crate::db::outbox::Message;

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// The server refused for good (5xx), or the message cannot be sent as it is.
    pub permanent: bool,
    /// What went wrong, as the server or the connection said it.
    pub reason: String,
}

impl SendFailure {
    fn permanent(reason: impl Into<String>) -> SendFailure {
        SendFailure {
            permanent: true,
            reason: reason.into(),
        }
    }
}

/// A configured connection to the mail server.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    timeout: Duration,
}

/// Why `[smtp]` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailerError(pub String);

impl Mailer {
    /// The mailer `[smtp]` describes; `None` when no host is set.
    pub fn from_config(cfg: &SmtpConfig) -> Result<Option<Mailer>, MailerError> {
        if cfg.host.is_empty() {
            return Ok(None);
        }
        let from = cfg
            .from
            .parse::<Mailbox>()
            .map_err(|e| MailerError(format!("smtp.from {:?} is not an address: {e}", cfg.from)))?;
        let tls = match cfg.security {
            SmtpSecurity::None => Tls::None,
            security => {
                let mut params = TlsParameters::builder(cfg.host.clone());
                if !cfg.ca_file.is_empty() {
                    let pem = std::fs::read(&cfg.ca_file).map_err(|e| {
                        MailerError(format!("cannot read smtp.ca_file {}: {e}", cfg.ca_file))
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        MailerError(format!(
                            "smtp.ca_file {} is not a PEM certificate: {e}",
                            cfg.ca_file
                        ))
                    })?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(|e| {
                    MailerError(format!("cannot set up TLS for the mail server: {e}"))
                })?;
                match security {
                    SmtpSecurity::Tls => Tls::Wrapper(params),
                    _ => Tls::Required(params),
                }
            }
        };
        let mut builder = SmtpTransport::builder_dangerous(cfg.host.as_str())
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout));
        if !cfg.username.is_empty() {
            builder = builder.credentials(Credentials::new(cfg.username.clone(), password(cfg)?));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            timeout: cfg.timeout,
        }))
    }

    /// Sends `m` once.
    pub fn send(&self, m: &Message) -> Result<(), SendFailure> {
        let to = m.recipient.parse::<Mailbox>().map_err(|e| {
            SendFailure::permanent(format!("{:?} is not an email address: {e}", m.recipient))
        })?;
        let builder = lettre::Message::builder()
            .message_id(None)
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone());
        let message = match &m.html_body {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                m.text_body.clone(),
                html.clone(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(m.text_body.clone()),
        }
        .map_err(|e| SendFailure::permanent(format!("the message cannot be built: {e}")))?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| SendFailure {
                permanent: e.is_permanent(),
                reason: if timed_out(&e) {
                    format!(
                        "the mail server did not answer within {} (timed out)",
                        crate::config::format_duration(self.timeout)
                    )
                } else {
                    one_line(&e)
                },
            })
    }
}

/// Whether `e` is a read or write that outlived the socket timeout (which the system
/// reports as "would block" or "timed out").
fn timed_out(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_timeout() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The password: `[smtp] password_file`'s first line, else `SEATGATE_SMTP_PASSWORD`.
fn password(cfg: &SmtpConfig) -> Result<String, MailerError> {
    if cfg.password_file.is_empty() {
        return Ok(std::env::var("SEATGATE_SMTP_PASSWORD").unwrap_or_default());
    }
    let text = std::fs::read_to_string(&cfg.password_file).map_err(|e| {
        MailerError(format!(
            "cannot read smtp.password_file {}: {e}",
            cfg.password_file
        ))
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// An error with its causes, on one line, for the outbox's `last_error`.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.replace(['\r', '\n'], " ").chars().take(500).collect()
}

/// The wait before retry number `attempt` (1-based): `first`, doubling, at most an hour.
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    let doubled = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    doubled.min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_an_hour() {
        let m = Duration::from_secs(60);
        assert_eq!(backoff(m, 1), m);
        assert_eq!(backoff(m, 2), 2 * m);
        assert_eq!(backoff(m, 4), 8 * m);
        assert_eq!(backoff(m, 30), Duration::from_secs(3600));
    }
}

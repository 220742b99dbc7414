//! The outbox worker: one thread beside the server that sends queued messages through the
//! mail server, at most `[smtp] max_per_minute`, and records each outcome. Messages are
//! stored before anything is sent (`db::outbox`), so a restart, a full disk or a mail
//! server that is down loses nothing; a message interrupted between its send and its
//! record is sent again (at least once, never silently dropped).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::SmtpConfig;
use crate::db::Db;
use crate::db::outbox as store;

use super::smtp::{Mailer, backoff};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

pub struct Outbox {
    db: Arc<Db>,
    mailer: Option<Mailer>,
    cfg: SmtpConfig,
    /// When the messages of the last minute went out (the rate limit's window).
    window: VecDeque<Instant>,
    /// Whether "no mail server" was logged (once, not every tick).
    told_no_server: bool,
}

impl Outbox {
    pub fn new(db: Arc<Db>, cfg: &SmtpConfig) -> Result<Outbox, super::smtp::MailerError> {
        Ok(Outbox {
            db,
            mailer: Mailer::from_config(cfg)?,
            cfg: cfg.clone(),
            window: VecDeque::new(),
            told_no_server: false,
        })
    }

    /// How many more messages the rate limit allows now.
    fn allowance(&mut self) -> usize {
        let minute = Duration::from_secs(60);
        while self.window.front().is_some_and(|t| t.elapsed() >= minute) {
            self.window.pop_front();
        }
        (self.cfg.max_per_minute as usize).saturating_sub(self.window.len())
    }

    /// Sends what is due, within the rate limit; `stop` ends the pass between messages.
    pub fn pass(
        &mut self,
        now: impl Fn() -> i64,
        stop: &dyn Fn() -> bool,
    ) -> rusqlite::Result<Pass> {
        let mut done = Pass::default();
        if self.mailer.is_none() {
            if !self.told_no_server {
                let waiting = self.db.read(store::counts)?.0;
                if waiting > 0 {
                    log::warn!(
                        "{waiting} email(s) wait in the outbox: set [smtp] host (and from) to send them"
                    );
                    self.told_no_server = true;
                }
            }
            return Ok(done);
        }
        let allowance = self.allowance();
        if allowance == 0 {
            return Ok(done);
        }
        let due = self
            .db
            .read(|tx| store::due(tx, now(), allowance.min(500) as i64))?;
        let Outbox {
            db,
            mailer,
            cfg,
            window,
            ..
        } = self;
        let Some(mailer) = mailer.as_ref() else {
            return Ok(done);
        };
        for m in due {
            if stop() {
                break;
            }
            window.push_back(Instant::now());
            let outcome = mailer.send(&m);
            let at = now();
            let attempt = u32::try_from(m.attempts + 1).unwrap_or(u32::MAX);
            let retry_at = match &outcome {
                Err(f) if !f.permanent && attempt < cfg.max_attempts => {
                    Some(at + backoff(cfg.retry_after, attempt).as_secs() as i64)
                }
                _ => None,
            };
            db.write(|tx| match &outcome {
                Ok(()) => store::mark_sent(tx, m.id, at),
                Err(f) => store::mark_attempt_failed(tx, m.id, &f.reason, retry_at),
            })?;
            match (outcome, retry_at) {
                (Ok(()), _) => {
                    done.sent += 1;
                    log::info!("email {} ({}) sent to {}", m.id, m.kind, m.recipient);
                }
                (Err(f), None) => {
                    done.failed += 1;
                    log::warn!(
                        "email {} ({}) to {} failed after {attempt} attempt(s): {}",
                        m.id,
                        m.kind,
                        m.recipient,
                        f.reason
                    );
                }
                (Err(f), Some(at)) => {
                    done.retried += 1;
                    log::warn!(
                        "email {} ({}) to {} not sent, tried again at {}: {}",
                        m.id,
                        m.kind,
                        m.recipient,
                        crate::clock::rfc3339(at),
                        f.reason
                    );
                }
            }
        }
        Ok(done)
    }
}

/// Runs the outbox until `stop` is dropped: a pass every second (or sooner after a busy
/// one).
pub fn run(mut outbox: Outbox, clock: crate::clock::Clock, stop: mpsc::Receiver<()>) {
    let stopped = std::cell::Cell::new(false);
    loop {
        match stop.recv_timeout(Duration::from_secs(1)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let check = || {
            if matches!(
                stop.try_recv(),
                Err(mpsc::TryRecvError::Disconnected) | Ok(())
            ) {
                stopped.set(true);
            }
            stopped.get()
        };
        if let Err(e) = outbox.pass(|| clock.now_unix(), &check) {
            crate::db::health::global().observe(&e);
            if !crate::db::health::global().reported() {
                log::error!("the outbox could not be processed: {e}");
            }
        }
        if stopped.get() {
            return;
        }
    }
}

//! The SCIM request log: what each IdP sent and how it went, so an admin can see why
//! provisioning failed. Entries are written by one background thread in batches (one
//! transaction per batch), so logging never doubles the write load of a sync. Request
//! bodies are stored without passwords and truncated.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::db::Db;

const QUEUE: usize = 16 * 1024;
const MAX_BODY_CHARS: usize = 4096;

pub use crate::db::directory::ScimRequestEntry as Entry;

pub struct RequestLog {
    tx: Mutex<Option<SyncSender<Entry>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl RequestLog {
    pub fn start(db: Arc<Db>, keep_rows: i64) -> std::io::Result<RequestLog> {
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("scim-log".into())
            .spawn(move || writer(&db, &rx, keep_rows))?;
        Ok(RequestLog {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues an entry; drops it (with a warning) if the writer is far behind.
    pub fn record(&self, entry: Entry) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = guard.as_ref()
            && let Err(TrySendError::Full(_)) = tx.try_send(entry)
        {
            log::warn!("the SCIM request log is behind; an entry was dropped");
        }
    }

    /// Writes what is queued and stops the writer (at shutdown, before the checkpoint).
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn writer(db: &Db, rx: &Receiver<Entry>, keep_rows: i64) {
    let mut batches = 0u64;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        // Gather what arrives in the next few milliseconds into the same transaction.
        while batch.len() < 1000 {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        batches += 1;
        let prune = batches.is_multiple_of(64);
        let result = db.write(|tx| {
            crate::db::directory::append_scim_requests(tx, &batch)?;
            if prune {
                crate::db::directory::prune_scim_requests(tx, keep_rows)?;
            }
            Ok::<_, rusqlite::Error>(())
        });
        // Damage or a full disk was logged once; every lost batch would repeat it.
        if let Err(e) = result
            && !crate::db::health::global().reported()
        {
            log::error!("cannot write the SCIM request log: {e}");
        }
    }
}

/// A request body as stored in the log: valid JSON with every `password` removed, else a
/// note; truncated.
pub fn sanitize_body(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    // Most bodies carry no password: keep them as sent instead of re-serializing.
    let has_password = body.windows(8).any(|w| w.eq_ignore_ascii_case(b"password"));
    let plain = std::str::from_utf8(body)
        .ok()
        .filter(|_| !has_password && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok());
    let text = match plain {
        Some(s) => s.to_string(),
        None => sanitize_json(body),
    };
    Some(if text.chars().count() > MAX_BODY_CHARS {
        let cut: String = text.chars().take(MAX_BODY_CHARS).collect();
        format!("{cut}… (truncated)")
    } else {
        text
    })
}

fn sanitize_json(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            strip_passwords(&mut v);
            v.to_string()
        }
        Err(_) => format!("(not JSON, {} bytes)", body.len()),
    }
}

fn strip_passwords(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|k, _| !k.eq_ignore_ascii_case("password"));
            o.values_mut().for_each(strip_passwords);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_passwords),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_the_log() {
        let body =
            br#"{"userName":"a","password":"hunter2","Operations":[{"value":{"Password":"x"}}]}"#;
        let s = super::sanitize_body(body).expect("some");
        assert!(
            !s.contains("hunter2") && !s.to_lowercase().contains("password"),
            "{s}"
        );
        assert_eq!(
            super::sanitize_body(b"\xff\xfe").as_deref(),
            Some("(not JSON, 2 bytes)")
        );
    }
}

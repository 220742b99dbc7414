//! The local update server: app installer packages on two branches (`stable`, `beta`),
//! each signed at upload with the gateway's update key as Sparkle signs archives
//! (`edSignature`, Ed25519 over the whole file), and the feeds the Macs read: a Sparkle
//! appcast and a JSON equivalent per branch, or for one pinned version. A Mac's branch is
//! its policy's update branch (`update_branch`: stable, beta or a version), else the
//! configuration profile's.

use serde_json::{Value, json};

use super::{Distribution, audit};
use crate::audit::{Actor, AuditAction};
use crate::db::Db;
use crate::db::distribution::{self as store, PackageRow, UploadRow};
use crate::domain::files::compare_release as compare_versions;
use crate::domain::problem::{Problem, Reason};
use crate::storage;

/// The settings key of the update-signing key (an Ed25519 seed, hex).
const KEY_SETTING: &str = "update_signing_key";

pub struct NewPackage<'a> {
    pub version: &'a str,
    pub branch: &'a str,
    pub min_os: &'a str,
    pub notes: &'a str,
    pub file_name: &'a str,
    pub sha256: &'a str,
}

/// Signs a finished upload, moves it into place and records it, in one transaction.
pub(super) fn store_package(
    dist: &Distribution,
    db: &Db,
    upload: &UploadRow,
    p: NewPackage<'_>,
    actor: &Actor,
    now: i64,
) -> Result<PackageRow, Problem> {
    let seed = signing_seed(db, now)?;
    let part = dist
        .storage
        .path(&storage::upload_file(&upload.id))
        .map_err(|e| Problem::new(Reason::StorageError, e.to_string()))?;
    let signature = crate::crypto::ed25519_sign_file(&seed, &part).map_err(|e| {
        log::error!("cannot sign upload {}: {e}", upload.id);
        Problem::new(
            Reason::StorageError,
            "The package could not be read to sign it.",
        )
    })?;
    let row = db.write(|tx| {
        if store::package_named(tx, p.version)?.is_some() {
            return Err(Problem::new(
                Reason::VersionExists,
                format!(
                    "Version {} of the app is already on the update server; nothing was kept.",
                    p.version
                ),
            ));
        }
        let row = PackageRow {
            id: store::next_package_id(tx)?,
            version: p.version.to_string(),
            branch: p.branch.to_string(),
            min_os: p.min_os.to_string(),
            notes: p.notes.to_string(),
            file_name: p.file_name.to_string(),
            size: upload.size,
            sha256: p.sha256.to_string(),
            ed_signature: crate::crypto::b64(&signature),
            created_by: upload.created_by.clone(),
            created_at: now,
            retired_at: None,
        };
        store::insert_package(tx, &row)?;
        store::delete_upload(tx, &upload.id)?;
        audit(
            tx,
            actor,
            AuditAction::PackageAdded,
            &row.version,
            &json!({"version": row.version, "branch": row.branch, "size": row.size, "sha256": row.sha256}),
            now,
        )?;
        dist.storage
            .commit(&storage::upload_file(&upload.id), &storage::package_file(row.id))
            .map_err(|e| {
                log::error!("cannot move upload {} into place: {e}", upload.id);
                Problem::new(
                    Reason::StorageError,
                    "The finished upload could not be moved into place; see the gateway's log.",
                )
            })?;
        Ok(row)
    })?;
    dist.forget_hash(&upload.id);
    log::info!(
        "stored app version {} on the {} branch ({} bytes)",
        row.version,
        row.branch,
        row.size
    );
    Ok(row)
}

/// The update-signing key's seed (Sparkle's EdDSA key), made on first use.
fn signing_seed(db: &Db, now: i64) -> Result<[u8; 32], Problem> {
    super::secret(db, KEY_SETTING, now)
}

/// The update key's public half, base64: what the app's `SUPublicEDKey` must be.
pub fn public_key(db: &Db, now: i64) -> Result<String, Problem> {
    let seed = signing_seed(db, now)?;
    Ok(crate::crypto::b64(&crate::crypto::ed25519_public_of_seed(
        &seed,
    )))
}

/// Retires a version: no feed offers it any more, and its file is not served.
pub fn retire(db: &Db, actor: &Actor, version: &str, now: i64) -> Result<PackageRow, Problem> {
    db.write(|tx| {
        let p = store::package_named(tx, version)?.ok_or_else(|| {
            Problem::new(
                Reason::NotFound,
                format!("There is no app version {version:?}."),
            )
        })?;
        if !store::retire_package(tx, p.id, now)? {
            return Err(Problem::new(
                Reason::Conflict,
                format!("Version {version} is already retired."),
            ));
        }
        audit(
            tx,
            actor,
            AuditAction::PackageRetired,
            &p.version,
            &json!({"version": p.version, "branch": p.branch}),
            now,
        )?;
        Ok(PackageRow {
            retired_at: Some(now),
            ..p
        })
    })
}

/// Every package, newest version first.
pub fn all(db: &Db) -> Result<Vec<PackageRow>, Problem> {
    let mut all = db.read(store::packages)?;
    all.sort_by(|a, b| compare_versions(&b.version, &a.version));
    Ok(all)
}

/// Which feed: a branch, or one pinned version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    Branch(String),
    Pinned(String),
}

impl Feed {
    /// The feed a policy's `update_branch` (stable, beta or a version) names.
    pub fn of_setting(setting: &str) -> Feed {
        match setting {
            "stable" | "beta" => Feed::Branch(setting.to_string()),
            version => Feed::Pinned(version.to_string()),
        }
    }

    /// The appcast's path on the gateway.
    pub fn appcast_path(&self) -> String {
        match self {
            Feed::Branch(b) => format!("/updates/{b}/appcast.xml"),
            Feed::Pinned(v) => format!("/updates/pinned/{v}/appcast.xml"),
        }
    }

    fn name(&self) -> String {
        match self {
            Feed::Branch(b) => b.clone(),
            Feed::Pinned(v) => format!("pinned to {v}"),
        }
    }
}

/// The live packages a feed offers, newest first: the stable branch has stable versions;
/// beta has beta and stable (a beta tester still gets the next stable release); a pinned
/// feed has exactly that version.
pub fn items(db: &Db, feed: &Feed) -> Result<Vec<PackageRow>, Problem> {
    Ok(all(db)?
        .into_iter()
        .filter(|p| p.retired_at.is_none())
        .filter(|p| match feed {
            Feed::Branch(b) if b == "stable" => p.branch == "stable",
            Feed::Branch(_) => true,
            Feed::Pinned(v) => &p.version == v,
        })
        .collect())
}

/// The download address of a package (under the public URL).
pub fn download_url(public_url: &str, p: &PackageRow) -> String {
    format!("{public_url}/updates/packages/{}/{}", p.id, p.file_name)
}

/// A Sparkle appcast (RSS 2.0 with the sparkle namespace) of a feed's items.
pub fn appcast(public_url: &str, feed: &Feed, items: &[PackageRow]) -> String {
    let esc = crate::http::html_escape;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\" xmlns:sparkle=\"http://www.andymatuschak.org/xml-namespaces/sparkle\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n<channel>\n",
    );
    out.push_str(&format!(
        "<title>App updates ({})</title>\n<link>{}</link>\n<description>Served by seatgate</description>\n<language>en</language>\n",
        esc(&feed.name()),
        esc(&format!("{public_url}{}", feed.appcast_path()))
    ));
    for p in items {
        out.push_str("<item>\n");
        out.push_str(&format!("<title>Version {}</title>\n", esc(&p.version)));
        out.push_str(&format!("<pubDate>{}</pubDate>\n", rfc2822(p.created_at)));
        out.push_str(&format!(
            "<sparkle:version>{0}</sparkle:version>\n<sparkle:shortVersionString>{0}</sparkle:shortVersionString>\n",
            esc(&p.version)
        ));
        out.push_str(&format!(
            "<sparkle:minimumSystemVersion>{}</sparkle:minimumSystemVersion>\n",
            esc(&p.min_os)
        ));
        // A pinned feed's one item must reach the Mac whatever channels it allows.
        if p.branch == "beta" && matches!(feed, Feed::Branch(_)) {
            out.push_str("<sparkle:channel>beta</sparkle:channel>\n");
        }
        if !p.notes.is_empty() {
            // Plain text, as entered: Sparkle would render a bare description as HTML.
            out.push_str(&format!(
                "<description sparkle:format=\"plain-text\">{}</description>\n",
                esc(&p.notes)
            ));
        }
        out.push_str(&format!(
            "<enclosure url=\"{}\" length=\"{}\" type=\"application/octet-stream\" sparkle:edSignature=\"{}\"/>\n",
            esc(&download_url(public_url, p)),
            p.size,
            esc(&p.ed_signature)
        ));
        out.push_str("</item>\n");
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

/// The same feed as JSON.
pub fn json_feed(public_url: &str, feed: &Feed, items: &[PackageRow], key: &str) -> Value {
    let list: Vec<Value> = items
        .iter()
        .map(|p| {
            json!({"version": p.version, "branch": p.branch, "min_os": p.min_os,
                   "notes": p.notes, "url": download_url(public_url, p), "size": p.size,
                   "sha256": p.sha256, "ed_signature": p.ed_signature,
                   "published_at": crate::clock::rfc3339(p.created_at)})
        })
        .collect();
    json!({"feed": feed.name(), "appcast": format!("{public_url}{}", feed.appcast_path()),
           "public_ed_key": key, "items": list})
}

/// RFC 2822 date, as RSS wants (`Mon, 30 Nov 2026 14:00:00 +0000`).
fn rfc2822(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
}

/// A live package by id, for a download.
pub fn live_package(db: &Db, id: &str) -> Result<PackageRow, Problem> {
    let not_found = || Problem::new(Reason::NotFound, "There is no such app version.");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    db.read(|tx| store::package(tx, id))?
        .filter(|p| p.retired_at.is_none())
        .ok_or_else(not_found)
}

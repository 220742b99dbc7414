//! Golden VM images: versions stored from finished uploads, assignments to IdP groups
//! (the latest version or a pinned one), the signed listing a device gets of what is
//! assigned to it, and the short-lived download authorization that listing carries.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Distribution, audit};
use crate::audit::{Actor, AuditAction};
use crate::config::LeaseConfig;
use crate::db::Db;
use crate::db::distribution::{self as store, ImageAssignmentRow, ImageRow, UploadRow, VersionRow};
use crate::domain::files::compare_release as compare_versions;
use crate::domain::problem::{Problem, Reason};
use crate::storage;

/// The listing's JWS `typ`.
pub const LISTING_TYP: &str = "seatgate-images+jwt";
/// How long a listing's download authorizations work.
pub const DOWNLOAD_TTL_SECS: i64 = 24 * 3600;
/// The settings key of the download authorizations' HMAC key.
const TOKEN_KEY_SETTING: &str = "download_token_key";

pub struct NewVersion<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub description: &'a str,
    pub notes: &'a str,
    pub sha256: &'a str,
}

/// Moves a finished upload into place as a new version (creating the image with its
/// first version), in one transaction with its record.
pub(super) fn store_version(
    dist: &Distribution,
    db: &Db,
    upload: &UploadRow,
    v: NewVersion<'_>,
    actor: &Actor,
    now: i64,
) -> Result<VersionRow, Problem> {
    let row = db.write(|tx| {
        let image = match store::image(tx, v.name)? {
            Some(image) => image,
            None => {
                let image = ImageRow {
                    id: format!("img-{}", crate::crypto::random_hex(6)),
                    name: v.name.to_string(),
                    description: v.description.to_string(),
                    created_at: now,
                };
                store::insert_image(tx, &image)?;
                image
            }
        };
        if store::version_named(tx, &image.id, v.version)?.is_some() {
            return Err(Problem::new(
                Reason::VersionExists,
                format!(
                    "The image {:?} already has a version {}; nothing was kept.",
                    image.name, v.version
                ),
            ));
        }
        let id = store::next_version_id(tx)?;
        let row = VersionRow {
            id,
            image_id: image.id.clone(),
            image_name: image.name.clone(),
            version: v.version.to_string(),
            size: upload.size,
            sha256: v.sha256.to_string(),
            notes: v.notes.to_string(),
            created_by: upload.created_by.clone(),
            created_at: now,
        };
        if store::insert_version(tx, &row)? != id {
            return Err(Problem::new(Reason::Internal, "A version id changed."));
        }
        store::delete_upload(tx, &upload.id)?;
        audit(
            tx,
            actor,
            AuditAction::ImageVersionAdded,
            &image.id,
            &json!({"name": image.name, "version": row.version, "size": row.size, "sha256": row.sha256}),
            now,
        )?;
        // Last, so a failure above leaves the upload to resume: a crash after the move
        // and before the commit leaves a file the upkeep removes (no version names it).
        dist.storage
            .commit(&storage::upload_file(&upload.id), &storage::image_file(id))
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
        "stored image {:?} version {} ({} bytes, sha256 {})",
        row.image_name,
        row.version,
        row.size,
        row.sha256
    );
    Ok(row)
}

pub fn find(db: &Db, id_or_name: &str) -> Result<ImageRow, Problem> {
    db.read(|tx| store::image(tx, id_or_name))?.ok_or_else(|| {
        Problem::new(
            Reason::NotFound,
            format!("There is no image {id_or_name:?}."),
        )
    })
}

/// The newest of an image's versions, by version number.
pub fn latest<'v>(versions: impl Iterator<Item = &'v VersionRow>) -> Option<&'v VersionRow> {
    versions.max_by(|a, b| compare_versions(&a.version, &b.version).then(a.id.cmp(&b.id)))
}

/// Assigns an image to an IdP group (within a connection's scope, or none), the latest
/// version or a pinned one; assigning again changes the pin.
pub fn assign(
    db: &Db,
    actor: &Actor,
    image: &str,
    group: &str,
    connection: Option<&str>,
    pinned: Option<&str>,
    now: i64,
) -> Result<ImageAssignmentRow, Problem> {
    let group = group.trim();
    if group.is_empty() || group.len() > 256 || group.chars().any(char::is_control) {
        return Err(Problem::new(
            Reason::BadRequest,
            "The group must be a group's name or external id (1 to 256 printable characters).",
        ));
    }
    db.write(|tx| {
        let image = store::image(tx, image)?
            .ok_or_else(|| Problem::new(Reason::NotFound, format!("There is no image {image:?}.")))?;
        if let Some(c) = connection
            && !crate::db::idp::id_taken(tx, c)?
        {
            return Err(Problem::new(
                Reason::BadRequest,
                format!("There is no IdP connection {c:?}."),
            ));
        }
        if let Some(v) = pinned
            && store::version_named(tx, &image.id, v)?.is_none()
        {
            return Err(Problem::new(
                Reason::BadRequest,
                format!("The image {:?} has no version {v:?} to pin.", image.name),
            ));
        }
        let mut row = ImageAssignmentRow {
            id: format!("ia-{}", crate::crypto::random_hex(6)),
            image_id: image.id.clone(),
            image_name: image.name.clone(),
            group_ref: group.to_string(),
            connection_id: connection.map(str::to_string),
            pinned_version: pinned.map(str::to_string),
            created_at: now,
        };
        row.id = store::upsert_assignment(tx, &row)?;
        audit(
            tx,
            actor,
            AuditAction::ImageAssigned,
            &image.id,
            &json!({"name": image.name, "group": group, "connection": connection, "version": pinned}),
            now,
        )?;
        Ok(row)
    })
}

/// Removes an assignment; `image` (id or name), when given, must be the one it assigns.
pub fn unassign(
    db: &Db,
    actor: &Actor,
    image: Option<&str>,
    assignment: &str,
    now: i64,
) -> Result<(), Problem> {
    db.write(|tx| {
        let of_image = |a: &ImageAssignmentRow| {
            image.is_none_or(|i| a.image_id == i || a.image_name.eq_ignore_ascii_case(i))
        };
        let a = store::assignment(tx, assignment)?
            .filter(of_image)
            .ok_or_else(|| {
                Problem::new(
                    Reason::NotFound,
                    format!("There is no image assignment {assignment:?}."),
                )
            })?;
        store::delete_assignment(tx, &a.id)?;
        audit(
            tx,
            actor,
            AuditAction::ImageUnassigned,
            &a.image_id,
            &json!({"name": a.image_name, "group": a.group_ref}),
            now,
        )
        .map_err(Problem::from)
    })
}

/// Deletes a version and its file; refused while an assignment pins it.
pub fn delete_version(
    dist: &Distribution,
    db: &Db,
    actor: &Actor,
    image: &str,
    version: &str,
    now: i64,
) -> Result<(), Problem> {
    let id = db.write(|tx| {
        let image = store::image(tx, image)?.ok_or_else(|| {
            Problem::new(Reason::NotFound, format!("There is no image {image:?}."))
        })?;
        let v = store::version_named(tx, &image.id, version)?.ok_or_else(|| {
            Problem::new(
                Reason::NotFound,
                format!("The image {:?} has no version {version:?}.", image.name),
            )
        })?;
        if store::pins_of(tx, &image.id, version)? > 0 {
            return Err(Problem::new(
                Reason::Conflict,
                format!(
                    "Version {version} of {:?} is pinned by a group assignment; change that first.",
                    image.name
                ),
            ));
        }
        store::delete_version(tx, v.id)?;
        audit(
            tx,
            actor,
            AuditAction::ImageVersionDeleted,
            &image.id,
            &json!({"name": image.name, "version": version}),
            now,
        )?;
        Ok::<_, Problem>(v.id)
    })?;
    if let Err(e) = dist.storage.remove(&storage::image_file(id)) {
        log::warn!("image version {id} is deleted but its file stays: {e}");
    }
    Ok(())
}

/// One image version a device is to have.
#[derive(Debug, Clone, Serialize)]
pub struct Assigned {
    pub version: VersionRow,
    /// The groups that give it.
    pub groups: Vec<String>,
    pub pinned: bool,
}

/// What a user's devices are to have: per assignment, the pinned version or the latest.
pub fn assigned_to_user(
    tx: &rusqlite::Transaction<'_>,
    user_id: &str,
) -> rusqlite::Result<Vec<Assigned>> {
    let mut out: Vec<Assigned> = Vec::new();
    for a in store::assignments_of_user(tx, user_id)? {
        let versions = store::versions_of(tx, &a.image_id)?;
        let chosen = match &a.pinned_version {
            Some(pin) => versions.iter().find(|v| &v.version == pin),
            None => latest(versions.iter()),
        };
        let Some(chosen) = chosen else { continue };
        match out.iter_mut().find(|x| x.version.id == chosen.id) {
            Some(x) => x.groups.push(a.group_ref.clone()),
            None => out.push(Assigned {
                version: chosen.clone(),
                groups: vec![a.group_ref.clone()],
                pinned: a.pinned_version.is_some(),
            }),
        }
    }
    Ok(out)
}

/// The address a device downloads a version from.
pub fn download_path(version_id: i64) -> String {
    format!("/api/v1/images/{version_id}/file")
}

/// `GET /api/v1/images`: the images assigned to the proving device, signed with the
/// lease keys, each with its SHA-256 and a download authorization for 24 hours.
pub fn listing(
    db: &Db,
    cfg: &LeaseConfig,
    issuer: &str,
    proof: &str,
    now: i64,
) -> Result<String, Problem> {
    let proven = crate::licensing::leases::proven_device(db, cfg, proof, "images", now)?;
    let device = &proven.device;
    let assigned = match &device.user_id {
        Some(user) => db.read(|tx| assigned_to_user(tx, user))?,
        // Key devices belong to no group, so no image is assigned to them.
        None => Vec::new(),
    };
    let key = token_key(db, now)?;
    let exp = now + DOWNLOAD_TTL_SECS;
    let images: Vec<Value> = assigned
        .iter()
        .map(|a| {
            let v = &a.version;
            json!({
                "image": v.image_id, "name": v.image_name, "version": v.version,
                "size": v.size, "sha256": v.sha256, "pinned": a.pinned,
                "url": format!("{issuer}{}", download_path(v.id)),
                "authorization": download_token(&key, &device.id, v, exp),
            })
        })
        .collect();
    let claims = json!({
        "iss": issuer,
        "device": device.id,
        "iat": now,
        "exp": exp,
        "images": images,
    });
    crate::domain::jose::sign_eddsa(&proven.key.pkcs8, &proven.key.kid, LISTING_TYP, &claims)
        .map_err(|_| Problem::new(Reason::Internal, "The listing could not be signed."))
}

/// The HMAC key of download authorizations, made on first use.
fn token_key(db: &Db, now: i64) -> Result<[u8; 32], Problem> {
    super::secret(db, TOKEN_KEY_SETTING, now)
}

/// `<device>.<version>.<exp>.<HMAC-SHA256 of those>`: lets one device fetch one version
/// until `exp`, with as many range requests as it needs (a proof of possession is
/// single-use).
fn download_token(key: &[u8], device: &str, version: &VersionRow, exp: i64) -> String {
    let body = format!("{device}.{}.{exp}", version.id);
    let tag = crate::crypto::hmac_sha256(key, signed_part(&body, &version.sha256).as_bytes());
    format!("{body}.{}", crate::crypto::b64url(&tag))
}

/// What the MAC covers: the token's text and the version's SHA-256, so an authorization
/// never fetches other bytes than those listed (a version id reused after a delete).
fn signed_part(body: &str, sha256: &str) -> String {
    format!("{body}.{sha256}")
}

/// The version a download may fetch: the authorization must be ours, unexpired, for this
/// version, and the device must still be active and still have the version assigned;
/// anything else is 404 (nothing says whether the version exists).
pub fn authorize_download(
    db: &Db,
    authorization: Option<&str>,
    version_id: &str,
    now: i64,
) -> Result<VersionRow, Problem> {
    let not_found = || Problem::new(Reason::NotFound, "There is no such image for this device.");
    let token = authorization
        .and_then(|h| h.strip_prefix("Download "))
        .ok_or_else(|| {
            Problem::new(
                Reason::Unauthorized,
                "Send the authorization from the image listing as 'Authorization: Download <token>'.",
            )
        })?;
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [device, version, exp, tag] = parts[..] else {
        return Err(not_found());
    };
    if version != version_id || exp.parse::<i64>().map_or(true, |e| e < now) {
        return Err(not_found());
    }
    let id: i64 = version.parse().map_err(|_| not_found())?;
    let key = token_key(db, now)?;
    let listed = db
        .read(|tx| store::version(tx, id))?
        .ok_or_else(not_found)?;
    let body = format!("{device}.{version}.{exp}");
    let tag = crate::crypto::b64url_decode(tag).ok_or_else(not_found)?;
    let signed = signed_part(&body, &listed.sha256);
    if !crate::crypto::hmac_sha256_verify(&key, signed.as_bytes(), &tag) {
        return Err(not_found());
    }
    db.read(|tx| {
        let device = crate::db::licensing::device(tx, device)?.ok_or_else(not_found)?;
        let (None, Some(user)) = (device.revoked_at, device.user_id.as_deref()) else {
            return Err(not_found());
        };
        assigned_to_user(tx, user)?
            .into_iter()
            .find(|a| a.version.id == id)
            .map(|a| a.version)
            .ok_or_else(not_found)
    })
}

/// One image with its versions (newest first), assignments and, per version, how many
/// devices report a VM of it in their inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub image: ImageRow,
    pub versions: Vec<(VersionRow, i64)>,
    pub assignments: Vec<ImageAssignmentRow>,
}

pub fn overview(db: &Db) -> Result<Vec<Overview>, Problem> {
    let (images, versions, assignments, counts) = db.read(|tx| {
        Ok::<_, Problem>((
            store::images(tx)?,
            store::versions(tx)?,
            store::assignments(tx)?,
            store::inventory_counts(tx)?,
        ))
    })?;
    let count = |name: &str, version: &str| {
        counts
            .iter()
            .filter(|(n, v, _)| n.eq_ignore_ascii_case(name) && v == version)
            .map(|c| c.2)
            .sum::<i64>()
    };
    Ok(images
        .into_iter()
        .map(|image| {
            let mut mine: Vec<(VersionRow, i64)> = versions
                .iter()
                .filter(|v| v.image_id == image.id)
                .map(|v| (v.clone(), count(&image.name, &v.version)))
                .collect();
            mine.sort_by(|a, b| compare_versions(&b.0.version, &a.0.version));
            Overview {
                assignments: assignments
                    .iter()
                    .filter(|a| a.image_id == image.id)
                    .cloned()
                    .collect(),
                versions: mine,
                image,
            }
        })
        .collect())
}

//! The distribution point's records: uploads in progress, golden images with their versions
//! and group assignments. (The files themselves are in the storage folder.)

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use super::admin::fold;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadRow {
    pub id: String,
    /// `image` or `package`.
    pub kind: String,
    /// What the finished file becomes, as JSON.
    pub target: String,
    /// Unique per target (an image's name and version): one upload of it at a time.
    pub target_key: String,
    pub size: i64,
    pub sha256: Option<String>,
    pub received: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const UPLOAD: &str = "SELECT id, kind, target, target_key, size, sha256, received, created_by, created_at, updated_at FROM uploads";

fn upload_row(r: &Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        target: r.get(2)?,
        target_key: r.get(3)?,
        size: r.get(4)?,
        sha256: r.get(5)?,
        received: r.get(6)?,
        created_by: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

pub fn insert_upload(tx: &Transaction<'_>, u: &UploadRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO uploads (id, kind, target, target_key, size, sha256, received, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            u.id,
            u.kind,
            u.target,
            u.target_key,
            u.size,
            u.sha256,
            u.received,
            u.created_by,
            u.created_at,
            u.updated_at
        ],
    )?;
    Ok(())
}

pub fn upload(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<UploadRow>> {
    tx.prepare_cached(&format!("{UPLOAD} WHERE id = ?1"))?
        .query_row([id], upload_row)
        .optional()
}

pub fn upload_of_target(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<UploadRow>> {
    tx.prepare_cached(&format!("{UPLOAD} WHERE target_key = ?1"))?
        .query_row([key], upload_row)
        .optional()
}

pub fn uploads(tx: &Transaction<'_>) -> rusqlite::Result<Vec<UploadRow>> {
    let mut stmt = tx.prepare_cached(&format!("{UPLOAD} ORDER BY created_at, id"))?;
    stmt.query_map([], upload_row)?.collect()
}

pub fn set_received(
    tx: &Transaction<'_>,
    id: &str,
    received: i64,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE uploads SET received = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, received, now],
    )?;
    Ok(())
}

pub fn delete_upload(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(tx.execute("DELETE FROM uploads WHERE id = ?1", [id])? > 0)
}

/// Uploads nobody has touched since `before`.
pub fn stale_uploads(tx: &Transaction<'_>, before: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached("SELECT id FROM uploads WHERE updated_at < ?1")?;
    stmt.query_map([before], |r| r.get(0))?.collect()
}

/// Bytes promised to the storage folder: stored files plus the full size of every upload
/// in progress (so two uploads cannot both pass the quota check for the same room).
pub fn committed_bytes(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT (SELECT coalesce(sum(size), 0) FROM image_versions)
              + (SELECT coalesce(sum(size), 0) FROM packages)
              + (SELECT coalesce(sum(size), 0) FROM uploads)",
        [],
        |r| r.get(0),
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

fn image_row(r: &Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        created_at: r.get(3)?,
    })
}

const IMAGE: &str = "SELECT id, name, description, created_at FROM images";

pub fn images(tx: &Transaction<'_>) -> rusqlite::Result<Vec<ImageRow>> {
    let mut stmt = tx.prepare_cached(&format!("{IMAGE} ORDER BY name_key"))?;
    stmt.query_map([], image_row)?.collect()
}

/// An image by id or by name (any case).
pub fn image(tx: &Transaction<'_>, id_or_name: &str) -> rusqlite::Result<Option<ImageRow>> {
    tx.prepare_cached(&format!("{IMAGE} WHERE id = ?1 OR name_key = ?2"))?
        .query_row(params![id_or_name, fold(id_or_name)], image_row)
        .optional()
}

pub fn insert_image(tx: &Transaction<'_>, image: &ImageRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO images (id, name, name_key, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            image.id,
            image.name,
            fold(&image.name),
            image.description,
            image.created_at
        ],
    )?;
    Ok(())
}

pub fn delete_image(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(tx.execute("DELETE FROM images WHERE id = ?1", [id])? > 0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRow {
    pub id: i64,
    pub image_id: String,
    pub image_name: String,
    pub version: String,
    pub size: i64,
    pub sha256: String,
    pub notes: String,
    pub created_by: String,
    pub created_at: i64,
}

const VERSION: &str = "SELECT v.id, v.image_id, i.name, v.version, v.size, v.sha256, v.notes, v.created_by, v.created_at
     FROM image_versions v JOIN images i ON i.id = v.image_id";

fn version_row(r: &Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        id: r.get(0)?,
        image_id: r.get(1)?,
        image_name: r.get(2)?,
        version: r.get(3)?,
        size: r.get(4)?,
        sha256: r.get(5)?,
        notes: r.get(6)?,
        created_by: r.get(7)?,
        created_at: r.get(8)?,
    })
}

/// Every version of every image (the caller orders versions by their numbers).
pub fn versions(tx: &Transaction<'_>) -> rusqlite::Result<Vec<VersionRow>> {
    let mut stmt = tx.prepare_cached(&format!("{VERSION} ORDER BY i.name_key, v.id"))?;
    stmt.query_map([], version_row)?.collect()
}

pub fn versions_of(tx: &Transaction<'_>, image_id: &str) -> rusqlite::Result<Vec<VersionRow>> {
    let mut stmt = tx.prepare_cached(&format!("{VERSION} WHERE v.image_id = ?1 ORDER BY v.id"))?;
    stmt.query_map([image_id], version_row)?.collect()
}

pub fn version(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Option<VersionRow>> {
    tx.prepare_cached(&format!("{VERSION} WHERE v.id = ?1"))?
        .query_row([id], version_row)
        .optional()
}

pub fn version_named(
    tx: &Transaction<'_>,
    image_id: &str,
    version: &str,
) -> rusqlite::Result<Option<VersionRow>> {
    tx.prepare_cached(&format!(
        "{VERSION} WHERE v.image_id = ?1 AND v.version = ?2"
    ))?
    .query_row(params![image_id, version], version_row)
    .optional()
}

/// Stores a version's record; its file must already be in place. Returns its id.
pub fn insert_version(tx: &Transaction<'_>, v: &VersionRow) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO image_versions (image_id, version, size, sha256, notes, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            v.image_id,
            v.version,
            v.size,
            v.sha256,
            v.notes,
            v.created_by,
            v.created_at
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// The id the next stored version gets (its file is named before its row is written).
pub fn next_version_id(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT coalesce(max(id), 0) + 1 FROM image_versions",
        [],
        |r| r.get(0),
    )
}

pub fn delete_version(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<bool> {
    Ok(tx.execute("DELETE FROM image_versions WHERE id = ?1", [id])? > 0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageAssignmentRow {
    pub id: String,
    pub image_id: String,
    pub image_name: String,
    pub group_ref: String,
    pub connection_id: Option<String>,
    /// `None`: the image's latest version.
    pub pinned_version: Option<String>,
    pub created_at: i64,
}

const ASSIGNMENT: &str =
    "SELECT a.id, a.image_id, i.name, a.group_ref, a.connection_id, a.pinned_version, a.created_at
     FROM image_assignments a JOIN images i ON i.id = a.image_id";

fn assignment_row(r: &Row<'_>) -> rusqlite::Result<ImageAssignmentRow> {
    Ok(ImageAssignmentRow {
        id: r.get(0)?,
        image_id: r.get(1)?,
        image_name: r.get(2)?,
        group_ref: r.get(3)?,
        connection_id: r.get(4)?,
        pinned_version: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub fn assignments(tx: &Transaction<'_>) -> rusqlite::Result<Vec<ImageAssignmentRow>> {
    let mut stmt = tx.prepare_cached(&format!("{ASSIGNMENT} ORDER BY i.name_key, a.group_ref"))?;
    stmt.query_map([], assignment_row)?.collect()
}

pub fn assignment(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<ImageAssignmentRow>> {
    tx.prepare_cached(&format!("{ASSIGNMENT} WHERE a.id = ?1"))?
        .query_row([id], assignment_row)
        .optional()
}

/// Assigns (or re-pins) an image to a group within a connection's scope; returns the
/// assignment's id (the existing one when re-pinned).
pub fn upsert_assignment(tx: &Transaction<'_>, a: &ImageAssignmentRow) -> rusqlite::Result<String> {
    tx.execute(
        "INSERT INTO image_assignments (id, image_id, group_ref, group_key, connection_id, pinned_version, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (image_id, group_key, coalesce(connection_id, '')) DO UPDATE SET
             pinned_version = excluded.pinned_version, group_ref = excluded.group_ref",
        params![
            a.id,
            a.image_id,
            a.group_ref,
            fold(&a.group_ref),
            a.connection_id,
            a.pinned_version,
            a.created_at
        ],
    )?;
    tx.query_row(
        "SELECT id FROM image_assignments
         WHERE image_id = ?1 AND group_key = ?2 AND connection_id IS ?3",
        params![a.image_id, fold(&a.group_ref), a.connection_id],
        |r| r.get(0),
    )
}

pub fn delete_assignment(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(tx.execute("DELETE FROM image_assignments WHERE id = ?1", [id])? > 0)
}

/// Assignments of a pinned version (which must not be deleted under them).
pub fn pins_of(tx: &Transaction<'_>, image_id: &str, version: &str) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT count(*) FROM image_assignments WHERE image_id = ?1 AND pinned_version = ?2",
        params![image_id, version],
        |r| r.get(0),
    )
}

/// The image assignments that reach a user through their groups (matched by display
/// name or external id within the group's connection, as seat mappings are).
pub fn assignments_of_user(
    tx: &Transaction<'_>,
    user_id: &str,
) -> rusqlite::Result<Vec<ImageAssignmentRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "{ASSIGNMENT} WHERE a.id IN (
             SELECT a2.id FROM group_members gm
             JOIN groups g ON g.id = gm.group_id
             JOIN image_assignments a2 ON a2.group_key IN (g.display_name_key, lower(g.external_id))
                  AND a2.connection_id IS g.connection_id
             WHERE gm.user_id = ?1)
         ORDER BY i.name_key, a.group_ref"
    ))?;
    stmt.query_map([user_id], assignment_row)?.collect()
}

/// How many active devices report a VM of each image version (from the VM inventory):
/// (image name, version, devices).
pub fn inventory_counts(tx: &Transaction<'_>) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT v.image_name, v.image_version, count(DISTINCT v.device_id)
         FROM device_vms v JOIN devices d ON d.id = v.device_id
         WHERE d.revoked_at IS NULL AND v.image_name IS NOT NULL AND v.image_version IS NOT NULL
         GROUP BY lower(v.image_name), v.image_version",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRow {
    pub id: i64,
    pub version: String,
    /// `stable` or `beta`.
    pub branch: String,
    pub min_os: String,
    pub notes: String,
    /// The name the download is offered under.
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    /// Sparkle's `edSignature`: base64 Ed25519 over the whole file.
    pub ed_signature: String,
    pub created_by: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

const PACKAGE: &str = "SELECT id, version, branch, min_os, notes, file_name, size, sha256, ed_signature, created_by, created_at, retired_at FROM packages";

fn package_row(r: &Row<'_>) -> rusqlite::Result<PackageRow> {
    Ok(PackageRow {
        id: r.get(0)?,
        version: r.get(1)?,
        branch: r.get(2)?,
        min_os: r.get(3)?,
        notes: r.get(4)?,
        file_name: r.get(5)?,
        size: r.get(6)?,
        sha256: r.get(7)?,
        ed_signature: r.get(8)?,
        created_by: r.get(9)?,
        created_at: r.get(10)?,
        retired_at: r.get(11)?,
    })
}

/// Every package, retired ones too (the caller orders them by version number).
pub fn packages(tx: &Transaction<'_>) -> rusqlite::Result<Vec<PackageRow>> {
    let mut stmt = tx.prepare_cached(&format!("{PACKAGE} ORDER BY id"))?;
    stmt.query_map([], package_row)?.collect()
}

pub fn package(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Option<PackageRow>> {
    tx.prepare_cached(&format!("{PACKAGE} WHERE id = ?1"))?
        .query_row([id], package_row)
        .optional()
}

pub fn package_named(tx: &Transaction<'_>, version: &str) -> rusqlite::Result<Option<PackageRow>> {
    tx.prepare_cached(&format!("{PACKAGE} WHERE version = ?1"))?
        .query_row([version], package_row)
        .optional()
}

/// The id the next stored package gets (its file is named before its row is written).
pub fn next_package_id(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM packages", [], |r| {
        r.get(0)
    })
}

pub fn insert_package(tx: &Transaction<'_>, p: &PackageRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO packages (id, version, branch, min_os, notes, file_name, size, sha256, ed_signature, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            p.id,
            p.version,
            p.branch,
            p.min_os,
            p.notes,
            p.file_name,
            p.size,
            p.sha256,
            p.ed_signature,
            p.created_by,
            p.created_at
        ],
    )?;
    Ok(())
}

pub fn retire_package(tx: &Transaction<'_>, id: i64, now: i64) -> rusqlite::Result<bool> {
    Ok(tx.execute(
        "UPDATE packages SET retired_at = ?2 WHERE id = ?1 AND retired_at IS NULL",
        params![id, now],
    )? > 0)
}

/// How many active devices last reported each app version: (version, devices).
pub fn app_versions(tx: &Transaction<'_>) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT app_version, count(*) FROM devices
         WHERE revoked_at IS NULL AND app_version IS NOT NULL GROUP BY app_version",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Records the app version a device reported (only when it changed).
pub fn set_app_version(tx: &Transaction<'_>, device: &str, version: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE devices SET app_version = ?2 WHERE id = ?1 AND app_version IS NOT ?2",
    )?
    .execute(params![device, version])?;
    Ok(())
}

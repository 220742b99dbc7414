//! The distribution point over HTTP: the admin API's images and resumable uploads
//! (`/api/v1/admin/images`, `/api/v1/admin/uploads/{id}`), the device's signed image
//! listing (`GET /api/v1/images`) and downloads with `Range`, `ETag` and `If-Range`
//! (`GET /api/v1/images/{version}/file`). Bodies are moved by the gatekeeper
//! (`net::stream`); these handlers decide who may move what, and where.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::clock::rfc3339;
use crate::db::distribution::{ImageAssignmentRow, PackageRow, UploadRow, VersionRow};
use crate::distribution::images::{self, Overview};
use crate::distribution::uploads::{self, Ended, Finished, Target};
use crate::domain::files::{self, Wanted};
use crate::domain::problem::{Problem, Reason};
use crate::error::HttpError;
use crate::http::{FILE_HEADER, Response, SPOOL_HEADER, UPLOAD_STAGE_HEADER};
use crate::pipeline::{Ctx, Handled};

fn json_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| {
        HttpError::new(
            Reason::BadRequest,
            format!("The body is not the JSON this address takes: {e}."),
        )
    })
}

pub fn version_json(v: &VersionRow) -> Value {
    json!({"id": v.id, "image": v.image_id, "name": v.image_name, "version": v.version,
           "size": v.size, "sha256": v.sha256, "notes": v.notes, "created_by": v.created_by,
           "created_at": rfc3339(v.created_at)})
}

pub fn package_json(app: &App, p: &PackageRow) -> Value {
    json!({"id": p.id, "version": p.version, "branch": p.branch, "min_os": p.min_os,
           "notes": p.notes, "file_name": p.file_name, "size": p.size, "sha256": p.sha256,
           "ed_signature": p.ed_signature,
           "url": crate::distribution::updates::download_url(&app.public_url, p),
           "created_by": p.created_by, "created_at": rfc3339(p.created_at),
           "retired_at": p.retired_at.map(rfc3339)})
}

fn assignment_json(a: &ImageAssignmentRow) -> Value {
    json!({"id": a.id, "image": a.image_id, "name": a.image_name, "group": a.group_ref,
           "connection": a.connection_id, "version": a.pinned_version,
           "created_at": rfc3339(a.created_at)})
}

fn upload_json(app: &App, row: &UploadRow) -> Result<Value, HttpError> {
    let status = uploads::status_of(row)?;
    Ok(json!({
        "id": status.id, "target": status.target, "size": status.size,
        "received": status.received, "sha256": status.sha256,
        "url": format!("{}/api/v1/admin/uploads/{}", app.public_url, status.id),
        "max_piece": app.config.limits.body_max_upload,
        "created_by": status.created_by, "created_at": rfc3339(status.created_at),
        "updated_at": rfc3339(status.updated_at),
    }))
}

/// An upload's state, with where to resume as `Upload-Offset` and `Range` headers.
fn upload_answer(app: &App, status: u16, row: &UploadRow) -> Handled {
    let mut r = Response::json(status, &upload_json(app, row)?)
        .with_header("Upload-Offset", &row.received.to_string());
    if row.received > 0 {
        r = r.with_header("Range", &format!("bytes=0-{}", row.received - 1));
    }
    Ok(r)
}

fn overview_json(o: &Overview) -> Value {
    let versions: Vec<Value> = o
        .versions
        .iter()
        .map(|(v, devices)| {
            let mut j = version_json(v);
            j["devices"] = json!(devices);
            j
        })
        .collect();
    let assignments: Vec<Value> = o.assignments.iter().map(assignment_json).collect();
    json!({"id": o.image.id, "name": o.image.name, "description": o.image.description,
           "created_at": rfc3339(o.image.created_at), "versions": versions,
           "assignments": assignments})
}

/// `GET /api/v1/admin/images`.
pub fn list_images(app: &App) -> Handled {
    let all = images::overview(&app.db)?;
    let list: Vec<Value> = all.iter().map(overview_json).collect();
    Ok(Response::json(200, &json!({"images": list})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewImageUpload {
    name: String,
    version: String,
    size: u64,
    sha256: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    notes: String,
}

/// `POST /api/v1/admin/images/uploads`: starts (or resumes) the upload of an image version.
pub fn start_image_upload(app: &App, cx: &Ctx<'_>) -> Handled {
    let b: NewImageUpload = json_body(&cx.req.body)?;
    let target = Target::Image {
        name: b.name,
        version: b.version,
        description: b.description,
        notes: b.notes,
    };
    let (row, created) = uploads::create(
        &app.distribution,
        &app.db,
        target,
        b.size,
        b.sha256.as_deref(),
        &cx.actor()?,
        app.clock.now_unix(),
    )?;
    let r = upload_answer(app, if created { 201 } else { 200 }, &row)?;
    Ok(r.with_header("Location", &format!("/api/v1/admin/uploads/{}", row.id)))
}

/// `GET /api/v1/admin/uploads`.
pub fn list_uploads(app: &App) -> Handled {
    let rows = app.db.read(crate::db::distribution::uploads)?;
    let list = rows
        .iter()
        .map(|r| upload_json(app, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Response::json(200, &json!({"uploads": list})))
}

/// `GET /api/v1/admin/uploads/{id}`.
pub fn upload_status(app: &App, cx: &Ctx<'_>) -> Handled {
    upload_answer(app, 200, &uploads::find(&app.db, cx.param("id"))?)
}

/// `DELETE /api/v1/admin/uploads/{id}`.
pub fn cancel_upload(app: &App, cx: &Ctx<'_>) -> Handled {
    uploads::cancel(&app.distribution, &app.db, cx.param("id"), &cx.actor()?)?;
    Ok(Response::new(204, "text/plain", Vec::new()))
}

/// `PUT /api/v1/admin/uploads/{id}`: a piece (`Content-Range: bytes FIRST-LAST/TOTAL`,
/// in two stages from the gatekeeper), or, without a body, `bytes */TOTAL` asking how much
/// is stored.
pub fn put_piece(app: &App, cx: &Ctx<'_>) -> Handled {
    let id = cx.param("id");
    let req = cx.req;
    let stage = req.header(UPLOAD_STAGE_HEADER).unwrap_or("");
    let bad_stage = || HttpError::new(Reason::Internal, "The upload stage is unreadable.");
    if let Some(len) = stage.strip_prefix("begin ") {
        let len: u64 = len.parse().map_err(|_| bad_stage())?;
        let (relative, offset) = uploads::begin(
            &app.distribution,
            &app.db,
            id,
            req.header("content-range"),
            len,
        )?;
        return Ok(Response::new(200, "text/plain", Vec::new())
            .with_header(SPOOL_HEADER, &format!("{relative} {offset}")));
    }
    if let Some(report) = stage.strip_prefix("end ") {
        let parts: Vec<&str> = report.split(' ').collect();
        let [offset, written, outcome] = parts[..] else {
            return Err(bad_stage());
        };
        let offset: u64 = offset.parse().map_err(|_| bad_stage())?;
        let written: u64 = written.parse().map_err(|_| bad_stage())?;
        let ended = uploads::end(
            &app.distribution,
            &app.db,
            id,
            (offset, written, outcome),
            &cx.actor()?,
            app.clock.now_unix(),
        )?;
        return ended_answer(app, ended);
    }
    let row = uploads::find(&app.db, id)?;
    if let Some(range) = req.header("content-range") {
        match files::parse_content_range(range)? {
            files::ContentRange::Query { total } if total == row.size as u64 => {}
            _ => {
                return Err(Problem::new(
                    Reason::BadRequest,
                    "A request without a body asks with Content-Range: bytes */TOTAL.",
                )
                .into());
            }
        }
    }
    // Every byte is in but the last step did not happen (a crash while it ran): asking
    // finishes it.
    if row.received == row.size {
        let ended = uploads::end(
            &app.distribution,
            &app.db,
            id,
            (row.size as u64, 0, "complete"),
            &cx.actor()?,
            app.clock.now_unix(),
        )?;
        return ended_answer(app, ended);
    }
    upload_answer(app, 200, &row)
}

/// The answer to a piece: where to resume, or what the finished upload became.
fn ended_answer(app: &App, ended: Ended) -> Handled {
    match ended {
        Ended::Partial(row) => upload_answer(app, 200, &row),
        Ended::Finished(Finished::Image(v)) => Ok(Response::json(
            201,
            &json!({"complete": true, "image_version": version_json(&v)}),
        )),
        Ended::Finished(Finished::Package(p)) => Ok(Response::json(
            201,
            &json!({"complete": true, "package": package_json(app, &p)}),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAssignment {
    group: String,
    connection: Option<String>,
    /// A version to pin; absent or null = the latest.
    version: Option<String>,
}

/// `POST /api/v1/admin/images/{image}/assignments`.
pub fn assign(app: &App, cx: &Ctx<'_>) -> Handled {
    let b: NewAssignment = json_body(&cx.req.body)?;
    let a = images::assign(
        &app.db,
        &cx.actor()?,
        cx.param("image"),
        &b.group,
        b.connection.as_deref(),
        b.version.as_deref(),
        app.clock.now_unix(),
    )?;
    Ok(Response::json(201, &assignment_json(&a)))
}

/// `DELETE /api/v1/admin/images/{image}/assignments/{id}`.
pub fn unassign(app: &App, cx: &Ctx<'_>) -> Handled {
    images::unassign(
        &app.db,
        &cx.actor()?,
        Some(cx.param("image")),
        cx.param("id"),
        app.clock.now_unix(),
    )?;
    Ok(Response::new(204, "text/plain", Vec::new()))
}

/// `DELETE /api/v1/admin/images/{image}/versions/{version}`.
pub fn delete_version(app: &App, cx: &Ctx<'_>) -> Handled {
    images::delete_version(
        &app.distribution,
        &app.db,
        &cx.actor()?,
        cx.param("image"),
        cx.param("version"),
        app.clock.now_unix(),
    )?;
    Ok(Response::new(204, "text/plain", Vec::new()))
}

/// `GET /api/v1/images`: the proving device's images, as a JWS signed with the lease keys.
pub fn device_listing(app: &App, cx: &Ctx<'_>) -> Handled {
    let jws = images::listing(
        &app.db,
        &app.config.lease,
        &app.public_url,
        cx.device_proof()?,
        app.clock.now_unix(),
    )?;
    Ok(Response::json(200, &json!({"listing": jws})).with_header("Cache-Control", "no-store"))
}

/// `GET /api/v1/images/{version}/file`: the file, whole or one range, streamed from the
/// storage folder by the gatekeeper.
pub fn download(app: &App, cx: &Ctx<'_>) -> Handled {
    let v = images::authorize_download(
        &app.db,
        cx.req.header("authorization"),
        cx.param("version"),
        app.clock.now_unix(),
    )?;
    let filename = format!("{}-{}.img", safe_file_name(&v.image_name), v.version);
    serve_file(
        cx,
        &crate::storage::image_file(v.id),
        v.size as u64,
        &v.sha256,
        &filename,
    )
}

/// A stored file as a response: `ETag` from its SHA-256, `If-None-Match` (304), `Range`
/// (one range: 206; past the end: 416) honoured only while `If-Range` still names it.
pub fn serve_file(
    cx: &Ctx<'_>,
    relative: &str,
    size: u64,
    sha256: &str,
    filename: &str,
) -> Handled {
    let req = cx.req;
    let etag = format!("\"sha256-{sha256}\"");
    let base = |status: u16| {
        Response::new(status, "application/octet-stream", Vec::new())
            .with_header("ETag", &etag)
            .with_header("Accept-Ranges", "bytes")
            .with_header("Cache-Control", "private, no-cache")
    };
    if files::none_match(req.header("if-none-match"), &etag) {
        return Ok(base(304));
    }
    let range_applies = req
        .header("if-range")
        .is_none_or(|v| files::etag_matches(Some(v), &etag));
    let wanted = if range_applies {
        files::parse_range(req.header("range"), size)?
    } else {
        Wanted::Whole
    };
    let disposition = format!("attachment; filename=\"{filename}\"");
    Ok(match wanted {
        Wanted::Whole => base(200)
            .with_header("Content-Disposition", &disposition)
            .with_header(FILE_HEADER, &format!("{relative} 0 {size}")),
        Wanted::Part { start, len } => base(206)
            .with_header("Content-Disposition", &disposition)
            .with_header(
                "Content-Range",
                &format!("bytes {start}-{}/{size}", start + len - 1),
            )
            .with_header(FILE_HEADER, &format!("{relative} {start} {len}")),
        Wanted::Unsatisfiable => {
            let e = HttpError::from(Problem::new(
                Reason::RangeNotSatisfiable,
                format!("The range starts past the end of the file ({size} bytes)."),
            ));
            e.render(cx.route.surface.format())
                .with_header("Content-Range", &format!("bytes */{size}"))
        }
    })
}

/// A name safe inside a quoted `Content-Disposition` filename.
fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(['-', '.']).to_string()
}

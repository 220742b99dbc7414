//! The local update server over HTTP: the admin API's packages (`/api/v1/admin/updates`),
//! the public feeds (`/updates/{branch}/appcast.xml` and `feed.json`, the same under
//! `/updates/pinned/{version}/`), package downloads (`/updates/packages/{id}/{file}`,
//! with `Range` and `ETag`), and a device's own feed (`GET /api/v1/updates`, proof of
//! possession: the branch its policy gives it, else the profile's).

use serde::Deserialize;
use serde_json::{Value, json};

use super::files::{package_json, serve_file};
use crate::app::App;
use crate::distribution::updates::{self, Feed};
use crate::distribution::uploads::{self, Target};
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::Response;
use crate::pipeline::{Ctx, Handled};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPackageUpload {
    version: String,
    branch: String,
    min_os: String,
    size: u64,
    sha256: Option<String>,
    #[serde(default)]
    notes: String,
    /// Default: `App-<version>.pkg`.
    file_name: Option<String>,
}

/// `POST /api/v1/admin/updates/uploads`: starts (or resumes) the upload of an app version.
pub fn start_upload(app: &App, cx: &Ctx<'_>) -> Handled {
    let b: NewPackageUpload = serde_json::from_slice(&cx.req.body).map_err(|e| {
        HttpError::new(
            Reason::BadRequest,
            format!("The body is not the JSON this address takes: {e}."),
        )
    })?;
    let file_name = b.file_name.unwrap_or_else(|| default_file_name(&b.version));
    let target = Target::Package {
        version: b.version,
        branch: b.branch,
        min_os: b.min_os,
        notes: b.notes,
        file_name,
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
    let status = uploads::status_of(&row)?;
    Ok(Response::json(
        if created { 201 } else { 200 },
        &json!({"id": row.id, "target": status.target, "size": row.size, "received": row.received,
                "url": format!("{}/api/v1/admin/uploads/{}", app.public_url, row.id),
                "max_piece": app.config.limits.body_max_upload}),
    )
    .with_header("Location", &format!("/api/v1/admin/uploads/{}", row.id))
    .with_header("Upload-Offset", &row.received.to_string()))
}

/// `GET /api/v1/admin/updates`: versions (newest first), the app versions devices run,
/// the feeds and the update key.
pub fn overview(app: &App) -> Handled {
    let packages = updates::all(&app.db)?;
    let running = app.db.read(crate::db::distribution::app_versions)?;
    let list: Vec<Value> = packages.iter().map(|p| package_json(app, p)).collect();
    let running: Vec<Value> = running
        .iter()
        .map(|(v, n)| json!({"version": v, "devices": n}))
        .collect();
    let base = &app.public_url;
    Ok(Response::json(
        200,
        &json!({"packages": list, "devices_by_version": running,
                "public_ed_key": updates::public_key(&app.db, app.clock.now_unix())?,
                "feeds": {"stable": format!("{base}/updates/stable/appcast.xml"),
                          "beta": format!("{base}/updates/beta/appcast.xml")}}),
    ))
}

/// `POST /api/v1/admin/updates/{version}/retire`.
pub fn retire(app: &App, cx: &Ctx<'_>) -> Handled {
    let p = updates::retire(
        &app.db,
        &cx.actor()?,
        cx.param("version"),
        app.clock.now_unix(),
    )?;
    Ok(Response::json(200, &package_json(app, &p)))
}

/// The feed an address names: a branch (`stable`, `beta`) or `pinned/{version}`.
fn feed_of(cx: &Ctx<'_>) -> Result<Feed, HttpError> {
    let pinned = cx
        .route
        .pattern
        .starts_with("/updates/pinned/")
        .then(|| cx.param("version").to_string());
    match pinned {
        Some(v) if crate::domain::files::check_version(&v).is_ok() => Ok(Feed::Pinned(v)),
        Some(_) => Err(HttpError::not_found()),
        None => match cx.param("branch") {
            b @ ("stable" | "beta") => Ok(Feed::Branch(b.to_string())),
            _ => Err(HttpError::not_found()),
        },
    }
}

/// `GET /updates/{branch}/appcast.xml`, `/updates/pinned/{version}/appcast.xml`.
pub fn appcast(app: &App, cx: &Ctx<'_>) -> Handled {
    let feed = feed_of(cx)?;
    let items = updates::items(&app.db, &feed)?;
    Ok(Response::new(
        200,
        "application/rss+xml; charset=utf-8",
        updates::appcast(&app.public_url, &feed, &items).into_bytes(),
    )
    .with_header("Cache-Control", "no-cache"))
}

/// `GET /updates/{branch}/feed.json`, `/updates/pinned/{version}/feed.json`.
pub fn json_feed(app: &App, cx: &Ctx<'_>) -> Handled {
    let feed = feed_of(cx)?;
    let items = updates::items(&app.db, &feed)?;
    let key = updates::public_key(&app.db, app.clock.now_unix())?;
    Ok(Response::json(
        200,
        &updates::json_feed(&app.public_url, &feed, &items, &key),
    )
    .with_header("Cache-Control", "no-cache"))
}

/// `GET /updates/packages/{id}/{file}`: a live package, streamed from disk.
pub fn download(app: &App, cx: &Ctx<'_>) -> Handled {
    let p = updates::live_package(&app.db, cx.param("id"))?;
    if cx.param("file") != p.file_name {
        return Err(HttpError::not_found());
    }
    serve_file(
        cx,
        &crate::storage::package_file(p.id),
        p.size as u64,
        &p.sha256,
        &p.file_name,
    )
}

/// `GET /api/v1/updates`: the proving device's feed, by its policy's update branch (else
/// the profile's `[profile] update_branch`).
pub fn device_feed(app: &App, cx: &Ctx<'_>) -> Handled {
    let now = app.clock.now_unix();
    let proven = crate::licensing::leases::proven_device(
        &app.db,
        &app.config.lease,
        cx.device_proof()?,
        "updates",
        now,
    )?;
    let set_by_policy = proven
        .policy
        .sources
        .get("update_branch")
        .is_some_and(|s| !matches!(s, crate::domain::policy::Source::BuiltIn));
    let from_policy = set_by_policy
        .then(|| proven.policy.values.get("update_branch"))
        .flatten()
        .and_then(Value::as_str)
        .map(str::to_string);
    let source = if from_policy.is_some() {
        "policy"
    } else {
        "profile"
    };
    let setting = from_policy.unwrap_or_else(|| app.config.profile.update_branch.clone());
    let feed = Feed::of_setting(&setting);
    let items = updates::items(&app.db, &feed)?;
    let mut body = updates::json_feed(
        &app.public_url,
        &feed,
        &items,
        &updates::public_key(&app.db, now)?,
    );
    body["branch"] = json!(setting);
    body["branch_from"] = json!(source);
    Ok(Response::json(200, &body).with_header("Cache-Control", "no-store"))
}

/// The name a package is offered under when none is given: `App-<version>.pkg` (a `+` of
/// build metadata, which file names do not take, as `_`).
pub fn default_file_name(version: &str) -> String {
    format!("App-{}.pkg", version.replace('+', "_"))
}

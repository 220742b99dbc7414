//! Issue 19 §1: golden images through the real binary over HTTPS. Uploads are written to
//! disk only after the admin is authenticated, resume after a dropped connection and after
//! kill -9, are hashed as they are committed (a mismatch keeps nothing), refuse duplicate
//! versions, quotas and a full disk cleanly; devices get a signed listing of what is
//! assigned to them and download with Range, ETag and If-Range; an unassigned or forged
//! download is 404; the reference client resumes and verifies.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::activation::{browse, client, setup};
use crate::admin_api::{admin_token, call};
use crate::portal::{get, session, submit};
use crate::support::{HttpResponse, TestServer, Tmpfs, db_query, server};

fn sha256(bytes: &[u8]) -> String {
    seatgate::crypto::hex(&seatgate::crypto::sha256(bytes))
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

fn start_upload(
    s: &TestServer,
    token: &str,
    version: &str,
    size: usize,
    sha: &str,
) -> HttpResponse {
    call(
        s,
        token,
        "POST",
        "/api/v1/admin/images/uploads",
        Some(json!({"name": "Win11 Golden", "version": version, "size": size, "sha256": sha})),
    )
}

fn piece(
    s: &TestServer,
    token: &str,
    id: &str,
    first: usize,
    total: usize,
    bytes: &[u8],
) -> HttpResponse {
    let auth = format!("Bearer {token}");
    let range = format!("bytes {first}-{}/{total}", first + bytes.len() - 1);
    s.request(
        "PUT",
        &format!("/api/v1/admin/uploads/{id}"),
        &[("Authorization", &auth), ("Content-Range", &range)],
        bytes,
    )
}

fn received(s: &TestServer, token: &str, id: &str) -> u64 {
    let r = call(
        s,
        token,
        "GET",
        &format!("/api/v1/admin/uploads/{id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["received"].as_u64().expect("received")
}

fn part_len(s: &TestServer, id: &str) -> u64 {
    std::fs::metadata(s.data_dir.join(format!("storage/uploads/{id}.part")))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// The head of a piece's `PUT`: `len` bytes at `first` of `total`.
fn piece_head(token: &str, id: &str, first: usize, len: usize, total: usize) -> String {
    format!(
        "PUT /api/v1/admin/uploads/{id} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Range: bytes {first}-{}/{total}\r\nContent-Length: {len}\r\n\r\n",
        first + len - 1
    )
}

/// Sends the head and the first `send` bytes of a piece, then drops the connection.
fn dropped_piece(
    s: &TestServer,
    token: &str,
    id: &str,
    first: usize,
    total: usize,
    body: &[u8],
    send: usize,
) {
    let mut conn = s.connect();
    let head = piece_head(token, id, first, body.len(), total);
    conn.write_all(head.as_bytes()).expect("head");
    conn.write_all(&body[..send]).expect("part of the body");
    conn.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    drop(conn);
}

#[test]
fn uploads_resume_after_drops_and_kill9_and_refuse_what_they_must() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let config = "[storage]\nreserve = \"0\"\nmax_file_size = \"64MiB\"\n";
    let mut s = server().data_dir(&dir).config(config).start();
    let token = admin_token(&s);
    let file = data(6 << 20, 7);
    let sha = sha256(&file);
    let total = file.len();

    // Nobody unauthenticated gets a byte onto the disk, however large the body.
    let r = start_upload(&s, &token, "1.0", total, &sha);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let r = s.request(
        "PUT",
        &format!("/api/v1/admin/uploads/{id}"),
        &[("Content-Range", &format!("bytes 0-{}/{total}", total - 1))],
        &file,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(part_len(&s, &id), 0);
    assert_eq!(received(&s, &token, &id), 0);

    // A piece, then one that does not start where the stored bytes end.
    let r = piece(&s, &token, &id, 0, total, &file[..1 << 20]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("upload-offset"), Some("1048576"));
    let r = piece(&s, &token, &id, 3 << 20, total, &file[3 << 20..4 << 20]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["reason"], "UPLOAD_OFFSET_MISMATCH");
    assert_eq!(received(&s, &token, &id), 1 << 20);

    // A connection dropped mid-piece: what arrived is committed, the client resumes there.
    dropped_piece(
        &s,
        &token,
        &id,
        1 << 20,
        total,
        &file[1 << 20..3 << 20],
        700_000,
    );
    crate::support::wait_until(
        Duration::from_secs(5),
        "the dropped piece is committed",
        || received(&s, &token, &id) > 1 << 20,
    );
    let at = received(&s, &token, &id) as usize;
    assert!(at <= (1 << 20) + 700_000, "{at}");

    // kill -9 in the middle of a piece, restart: the committed bytes are still there.
    let mut conn = s.connect();
    let head = piece_head(&token, &id, at, total - at, total);
    conn.write_all(head.as_bytes()).expect("head");
    conn.write_all(&file[at..at + 100_000]).expect("some");
    std::thread::sleep(Duration::from_millis(200));
    s.kill9();
    drop(conn);
    s = server().data_dir(&dir).config(config).start();
    let at = received(&s, &token, &id) as usize;
    assert!(at >= (1 << 20), "{at}");
    let r = piece(&s, &token, &id, at, total, &file[at..]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["image_version"]["sha256"], sha.as_str());
    let stored = std::fs::read(dir.join("storage/images/1.img")).expect("stored");
    assert_eq!(sha256(&stored), sha, "the stored file is the uploaded one");
    assert_eq!(
        std::fs::read_dir(dir.join("storage/uploads"))
            .expect("dir")
            .count(),
        0
    );

    // The same version again: 409 at once.
    let r = start_upload(&s, &token, "1.0", total, &sha);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (409, json!("VERSION_EXISTS"))
    );

    // Bytes that do not match the declared hash: refused, nothing kept.
    let r = start_upload(&s, &token, "1.1", 1 << 20, &sha);
    let bad = r.json()["id"].as_str().expect("id").to_string();
    let r = piece(&s, &token, &bad, 0, 1 << 20, &file[..1 << 20]);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (422, json!("HASH_MISMATCH")),
        "{}",
        r.text()
    );
    assert_eq!(
        std::fs::read_dir(dir.join("storage/uploads"))
            .expect("dir")
            .count(),
        0
    );
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM image_versions")[0][0],
        "1"
    );
    assert_eq!(db_query(&s, "SELECT count(*) FROM uploads")[0][0], "0");

    // Quotas and names.
    let r = start_upload(&s, &token, "2.0", 65 << 20, &sha);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (507, json!("QUOTA_EXCEEDED"))
    );
    for version in ["../../etc", "/abs", "a\u{0}b", ""] {
        let r = start_upload(&s, &token, version, 10, &sha);
        assert_eq!(r.status, 400, "{version:?}: {}", r.text());
    }
    for path in [
        "/api/v1/admin/uploads/..%2F..%2Fseatgate.db",
        "/api/v1/admin/uploads/%00",
    ] {
        let r = call(&s, &token, "GET", path, None);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    let r = piece(&s, &token, "..%2Fimages%2F1", 0, 10, b"0123456789");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        sha256(&std::fs::read(dir.join("storage/images/1.img")).expect("stored")),
        sha
    );

    // All bytes committed but the server died before publishing: asking finishes it.
    let rest = data(2 << 20, 4);
    let r = start_upload(&s, &token, "1.2", rest.len(), &sha256(&rest));
    let late = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        piece(&s, &token, &late, 0, rest.len(), &rest[..1 << 20]).status,
        200
    );
    let mut part = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(format!("storage/uploads/{late}.part")))
        .expect("part");
    part.write_all(&rest[1 << 20..]).expect("append");
    drop(part);
    crate::support::db_exec(
        &s,
        &format!("UPDATE uploads SET received = size WHERE id = '{late}'"),
    );
    let auth = format!("Bearer {token}");
    let asked = s.request(
        "PUT",
        &format!("/api/v1/admin/uploads/{late}"),
        &[
            ("Authorization", &auth),
            ("Content-Range", &format!("bytes */{}", rest.len())),
        ],
        b"",
    );
    assert_eq!(asked.status, 201, "{}", asked.text());
    assert_eq!(
        asked.json()["image_version"]["sha256"],
        sha256(&rest).as_str()
    );

    // The portal's Images page lists the version and assigns it, pinned, to a group.
    let cookie = session(&s);
    let page = get(&s, "/admin/images", &cookie).text();
    assert!(
        page.contains("Win11 Golden") && page.contains(&sha[..16]),
        "{page}"
    );
    let r = submit(
        &s,
        &cookie,
        &page,
        "Assign",
        &[("group", "Design"), ("version", "9.9")],
    );
    assert_eq!(r.status, 400, "an unknown version is refused on the page");
    assert!(r.text().contains("has no version"), "{}", r.text());
    let r = submit(
        &s,
        &cookie,
        &page,
        "Assign",
        &[("group", "Design"), ("version", "1.0")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = get(&s, "/admin/images", &cookie).text();
    assert!(page.contains("pinned at 1.0"), "{page}");
    let r = call(
        &s,
        &token,
        "DELETE",
        "/api/v1/admin/images/Win11%20Golden/versions/1.0",
        None,
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (409, json!("CONFLICT")),
        "a pinned version stays"
    );
}

#[test]
fn a_full_disk_during_an_upload_is_a_clean_507_and_the_gateway_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(small) = Tmpfs::mount(tmp.path(), "8m") else {
        return;
    };
    let storage = small.0.join("storage");
    let config = format!(
        "[storage]\nreserve = \"0\"\ndir = \"{}\"\n",
        storage.display()
    );
    let s = server().config(&config).start();
    let token = admin_token(&s);
    let file = data(6 << 20, 3);
    let r = start_upload(&s, &token, "1.0", file.len(), &sha256(&file));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    // The disk fills up while the piece is being written.
    let mut conn = s.connect();
    let head = piece_head(&token, &id, 0, file.len(), file.len());
    conn.write_all(head.as_bytes()).expect("head");
    conn.write_all(&file[..2 << 20]).expect("first half");
    conn.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(small.0.join("filler"), vec![1u8; 5 << 20]).expect("filler");
    let _ = conn.write_all(&file[2 << 20..]);
    let _ = conn.flush();
    let r = conn.read_response();
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (507, json!("STORAGE_FULL")),
        "{}",
        r.text()
    );
    assert!(
        !storage.join(format!("uploads/{id}.part")).exists(),
        "the partial file is removed"
    );
    assert_eq!(db_query(&s, "SELECT count(*) FROM uploads")[0][0], "0");
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(
        call(&s, &token, "GET", "/api/v1/admin/images", None).status,
        200
    );
}

fn activate(s: &TestServer, idp: &crate::pysaml2::PyIdp, state: &std::path::Path, email: &str) {
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let run = client(
        state,
        &[
            "activate",
            "--server",
            &base,
            "--email",
            email,
            "--ca-cert",
            ca.to_str().expect("utf8"),
        ],
    );
    let url = run.browser_url();
    assert_eq!(browse(s, idp, &url, email).status, 200);
    let (ok, out) = run.finish();
    assert!(ok, "{out}");
}

fn listing(state: &std::path::Path) -> Vec<Value> {
    let (ok, out) = client(state, &["images"]).finish();
    assert!(ok, "{out}");
    out.lines()
        .filter(|l| l.contains("sha256"))
        .map(|l| json!(l))
        .collect()
}

#[test]
#[ignore = "needs Python with pysaml2 (scripts/test-venv); scripts/test runs it"]
fn devices_list_their_images_signed_and_download_with_ranges_and_resume() {
    let (s, idp, ryan, kim) = setup("");
    let (code, _, err) = s.cli(&["license", "set", "Parallels Desktop", "--seats", "5"]);
    assert_eq!(code, 0, "{err}");
    let scim = s.scim();
    let eng = scim.post(
        "/Groups",
        json!({"displayName": "Engineering", "members": [{"value": ryan}]}),
    );
    assert_eq!(eng.status, 201);
    let tmp = tempfile::tempdir().expect("tmp");
    let v1 = data(3 << 20, 1);
    let v2 = data((3 << 20) + 12345, 2);
    for (version, bytes) in [("1.0", &v1), ("1.10", &v2)] {
        let path = tmp.path().join(format!("{version}.img"));
        std::fs::write(&path, bytes).expect("write");
        let (code, out, err) = s.cli(&[
            "image",
            "add",
            path.to_str().expect("utf8"),
            "--name",
            "Win11 Golden",
            "--version",
            version,
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&sha256(bytes)), "{out}");
    }
    let (code, _, err) = s.cli(&["image", "assign", "Win11 Golden", "--group", "engineering"]);
    assert_eq!(code, 0, "{err}");

    let ryan_state = tmp.path().join("ryan");
    let kim_state = tmp.path().join("kim");
    activate(&s, &idp, &ryan_state, "ryan@contoso.com");
    activate(&s, &idp, &kim_state, "kim@contoso.com");
    let _ = kim;
    // Ryan's group has the image at its latest version (1.10 > 1.0, by number); Kim has none.
    let listed = listing(&ryan_state);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0].as_str().expect("line").contains("1.10"),
        "{listed:?}"
    );
    assert!(listing(&kim_state).is_empty());

    // The reference client downloads, interrupted and resumed, and verifies.
    let out_file = tmp.path().join("golden.img");
    std::fs::write(tmp.path().join("golden.img.part"), &v2[..1_000_000]).expect("partial");
    std::fs::write(tmp.path().join("golden.img.part.sha256"), sha256(&v2)).expect("marker");
    let (ok, out) = client(
        &ryan_state,
        &[
            "image-download",
            "Win11 Golden",
            "--out",
            out_file.to_str().expect("utf8"),
        ],
    )
    .finish();
    assert!(ok, "{out}");
    assert!(out.contains("resumed after 1000000 bytes"), "{out}");
    assert_eq!(std::fs::read(&out_file).expect("saved"), v2);

    // Raw: the listing's authorization with Range, If-Range, If-None-Match, past the end.
    let id: String =
        db_query(&s, "SELECT id FROM image_versions WHERE version = '1.10'")[0][0].clone();
    let lease_device: String = db_query(&s, "SELECT d.id FROM devices d JOIN users u ON u.id = d.user_id WHERE u.user_name = 'ryan@contoso.com'")[0][0].clone();
    let auth = mint_authorization(&s, &ryan_state);
    let path = format!("/api/v1/images/{id}/file");
    let get = |headers: &[(&str, &str)]| {
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        s.request("GET", &path, &all, b"")
    };
    let whole = get(&[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, v2);
    let etag = whole.header("etag").expect("etag").to_string();
    let part = get(&[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, v2[100..200].to_vec());
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", v2.len()).as_str())
    );
    let tail = get(&[("Range", "bytes=-10")]);
    assert_eq!(tail.body, v2[v2.len() - 10..].to_vec());
    let stale = get(&[("Range", "bytes=100-199"), ("If-Range", "\"sha256-00\"")]);
    assert_eq!(
        (stale.status, stale.body.len()),
        (200, v2.len()),
        "a changed file is sent whole"
    );
    let fresh = get(&[("Range", "bytes=100-199"), ("If-Range", &etag)]);
    assert_eq!(fresh.status, 206);
    assert_eq!(get(&[("If-None-Match", &etag)]).status, 304);
    let past = get(&[("Range", &format!("bytes={}-", v2.len()))]);
    assert_eq!(
        (past.status, past.json()["reason"].clone()),
        (416, json!("RANGE_NOT_SATISFIABLE"))
    );
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{}", v2.len()).as_str())
    );
    // HEAD announces the file's length and sends no body.
    let mut conn = s.connect();
    conn.send("HEAD", &path, &[("Authorization", &auth)], b"");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut conn, &mut byte).expect("head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(
        head.contains(&format!("content-length: {}\r\n", v2.len())),
        "{head}"
    );

    // Another version than the one assigned, a forged or another device's authorization: 404.
    let v1_id: String =
        db_query(&s, "SELECT id FROM image_versions WHERE version = '1.0'")[0][0].clone();
    let other = s.request(
        "GET",
        &format!("/api/v1/images/{v1_id}/file"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(other.status, 404);
    let forged = auth.replace(&lease_device, "dev-someone-else");
    assert_eq!(get_with(&s, &path, &forged).status, 404);
    let kim_auth = auth.replacen(&lease_device, &db_query(&s, "SELECT d.id FROM devices d JOIN users u ON u.id = d.user_id WHERE u.user_name = 'kim@contoso.com'")[0][0], 1);
    assert_eq!(
        get_with(&s, &path, &kim_auth).status,
        404,
        "the HMAC binds the device"
    );
    // Leaving the group takes the image away at once, even with a listed authorization.
    let eng_id = eng.json()["id"].as_str().expect("id").to_string();
    let r = scim.patch(
        &format!("/Groups/{eng_id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": "members"}]}),
    );
    assert!(r.status < 300, "{}", r.text());
    assert_eq!(get_with(&s, &path, &auth).status, 404);
}

fn get_with(s: &TestServer, path: &str, auth: &str) -> HttpResponse {
    s.request("GET", path, &[("Authorization", auth)], b"")
}

/// The download authorization the gateway put in this device's signed listing.
fn mint_authorization(s: &TestServer, state: &std::path::Path) -> String {
    let (ok, out) = client(state, &["images"]).finish();
    assert!(ok, "{out}");
    // The client verified the listing; read the same listing's authorization raw.
    let _ = s;
    let listing = std::fs::read_to_string(state.join("images.jws")).expect("listing kept");
    let claims = seatgate::domain::jose::Jws::parse(&listing)
        .expect("jws")
        .claims;
    format!(
        "Download {}",
        claims["images"][0]["authorization"]
            .as_str()
            .expect("authorization")
    )
}

#[test]
fn a_second_writer_waits_and_orphaned_files_are_swept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let config = "[storage]\nreserve = \"0\"\n";
    let mut s = server().data_dir(&dir).config(config).start();
    let token = admin_token(&s);
    let file = data(2 << 20, 9);
    let r = start_upload(&s, &token, "1.0", file.len(), &sha256(&file));
    let id = r.json()["id"].as_str().expect("id").to_string();
    // A piece in flight holds the upload: a second one for the same bytes is refused.
    let mut first = s.connect();
    let head = piece_head(&token, &id, 0, file.len(), file.len());
    first.write_all(head.as_bytes()).expect("head");
    first.write_all(&file[..1 << 20]).expect("half");
    first.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    let second = piece(&s, &token, &id, 0, file.len(), &file);
    assert_eq!(
        (second.status, second.json()["reason"].clone()),
        (409, json!("UPLOAD_BUSY")),
        "{}",
        second.text()
    );
    // So is `seatgate image add` of the same version (another process): the lock is the
    // file's, not the server's.
    let local = tmp.path().join("same.img");
    std::fs::write(&local, &file).expect("write");
    let (code, out, err) = s.cli(&[
        "image",
        "add",
        local.to_str().expect("utf8"),
        "--name",
        "Win11 Golden",
        "--version",
        "1.0",
        "--sha256",
        &sha256(&file),
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("UPLOAD_BUSY"), "{err}");
    first.write_all(&file[1 << 20..]).expect("rest");
    let done = first.read_response();
    assert_eq!(done.status, 201, "{}", done.text());
    let stored = std::fs::read(dir.join("storage/images/1.img")).expect("stored");
    assert_eq!(
        sha256(&stored),
        sha256(&file),
        "the published file is the request's"
    );

    // An interrupted add resumed with another file of the same size is refused.
    let other = data(3 << 20, 1);
    let r = start_upload(&s, &token, "2.0", other.len(), &sha256(&other));
    let second_id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        piece(&s, &token, &second_id, 0, other.len(), &other[..1 << 20]).status,
        200
    );
    let impostor = data(3 << 20, 2);
    let local = tmp.path().join("impostor.img");
    std::fs::write(&local, &impostor).expect("write");
    let (code, _, err) = s.cli(&[
        "image",
        "add",
        local.to_str().expect("utf8"),
        "--name",
        "Win11 Golden",
        "--version",
        "2.0",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("other details") || err.contains("holds other bytes"),
        "{err}"
    );
    let (code, out, err) = s.cli(&["upload", "cancel", &second_id]);
    assert_eq!(code, 0, "{out}{err}");
    // Assigning again keeps the assignment's id; removing it under another image is 404.
    let a = call(
        &s,
        &token,
        "POST",
        "/api/v1/admin/images/Win11%20Golden/assignments",
        Some(json!({"group": "Design"})),
    );
    let b = call(
        &s,
        &token,
        "POST",
        "/api/v1/admin/images/Win11%20Golden/assignments",
        Some(json!({"group": "design", "version": "1.0"})),
    );
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(a.json()["id"], b.json()["id"]);
    let id = a.json()["id"].as_str().expect("id").to_string();
    let wrong = call(
        &s,
        &token,
        "DELETE",
        &format!("/api/v1/admin/images/Other/assignments/{id}"),
        None,
    );
    assert_eq!(wrong.status, 404);
    let right = call(
        &s,
        &token,
        "DELETE",
        &format!("/api/v1/admin/images/Win11%20Golden/assignments/{id}"),
        None,
    );
    assert_eq!(right.status, 204);
    let odd = call(
        &s,
        &token,
        "DELETE",
        "/api/v1/admin/uploads/..%2f..%2fvictim",
        None,
    );
    assert_eq!(odd.status, 404, "{}", odd.text());

    // Files no record owns (a crash between a file and its record), an hour old, go.
    s.stop();
    for name in ["images/999.img", "uploads/up-gone.part", "packages/77.pkg"] {
        std::fs::write(dir.join("storage").join(name), b"orphan").expect("orphan");
        let touched = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(dir.join("storage").join(name))
            .status()
            .expect("touch");
        assert!(touched.success());
    }
    let young = dir.join("storage/images/1000.img");
    std::fs::write(&young, b"just now").expect("young");
    let s = server().data_dir(&dir).config(config).start();
    assert!(
        s.wait_for_log(
            "removed 3 abandoned upload(s) or orphaned file(s)",
            Duration::from_secs(20)
        ),
        "{}",
        s.log()
    );
    assert!(!dir.join("storage/images/999.img").exists());
    assert!(young.exists(), "a file younger than an hour stays");
    assert!(
        dir.join("storage/images/1.img").exists(),
        "owned files stay"
    );
}

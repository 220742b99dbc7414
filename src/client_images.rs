//! The reference client's side of the distribution point: its update feed, and golden
//! images: the signed listing of this device's images, and
//! downloads that resume where they stopped (`Range` with `If-Range`, so a file replaced
//! on the gateway starts over instead of being spliced) and verify the SHA-256 the signed
//! listing gives before the file takes its name.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::client::{
    Client, ClientError, failed, json_body, not_activated, refused, transport, verify_signed,
};

const LISTING_TYP: &str = crate::distribution::images::LISTING_TYP;

/// A finished download.
pub struct Downloaded {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Bytes that were already on disk from an earlier, interrupted attempt.
    pub resumed_from: u64,
}

impl Client {
    /// This device's update feed (`GET /api/v1/updates`): the branch its policy (or the
    /// profile) gives it and the versions offered there, each with its edSignature.
    pub fn updates(&self) -> Result<Value, ClientError> {
        self.device_get("/api/v1/updates", "updates")
    }

    /// A device API `GET` with a fresh proof for `action`; the JSON answer, or the refusal.
    fn device_get(&self, path: &str, action: &str) -> Result<Value, ClientError> {
        let mut state = self.state().ok_or_else(not_activated)?;
        let proof = self.proof(&mut state, action)?;
        let url = format!("{}{path}", state.server);
        let response = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Device {proof}"))
            .call()
            .map_err(|e| transport(&url, e))?;
        self.save_state(&state)?;
        let status = response.status().as_u16();
        let body = json_body(response);
        if status != 200 {
            return Err(refused(&body));
        }
        Ok(body)
    }

    /// This device's images, from a listing the gateway signed for it (verified against
    /// its JWKS: issuer, device, expiry).
    pub fn images(&self) -> Result<Vec<Value>, ClientError> {
        let state = self.state().ok_or_else(not_activated)?;
        let jwks = self.jwks(&state.server)?;
        let body = self.device_get("/api/v1/images", "images")?;
        let state = self.state().ok_or_else(not_activated)?;
        let token = body["listing"]
            .as_str()
            .ok_or_else(|| failed("no listing"))?;
        let claims = verify_signed(token, &jwks, LISTING_TYP, "a seatgate image listing")?;
        if claims["iss"].as_str().map(|i| i.trim_end_matches('/'))
            != Some(state.server.trim_end_matches('/'))
            || claims["device"].as_str() != state.device_id.as_deref()
        {
            return Err(failed("the image listing is for another gateway or device"));
        }
        if claims["exp"].as_i64().unwrap_or(0) < crate::clock::now_unix() {
            return Err(failed("the image listing has expired"));
        }
        fs::write(self.dir.join("images.jws"), token).map_err(failed)?;
        Ok(claims["images"].as_array().cloned().unwrap_or_default())
    }

    /// Downloads an image (the listed version, or `version`) to `out`, resuming a partial
    /// `out.part` of the same file, then verifies its SHA-256.
    pub fn download_image(
        &self,
        image: &str,
        version: Option<&str>,
        out: &Path,
    ) -> Result<Downloaded, ClientError> {
        let listed = self.images()?;
        let entry = listed
            .iter()
            .find(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(image))
                    && version.is_none_or(|v| e["version"].as_str() == Some(v))
            })
            .ok_or_else(|| {
                failed(format!(
                    "no image {image:?}{} is assigned to this device",
                    version.map(|v| format!(" version {v}")).unwrap_or_default()
                ))
            })?;
        let sha256 = entry["sha256"].as_str().unwrap_or("").to_string();
        let size = entry["size"].as_u64().unwrap_or(0);
        let url = entry["url"].as_str().unwrap_or("");
        let token = entry["authorization"].as_str().unwrap_or("");
        let part = PathBuf::from(format!("{}.part", out.display()));
        let marker = PathBuf::from(format!("{}.part.sha256", out.display()));
        // A partial file of another version (or of nothing known) starts over.
        let same = fs::read_to_string(&marker).is_ok_and(|m| m.trim() == sha256);
        let mut have = if same {
            fs::metadata(&part).map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        if have > size {
            have = 0;
        }
        fs::write(&marker, &sha256).map_err(failed)?;
        let resumed_from = have;
        if have < size {
            have = self.fetch_into(url, token, &sha256, &part, have)?;
        }
        if have != size {
            return Err(failed(format!(
                "the download stopped at {have} of {size} bytes; run the command again to resume"
            )));
        }
        let actual = file_sha256(&part)?;
        if actual != sha256 {
            let _ = fs::remove_file(&part);
            let _ = fs::remove_file(&marker);
            return Err(failed(format!(
                "the downloaded file hashes to {actual}, not the listed {sha256} (HASH_MISMATCH); it was removed"
            )));
        }
        fs::rename(&part, out).map_err(failed)?;
        let _ = fs::remove_file(&marker);
        Ok(Downloaded {
            path: out.to_path_buf(),
            size,
            sha256,
            resumed_from,
        })
    }

    /// Fetches from byte `have` on into `part`; returns the bytes now in it.
    fn fetch_into(
        &self,
        url: &str,
        token: &str,
        sha256: &str,
        part: &Path,
        have: u64,
    ) -> Result<u64, ClientError> {
        let mut request = self
            .agent
            .get(url)
            .header("Authorization", &format!("Download {token}"));
        if have > 0 {
            request = request
                .header("Range", &format!("bytes={have}-"))
                .header("If-Range", &format!("\"sha256-{sha256}\""));
        }
        let response = request.call().map_err(|e| transport(url, e))?;
        let status = response.status().as_u16();
        let mut file = match status {
            206 => OpenOptions::new().append(true).open(part).map_err(failed)?,
            200 => File::create(part).map_err(failed)?,
            _ => return Err(refused(&json_body(response))),
        };
        let mut total = if status == 206 { have } else { 0 };
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                // What arrived is kept; the next run resumes after it.
                Err(_) => break,
            };
            file.write_all(&buf[..n]).map_err(failed)?;
            total += n as u64;
        }
        file.sync_all().map_err(failed)?;
        Ok(total)
    }
}

fn file_sha256(path: &Path) -> Result<String, ClientError> {
    let mut file = File::open(path).map_err(failed)?;
    let mut hash = crate::crypto::Sha256Stream::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(failed)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(crate::crypto::hex(&hash.finish()))
}

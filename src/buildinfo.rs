//! What this binary is, for `seatgate --version`: build facts from build.rs and the versions
//! of the C libraries the running process actually contains (xmlsec1, libxml2, OpenSSL),
//! each marked static (inside this executable) or dynamic (with the shared object's path),
//! so an admin can answer "am I affected?" for a CVE.
//!
//! The only FFI outside samael: three read-only version queries and `dladdr`.

use std::ffi::{CStr, c_char, c_int, c_void};

unsafe extern "C" {
    /// libxml2's own version, e.g. "20914" (globals.c; a plain data symbol in every release).
    static xmlParserVersion: *const c_char;
    /// libxml2: any function of the library, to find which object contains it.
    fn xmlCheckVersion(version: c_int);
    /// xmlsec1: 1 when the running library is exactly major.minor.subminor.
    fn xmlSecCheckVersionExt(major: c_int, minor: c_int, subminor: c_int, mode: c_int) -> c_int;
    /// OpenSSL 3: the library's version text, e.g. "OpenSSL 3.0.19 27 Jan 2026".
    fn OpenSSL_version(kind: c_int) -> *const c_char;
}

/// xmlSecCheckVersionMode's xmlSecCheckVersionExactMatch.
const XMLSEC_EXACT_MATCH: c_int = 0;
/// OpenSSL_version's OPENSSL_VERSION.
const OPENSSL_VERSION: c_int = 0;

/// The text after `seatgate ` for `seatgate --version`.
pub fn long_version() -> String {
    let libxml2 = libxml2_version();
    let xmlsec1 = xmlsec1_version();
    let openssl = openssl_version();
    format!(
        "{version}\n\
         commit:  {commit}\n\
         built:   {date}\n\
         target:  {target}\n\
         xmlsec1: {xmlsec1} ({xmlsec1_link}{xmlsec1_src})\n\
         libxml2: {libxml2} ({libxml2_link}{libxml2_src})\n\
         OpenSSL: {openssl} ({openssl_link}{openssl_src})\n\
         vendor keys: {vendor_keys}",
        version = env!("CARGO_PKG_VERSION"),
        commit = env!("SEATGATE_GIT_COMMIT"),
        date = env!("SEATGATE_BUILD_DATE"),
        target = env!("SEATGATE_TARGET"),
        xmlsec1_link = linkage(xmlSecCheckVersionExt as *const c_void),
        xmlsec1_src = source(env!("SEATGATE_XMLSEC1_SOURCE")),
        libxml2_link = linkage(xmlCheckVersion as *const c_void),
        libxml2_src = source(env!("SEATGATE_LIBXML2_SOURCE")),
        openssl_link = linkage(OpenSSL_version as *const c_void),
        openssl_src = source(env!("SEATGATE_OPENSSL_SOURCE")),
        vendor_keys = if cfg!(feature = "dev-vendor-key") {
            "production and DEVELOPMENT (a test build: it trusts entitlements anyone can sign)"
        } else {
            "production"
        },
    )
}

/// "; source X" when scripts/build-static named the source (e.g. Debian's patch level).
fn source(text: &'static str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("; source {text}")
    }
}

/// libxml2's "20914" as "2.9.14".
fn libxml2_version() -> String {
    // SAFETY: xmlParserVersion is a NUL-terminated constant string set at load time.
    let raw = unsafe { cstr(xmlParserVersion) };
    match raw.parse::<u32>() {
        Ok(n) => format!("{}.{}.{}", n / 10_000, n / 100 % 100, n % 100),
        Err(_) => raw,
    }
}

/// xmlsec1 has no runtime version string: the headers' version, confirmed by asking the
/// running library whether it is exactly that version.
fn xmlsec1_version() -> String {
    let headers = env!("SEATGATE_XMLSEC1_HEADERS");
    let parts: Vec<c_int> = headers.split('.').filter_map(|p| p.parse().ok()).collect();
    let &[major, minor, subminor] = parts.as_slice() else {
        return format!("unknown (built against {headers:?})");
    };
    // SAFETY: a pure comparison against constants compiled into the library.
    let exact = unsafe { xmlSecCheckVersionExt(major, minor, subminor, XMLSEC_EXACT_MATCH) };
    if exact == 1 {
        headers.to_string()
    } else {
        format!("not {headers} (the running library differs from the headers it was built with)")
    }
}

fn openssl_version() -> String {
    // SAFETY: OpenSSL_version returns a pointer to a static NUL-terminated string.
    let text = unsafe { cstr(OpenSSL_version(OPENSSL_VERSION)) };
    text.strip_prefix("OpenSSL ").unwrap_or(&text).to_string()
}

/// # Safety
/// `p` is null or points to a NUL-terminated string that lives for the whole process.
unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return "unknown".to_string();
    }
    // SAFETY: per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// "static" when `symbol` lives in this executable, else "dynamic: <shared object>".
fn linkage(symbol: *const c_void) -> String {
    match (object_of(symbol), object_of(long_version as *const c_void)) {
        (Some((lib_base, _)), Some((own_base, _))) if lib_base == own_base => "static".to_string(),
        (Some((_, path)), Some(_)) => format!("dynamic: {path}"),
        _ => "linkage unknown".to_string(),
    }
}

/// The load address and path of the object (executable or shared library) holding `addr`.
fn object_of(addr: *const c_void) -> Option<(usize, String)> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    if unsafe { libc::dladdr(addr, info.as_mut_ptr()) } == 0 {
        return None;
    }
    // SAFETY: dladdr returned non-zero, so it filled `info`.
    let info = unsafe { info.assume_init() };
    // SAFETY: dli_fname is null or a NUL-terminated path owned by the loader.
    let path = unsafe { cstr(info.dli_fname) };
    Some((info.dli_fbase as usize, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_names_every_library_with_a_version() {
        let text = long_version();
        for field in [
            "commit:", "built:", "target:", "xmlsec1:", "libxml2:", "OpenSSL:",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
        assert!(libxml2_version().starts_with("2."), "{}", libxml2_version());
        assert!(openssl_version().starts_with('3'), "{}", openssl_version());
        assert!(
            !xmlsec1_version().starts_with("not"),
            "{}",
            xmlsec1_version()
        );
    }
}

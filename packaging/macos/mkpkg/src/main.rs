//! seatgate-mkpkg: the Linux stand-in for `pkgbuild` + `productbuild --distribution`, so CI
//! can build and inspect the same product archive a Mac builds.
//!
//! ```text
//! seatgate-mkpkg --root DIR --scripts DIR --identifier ID --version V \
//!     --install-location / --distribution Distribution.xml --out seatgate.pkg
//! ```
//!
//! The payload is `--root` as staged: every file and directory keeps its permission bits
//! and is owned by root:wheel (0:0), as `pkgbuild --ownership recommended` records it. The
//! component is named after the output's identifier's last label (`seatgate.pkg`), which the
//! Distribution's `pkg-ref` must name.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use embala_pkg::{DirSpec, FileSpec, PkgSpec, XarEntry, XarEntryKind};

const USAGE: &str = "usage: seatgate-mkpkg --root DIR --scripts DIR --identifier ID --version V \
--install-location PATH --distribution FILE --name NAME --out FILE";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(out) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seatgate-mkpkg: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<PathBuf, String> {
    // Alone, --version asks for ours; with other flags it is the package's.
    if args == ["--version"] {
        println!("seatgate-mkpkg {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    let opts = parse(&args)?;
    let get = |k: &str| {
        opts.get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required; {USAGE}"))
    };
    let root = PathBuf::from(get("root")?);
    let out = PathBuf::from(get("out")?);
    let distribution = std::fs::read(get("distribution")?)
        .map_err(|e| format!("cannot read --distribution: {e}"))?;
    let (files, directories) = walk(&root).map_err(|e| format!("cannot read --root: {e}"))?;
    let spec = PkgSpec {
        name: get("name")?,
        display_name: get("name")?,
        identifier: get("identifier")?,
        version: get("version")?,
        install_location: get("install-location")?,
        enable_user_home: false,
        files,
        directories,
        scripts: opts.get("scripts").map(PathBuf::from),
    };
    // embala writes its own Distribution (both architectures, no title of ours); build the
    // component with it, then swap in ours, as productbuild --distribution does.
    let tmp = out.with_extension("component.tmp");
    embala_pkg::build(&spec, &tmp).map_err(|e| e.to_string())?;
    let rebuilt = replace_distribution(&tmp, &format!("{}.pkg", spec.name), &distribution);
    let _ = std::fs::remove_file(&tmp);
    std::fs::write(&out, rebuilt?).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(out)
}

fn parse(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut opts = BTreeMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let key = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}; {USAGE}"))?;
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        opts.insert(key.to_string(), value.clone());
    }
    Ok(opts)
}

/// The staged tree as payload entries, with the modes it has on disk.
fn walk(root: &Path) -> std::io::Result<(Vec<FileSpec>, Vec<DirSpec>)> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let dest = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(entry.path())?;
            let mode = Some(meta.permissions().mode() & 0o777);
            if meta.is_dir() {
                dirs.push(DirSpec {
                    dest: dest.clone(),
                    mode,
                });
                stack.push((entry.path(), dest));
            } else if meta.is_file() {
                files.push(FileSpec {
                    src: entry.path(),
                    dest,
                    mode,
                });
            } else {
                return Err(std::io::Error::other(format!(
                    "{} is neither a file nor a directory",
                    entry.path().display()
                )));
            }
        }
    }
    Ok((files, dirs))
}

/// embala, like `pkgbuild`, writes `overwrite-permissions="true"`, which makes Installer
/// chown/chmod directories that already exist to the payload's root:wheel 0755: on a Mac
/// where Homebrew owns `/usr/local/bin`, installing seatgate would break `brew`.
fn keep_directory_permissions(package_info: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(package_info).map_err(|e| format!("PackageInfo: {e}"))?;
    let from = r#"overwrite-permissions="true""#;
    if text.matches(from).count() != 1 {
        return Err(format!("PackageInfo does not say {from} exactly once"));
    }
    Ok(text
        .replace(from, r#"overwrite-permissions="false""#)
        .into_bytes())
}

/// Rewrites the product archive at `pkg` with `distribution` in place of its own, keeping
/// the component's entries byte for byte.
fn replace_distribution(
    pkg: &Path,
    component: &str,
    distribution: &[u8],
) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(pkg).map_err(|e| e.to_string())?;
    let mut reader = apple_xar::reader::XarReader::new(file).map_err(|e| e.to_string())?;
    let mut read = |name: &str| -> Result<Option<Vec<u8>>, String> {
        reader
            .get_file_data_from_path(&format!("{component}/{name}"))
            .map_err(|e| e.to_string())
    };
    let bom = read("Bom")?.ok_or("the component has no Bom")?;
    let payload = read("Payload")?.ok_or("the component has no Payload")?;
    let scripts = read("Scripts")?;
    let package_info = read("PackageInfo")?.ok_or("the component has no PackageInfo")?;
    let package_info = keep_directory_permissions(&package_info)?;
    let file = |data, store| XarEntryKind::File {
        data,
        mode: 0o644,
        store,
    };
    let mut children = vec![
        XarEntry {
            name: "Bom",
            kind: file(&bom, false),
        },
        XarEntry {
            name: "Payload",
            kind: file(&payload, true),
        },
    ];
    if let Some(scripts) = &scripts {
        children.push(XarEntry {
            name: "Scripts",
            kind: file(scripts, true),
        });
    }
    children.push(XarEntry {
        name: "PackageInfo",
        kind: file(&package_info, false),
    });
    let entries = [
        XarEntry {
            name: component,
            kind: XarEntryKind::Directory {
                mode: 0o700,
                children,
            },
        },
        XarEntry {
            name: "Distribution",
            kind: file(distribution, false),
        },
    ];
    let mut out = Vec::new();
    embala_pkg::write_xar(&entries, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

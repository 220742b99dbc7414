#!/usr/bin/env python3
"""Inspects seatgate's macOS product archive the way Installer would read it, on Linux.

    check_pkg.py PKG BINARY VERSION HOSTS     check one .pkg; exit 1 naming every defect
    check_pkg.py --self-test PKG BINARY VERSION HOSTS
                                               also break copies of it and require failures

Expands with bsdtar (xar), validates Distribution and PackageInfo (xmllint + their fields),
reads the gzip odc-cpio Payload and Scripts, lists the Bom with lsbom (stuckliste-cli) and
compares it with the payload entry by entry (root:wheel, modes, sizes), loads the
LaunchDaemon plist with plistlib, runs the packaged binary's `config check` on the default
config, and shellchecks every script (preinstall, postinstall, seatgate-uninstall). A .pkg
whose payload binary is not Mach-O (the Linux layout check) must be named
…-LINUX-LAYOUT-CHECK.pkg, so nobody ships it to a Mac.
"""

import gzip
import hashlib
import os
import plistlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET

IDENTIFIER = "com.seatgate.gateway"
LABEL = "com.seatgate.gateway"
# The installed layout: path -> mode (file type bits included), all owned by root:wheel.
PAYLOAD = {
    ".": 0o40755,
    "./Library": 0o40755,
    "./Library/LaunchDaemons": 0o40755,
    f"./Library/LaunchDaemons/{LABEL}.plist": 0o100644,
    "./usr": 0o40755,
    "./usr/local": 0o40755,
    "./usr/local/bin": 0o40755,
    "./usr/local/bin/seatgate": 0o100755,
    "./usr/local/bin/seatgate-uninstall": 0o100755,
    "./usr/local/share": 0o40755,
    "./usr/local/share/seatgate": 0o40755,
    "./usr/local/share/seatgate/config.example.toml": 0o100644,
    "./usr/local/share/seatgate/seatgate.toml": 0o100644,
}
SCRIPTS = {".": 0o40755, "./preinstall": 0o100755, "./postinstall": 0o100755}


class Defects(list):
    def check(self, ok, what):
        if not ok:
            self.append(what)


def read_odc(data):
    """Entries of an odc (070707) cpio archive: name -> (mode, uid, gid, bytes)."""
    entries, pos = {}, 0
    while True:
        head = data[pos : pos + 76]
        if len(head) < 76 or head[:6] != b"070707":
            raise ValueError(f"not an odc cpio header at offset {pos}")
        field = lambda a, b: int(head[a:b], 8)  # noqa: E731
        mode, uid, gid = field(18, 24), field(24, 30), field(30, 36)
        namesize, filesize = field(59, 65), field(65, 76)
        name = data[pos + 76 : pos + 76 + namesize - 1].decode()
        body = data[pos + 76 + namesize : pos + 76 + namesize + filesize]
        pos += 76 + namesize + filesize
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, uid, gid, body)


def write_odc(entries):
    """The inverse of read_odc, for the self-test's tampered copies."""
    out = bytearray()
    for ino, (name, (mode, uid, gid, body)) in enumerate(list(entries.items()) + [("TRAILER!!!", (0, 0, 0, b""))]):
        out += b"070707%06o%06o%06o%06o%06o%06o%06o%011o%06o%011o" % (
            0, ino, mode, uid, gid, 1, 0, 0, len(name) + 1, len(body))
        out += name.encode() + b"\0" + body
    return bytes(out)


def lsbom(bom):
    """Bom entries via lsbom: path -> (mode, uid, gid, size or None)."""
    out = subprocess.run(["lsbom", bom], check=True, capture_output=True, text=True).stdout
    entries = {}
    for line in out.splitlines():
        cols = line.split("\t")
        uid, gid = cols[2].split("/")
        entries[cols[0]] = (int(cols[1], 8), int(uid), int(gid), int(cols[3]) if len(cols) > 3 else None)
    return entries


def check_expanded(root, binary, version, hosts, pkg_name):
    d = Defects()
    comp = os.path.join(root, "seatgate.pkg")
    names = sorted(os.path.relpath(os.path.join(p, f), root) for p, ds, fs in os.walk(root) for f in fs + ds)
    want = ["Distribution", "seatgate.pkg", "seatgate.pkg/Bom", "seatgate.pkg/PackageInfo",
            "seatgate.pkg/Payload", "seatgate.pkg/Scripts"]
    d.check(names == want, f"product archive holds {names}, expected {want}")
    if d:
        return d

    for xml in ("Distribution", "seatgate.pkg/PackageInfo"):
        r = subprocess.run(["xmllint", "--noout", os.path.join(root, xml)], capture_output=True, text=True)
        d.check(r.returncode == 0, f"{xml} is not well-formed XML: {r.stderr.strip()}")
    if d:
        return d

    dist = ET.parse(os.path.join(root, "Distribution")).getroot()
    d.check(dist.tag == "installer-gui-script", f"Distribution root is <{dist.tag}>")
    opts = dist.find("options")
    d.check(opts is not None and opts.get("hostArchitectures") == hosts,
            f"Distribution hostArchitectures is {opts.get('hostArchitectures') if opts is not None else None}, expected {hosts}")
    dom = dist.find("domains")
    d.check(dom is not None and dom.get("enable_localSystem") == "true"
            and dom.get("enable_currentUserHome") != "true",
            "Distribution must install to the system domain only")
    d.check(version in (dist.findtext("title") or ""), "Distribution title lacks the version")
    outline = [line.get("choice") for line in dist.iter("line")]
    d.check(IDENTIFIER in outline, f"choices-outline does not offer {IDENTIFIER}: {outline}")
    choice = [c for c in dist.findall("choice") if c.get("id") == IDENTIFIER]
    d.check(len(choice) == 1 and [r.get("id") for r in choice[0].findall("pkg-ref")] == [IDENTIFIER],
            f"choice {IDENTIFIER} must hold exactly its pkg-ref")
    refs = [r for r in dist.findall("pkg-ref") if (r.text or "").strip()]
    d.check(len(refs) == 1 and refs[0].get("id") == IDENTIFIER and refs[0].get("version") == version
            and refs[0].text.strip() == "#seatgate.pkg",
            f"Distribution pkg-ref must be {IDENTIFIER} {version} -> #seatgate.pkg")

    info = ET.parse(os.path.join(comp, "PackageInfo")).getroot()
    for attr, value in (("identifier", IDENTIFIER), ("version", version), ("install-location", "/"),
                        ("auth", "root"), ("overwrite-permissions", "false")):
        d.check(info.get(attr) == value, f"PackageInfo {attr} is {info.get(attr)!r}, expected {value!r}")
    hooks = {h.tag: h.get("file") for h in info.find("scripts") or []}
    d.check(hooks == {"preinstall": "./preinstall", "postinstall": "./postinstall"},
            f"PackageInfo scripts are {hooks}")

    with open(os.path.join(comp, "Payload"), "rb") as f:
        payload = read_odc(gzip.decompress(f.read()))
    got = {n: m for n, (m, *_) in payload.items()}
    d.check(got == PAYLOAD, "payload layout differs: "
            + "; ".join(f"{n}: {oct(got.get(n, 0))} vs expected {oct(PAYLOAD.get(n, 0))}"
                        for n in sorted(set(got) | set(PAYLOAD)) if got.get(n) != PAYLOAD.get(n)))
    for name, (mode, uid, gid, _) in payload.items():
        d.check((uid, gid) == (0, 0), f"payload {name} is owned by {uid}:{gid}, not root:wheel (0:0)")
    n = info.find("payload")
    d.check(n is not None and n.get("numberOfFiles") == str(len(payload)),
            f"PackageInfo numberOfFiles is {n.get('numberOfFiles') if n is not None else None}, payload has {len(payload)}")

    bom = lsbom(os.path.join(comp, "Bom"))
    for name in sorted(set(bom) | set(payload)):
        if name not in bom:
            d.append(f"payload {name} has no Bom entry")
        elif name not in payload:
            d.append(f"Bom lists {name}, which is not in the payload")
        else:
            mode, uid, gid, body = payload[name]
            bmode, buid, bgid, bsize = bom[name]
            d.check((bmode, buid, bgid) == (mode, uid, gid),
                    f"Bom {name} is {oct(bmode)} {buid}/{bgid}, payload has {oct(mode)} {uid}/{gid}")
            d.check(bsize is None or bsize == len(body), f"Bom {name} size {bsize}, payload {len(body)}")

    with open(binary, "rb") as f:
        want_bin = hashlib.sha256(f.read()).hexdigest()
    packaged = payload.get("./usr/local/bin/seatgate", (0, 0, 0, b""))[3]
    d.check(hashlib.sha256(packaged).hexdigest() == want_bin, "the packaged binary is not the one given")
    d.check(payload_is_macho(packaged) or pkg_name.endswith("-LINUX-LAYOUT-CHECK.pkg"),
            f"{pkg_name} holds a binary that is not Mach-O (cannot run on a Mac) but is not named …-LINUX-LAYOUT-CHECK.pkg")

    try:
        plist = plistlib.loads(payload[f"./Library/LaunchDaemons/{LABEL}.plist"][3])
    except Exception as e:  # noqa: BLE001 - any parse failure is the defect to report
        d.append(f"the LaunchDaemon plist does not parse: {e}")
        plist = {}
    args = plist.get("ProgramArguments", [])
    d.check(plist.get("Label") == LABEL, f"plist Label is {plist.get('Label')!r}")
    d.check(bool(args) and "." + args[0] in payload and payload["." + args[0]][0] & 0o111,
            f"plist program {args[:1]} is not an executable in the payload")
    d.check(plist.get("UserName") == "_seatgate" and plist.get("GroupName") == "_seatgate",
            "plist must run as _seatgate:_seatgate")
    d.check(plist.get("RunAtLoad") is True, "plist RunAtLoad must be true")
    d.check(plist.get("KeepAlive") == {"SuccessfulExit": False}, "plist KeepAlive must restart on failure only")
    d.check(isinstance(plist.get("ThrottleInterval"), int) and plist["ThrottleInterval"] >= 5,
            "plist ThrottleInterval must be at least 5 s")
    for key in ("StandardOutPath", "StandardErrorPath"):
        d.check(str(plist.get(key, "")).startswith("/Library/Logs/seatgate/"), f"plist {key} outside /Library/Logs/seatgate")
    opt = lambda flag: args[args.index(flag) + 1] if flag in args[:-1] else None  # noqa: E731
    d.check(opt("--config") == "/Library/Preferences/seatgate/seatgate.toml", f"plist --config is {opt('--config')}")
    d.check(args[-1:] == ["serve"], "plist must run `seatgate … serve`")

    default = payload.get("./usr/local/share/seatgate/seatgate.toml", (0, 0, 0, b""))[3]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "seatgate.toml")
        with open(cfg, "wb") as f:
            f.write(default)
        data_dir = tomllib.loads(default.decode()).get("data_dir")
        d.check(data_dir == opt("--data-dir"), f"default config data_dir {data_dir} differs from the plist's {opt('--data-dir')}")
        if os.uname().sysname == "Linux" and payload_is_elf(packaged):
            r = subprocess.run([binary, "--config", cfg, "config", "check"], capture_output=True, text=True)
            d.check(r.returncode == 0, f"the default config is refused: {r.stderr.strip()}")

        with open(os.path.join(comp, "Scripts"), "rb") as f:
            scripts = read_odc(gzip.decompress(f.read()))
        got = {n: m for n, (m, *_) in scripts.items()}
        d.check(got == SCRIPTS, f"Scripts archive holds {got}, expected {SCRIPTS}")
        checked = {name: body for name, (_, _, _, body) in scripts.items() if name != "."}
        checked["seatgate-uninstall"] = payload.get("./usr/local/bin/seatgate-uninstall", (0, 0, 0, b""))[3]
        for name, body in checked.items():
            path = os.path.join(tmp, os.path.basename(name))
            with open(path, "wb") as f:
                f.write(body)
            d.check(body.startswith(b"#!/bin/sh\n") and b"\nset -eu\n" in body, f"{name} must be #!/bin/sh with set -eu")
            r = subprocess.run(["shellcheck", "-s", "sh", path], capture_output=True, text=True)
            d.check(r.returncode == 0, f"shellcheck {name}:\n{r.stdout}")
    return d


def payload_is_elf(body):
    return body[:4] == b"\x7fELF"


def payload_is_macho(body):
    # 64-bit Mach-O (little-endian) or a universal (fat) binary.
    return body[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


def expand(pkg, dest):
    subprocess.run(["bsdtar", "-xf", pkg, "-C", dest], check=True)


def check(pkg, binary, version, hosts):
    with tempfile.TemporaryDirectory() as tmp:
        expand(pkg, tmp)
        return check_expanded(tmp, binary, version, hosts, os.path.basename(pkg))


def self_test(pkg, binary, version, hosts):
    """Breaks copies of a good package; each must be reported with the defect named."""

    def tamper_payload(change):
        def apply(root):
            path = os.path.join(root, "seatgate.pkg", "Payload")
            with open(path, "rb") as f:
                entries = read_odc(gzip.decompress(f.read()))
            change(entries)
            with open(path, "wb") as f:
                f.write(gzip.compress(write_odc(entries)))
        return apply

    def wrong_owner(e):
        mode, _, _, body = e["./usr/local/bin/seatgate"]
        e["./usr/local/bin/seatgate"] = (mode, 501, 20, body)

    def extra_file(e):
        e["./usr/local/bin/stray"] = (0o100755, 0, 0, b"#!/bin/sh\n")

    def rewrite(name, old, new):
        def apply(root):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                data = f.read()
            assert old in data, f"{old!r} not in {name}"
            with open(path, "wb") as f:
                f.write(data.replace(old, new))
        return apply

    cases = [
        ("a payload file owned by a user", tamper_payload(wrong_owner), "not root:wheel"),
        ("a payload file missing from the Bom", tamper_payload(extra_file), "has no Bom entry"),
        ("the wrong architecture", rewrite("Distribution", f'hostArchitectures="{hosts}"'.encode(),
                                             b'hostArchitectures="ppc"'), "hostArchitectures"),
        ("another version in PackageInfo", rewrite("seatgate.pkg/PackageInfo", f'version="{version}"'.encode(),
                                                    b'version="0.0.0"'), "PackageInfo version"),
        ("existing directories re-permissioned", rewrite("seatgate.pkg/PackageInfo",
                                                         b'overwrite-permissions="false"',
                                                         b'overwrite-permissions="true"'),
         "PackageInfo overwrite-permissions"),
        ("malformed Distribution", rewrite("Distribution", b"</installer-gui-script>", b""), "well-formed"),
    ]
    name = os.path.basename(pkg)
    cases = [(what, breaker, expected, name) for what, breaker, expected in cases]
    if not name.endswith("-LINUX-LAYOUT-CHECK.pkg"):
        print(f"note: {name} is not a layout check; the shippable-name case is skipped")
    else:
        # The same layout check renamed as if it were a Mac installer.
        cases.append(("a Linux binary in a shippable .pkg name", lambda root: None, "not Mach-O",
                      name.replace("-LINUX-LAYOUT-CHECK.pkg", ".pkg")))
    failures = 0
    for what, breaker, expected, as_name in cases:
        with tempfile.TemporaryDirectory() as tmp:
            expand(pkg, tmp)
            breaker(tmp)
            defects = check_expanded(tmp, binary, version, hosts, as_name)
        if any(expected in x for x in defects):
            print(f"ok: {what} is reported ({expected!r})")
        else:
            print(f"FAILED: {what} was not reported as {expected!r}; got {defects}")
            failures += 1
    return failures


def main(argv):
    selftest = argv[1:2] == ["--self-test"]
    args = argv[2:] if selftest else argv[1:]
    if len(args) != 4 or not shutil.which("lsbom"):
        sys.exit("usage: check_pkg.py [--self-test] PKG BINARY VERSION HOSTS (needs bsdtar, xmllint, lsbom, shellcheck)")
    defects = check(*args)
    for x in defects:
        print(f"pkg defect: {x}")
    if defects:
        sys.exit(f"{args[0]}: {len(defects)} defect(s)")
    print(f"{args[0]}: Distribution, PackageInfo, Payload ({len(PAYLOAD)} entries, root:wheel), Bom, plist and scripts ok")
    if selftest and self_test(*args):
        sys.exit("the .pkg check missed a broken package")


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Hostile-input costs (issue 11): what refused, unauthenticated requests cost the gateway.

Usage: python3 benches/hostile.py [path/to/seatgate]   (default target/debug/seatgate)

Starts the binary on 127.0.0.1 (plain HTTP, fresh temporary data directory), then:
1. 400 x POST /admin/login with a 250 KB username: statuses, database and stderr growth;
2. 400 x POST /admin/login with random 64-byte usernames from one address;
3. a SAMLResponse whose root element has 18,000 attributes, posted 3 times: time to refusal.
Prints one line per figure. Loopback only; every loop is bounded.
"""
import base64, http.cookiejar, os, random, re, shutil, string, subprocess, sys, tempfile, time
import urllib.error, urllib.parse, urllib.request

binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/seatgate"
work = tempfile.mkdtemp(prefix="seatgate-hostile-")
with open(os.path.join(work, "cfg.toml"), "w") as f:
    f.write('[tls]\nmode = "off"\n')
data = os.path.join(work, "data")
log_path = os.path.join(work, "server.log")
log = open(log_path, "w")
server = subprocess.Popen([binary, "--config", os.path.join(work, "cfg.toml"), "--data-dir", data,
                           "serve", "--listen", "127.0.0.1:0"], stderr=log)
try:
    port = None
    for _ in range(100):
        m = re.search(r"listening on http://[0-9.]+:(\d+)", open(log_path).read())
        if m:
            port = m.group(1)
            break
        time.sleep(0.1)
    if port is None:
        sys.exit("seatgate did not start")
    base = f"http://127.0.0.1:{port}"

    time.sleep(2)  # let first-run writes (keys, setup link) reach the database first

    def db_bytes():
        return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if f.startswith("seatgate.db"))

    def sign_in(username, password):
        jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = jar.open(base + "/admin/login").read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrf": csrf, "username": username, "password": password}).encode()
        try:
            return jar.open(base + "/admin/login", body).status
        except urllib.error.HTTPError as e:
            return e.code

    def tally(statuses):
        return ", ".join(f"{n} x {c}" for c, n in sorted({s: statuses.count(s) for s in statuses}.items()))

    db0, log0 = db_bytes(), os.path.getsize(log_path)
    statuses = [sign_in("u" * 250_000, "x" * 20) for _ in range(400)]
    print(f"250 KB usernames: {tally(statuses)}; database +{db_bytes() - db0} bytes, "
          f"stderr +{os.path.getsize(log_path) - log0} bytes")

    db0 = db_bytes()
    statuses = [sign_in("".join(random.choice(string.ascii_letters) for _ in range(64)), "y" * 30)
                for _ in range(400)]
    print(f"random 64-byte usernames: {tally(statuses)}; database and WAL +{db_bytes() - db0} bytes")

    attrs = " ".join(f'a{i}="x"' for i in range(18000))
    xml = f'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" {attrs}/>'
    form = urllib.parse.urlencode({"SAMLResponse": base64.b64encode(xml.encode()).decode()}).encode()
    for _ in range(3):
        started = time.time()
        try:
            status = urllib.request.urlopen(base + "/saml/acs/nobody", form).status
        except urllib.error.HTTPError as e:
            status = e.code
        print(f"18,000 attributes: {status} in {(time.time() - started) * 1000:.0f} ms")
finally:
    server.terminate()
    server.wait(timeout=20)
    shutil.rmtree(work, ignore_errors=True)

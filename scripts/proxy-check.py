"""The README's nginx recipe, run for real in front of `streamlit run app.py`, and checked.

Takes the `nginx` block from README.md as it stands (only its certificate and password
paths, and port 443, are replaced by this run's), serves the app on the real MNIST behind it
with `STREAMLIT_SERVER_ALLOWED_HOSTS` as the README says, and checks, as
batchscope.example.org mapped to 127.0.0.1:

- without a login `/` answers 401; `/_stcore/health` answers `ok` without one;
- with one, `/` answers 200 with the frame-ancestors and X-Frame-Options headers;
- `/_stcore/metrics` answers 404 through the proxy;
- the WebSocket upgrades (101) through the proxy, and a foreign Host gets 403 from Streamlit;
- Chromium, through the proxy, shows the class balance chart with MNIST's title.

Usage (as root, nginx and chromium from Debian): python scripts/proxy-check.py
Env: BATCHSCOPE_REAL_DATA (default ../shared/data).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.serving import Server, chromium, data_root, free_port, read_chart, upgrade_status

NAME = "batchscope.example.org"
TITLE = "MNIST train vs test: class counts (n=60,000 / 10,000)"
SCREENSHOT = "/tmp/batchscope-proxy-balance.png"


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        raise SystemExit(1)


def recipe(work: Path, proxy_port: int, app_port: int) -> str:
    """README's nginx configuration with this run's files and ports."""
    block = re.search(r"```nginx\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    conf = block.group(1)
    for old, new in {
        "listen 443 ssl;": f"listen 127.0.0.1:{proxy_port} ssl;",
        "/etc/ssl/batchscope/fullchain.pem": str(work / "cert.pem"),
        "/etc/ssl/batchscope/privkey.pem": str(work / "key.pem"),
        "/etc/nginx/batchscope.htpasswd": str(work / "htpasswd"),
        "127.0.0.1:8501": f"127.0.0.1:{app_port}",
    }.items():
        assert old in conf, f"README's nginx block no longer has {old!r}"
        conf = conf.replace(old, new)
    return f"""daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{}}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
{conf}
}}
"""


def request(url: str, auth: bool, port: int) -> tuple[int, dict, bytes]:
    context = ssl._create_unverified_context()  # the run's own self-signed certificate
    headers = {"Host": NAME}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(b"reader:secret").decode()
    req = urllib.request.Request(f"https://127.0.0.1:{port}{url}", headers=headers)
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), b""


def main() -> None:
    data = data_root(os.environ.get("BATCHSCOPE_REAL_DATA"))
    work = Path(tempfile.mkdtemp(prefix="batchscope-proxy-"))
    login = {"Authorization": "Basic " + base64.b64encode(b"reader:secret").decode()}
    passed = False
    app = Server(
        data, work / "streamlit.log", env={"STREAMLIT_SERVER_ALLOWED_HOSTS": f"{NAME} localhost"}
    )
    nginx: subprocess.Popen | None = None
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", f"/CN={NAME}", "-keyout", work / "key.pem", "-out", work / "cert.pem"],
            check=True, capture_output=True,
        )  # fmt: skip
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", "secret"], check=True, capture_output=True, text=True
        ).stdout.strip()
        (work / "htpasswd").write_text(f"reader:{hashed}\n")
        work.chmod(0o755)  # nginx's workers (www-data) read the password file
        proxy_port = free_port()
        (work / "nginx.conf").write_text(recipe(work, proxy_port, app.port))
        with app:
            nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf")])
            app.wait_healthy()
            deadline = time.monotonic() + 30
            while True:
                try:
                    if request("/_stcore/health", False, proxy_port)[2] == b"ok":
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or nginx.poll() is not None:
                    raise SystemExit(f"nginx did not start; see {work}")
                time.sleep(0.5)
            check(True, "/_stcore/health answers ok without a login")
            check(request("/", False, proxy_port)[0] == 401, "/ without a login: 401")
            status, headers, _ = request("/", True, proxy_port)
            headers = {k.lower(): v for k, v in headers.items()}
            check(status == 200, f"/ with a login: 200 (got {status})")
            check(
                headers.get("content-security-policy") == "frame-ancestors 'self'"
                and headers.get("x-frame-options") == "SAMEORIGIN",
                "frame-ancestors 'self' and X-Frame-Options SAMEORIGIN sent",
            )
            check(request("/_stcore/metrics", True, proxy_port)[0] == 404, "/_stcore/metrics: 404")
            through = upgrade_status(proxy_port, NAME, tls_name=NAME, headers=login)
            check(through == 101, f"WebSocket via the proxy as {NAME}: 101")
            foreign = upgrade_status(app.port, "evil.example")
            check(foreign == 403, "foreign Host at Streamlit: 403")
            check_chart(proxy_port)
        passed = True
    finally:
        if nginx is not None:
            nginx.terminate()
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        app.stop()
        if passed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}")


def check_chart(proxy_port: int) -> None:
    """Chromium, logged in through the proxy as NAME, reads the balance chart's title."""
    from playwright.sync_api import Error

    with chromium(f"--host-resolver-rules=MAP {NAME} 127.0.0.1") as browser:
        context = browser.new_context(
            ignore_https_errors=True,
            http_credentials={"username": "reader", "password": "secret"},
            viewport={"width": 1400, "height": 1000},
        )
        page = context.new_page()
        page.goto(f"https://{NAME}:{proxy_port}/balance")
        try:
            title = read_chart(page)["title"]
            page.wait_for_timeout(1500)  # the bars finish drawing, for the screenshot
        except Error:  # its TimeoutError included
            title = None
        page.screenshot(path=SCREENSHOT, full_page=True)
        check(title == TITLE, f"Chromium through the proxy shows {title!r} ({SCREENSHOT})")


if __name__ == "__main__":
    main()

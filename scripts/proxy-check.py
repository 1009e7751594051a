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
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, free_port

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


def upgrade(port: int, host: str, tls: bool) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    auth = base64.b64encode(b"reader:secret").decode()
    text = (
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls:
        sock = ssl._create_unverified_context().wrap_socket(sock, server_hostname=NAME)
    with sock:
        sock.sendall(text.encode())
        return int(sock.makefile("rb").readline().split()[1])


def main() -> None:
    data = Path(os.environ.get("BATCHSCOPE_REAL_DATA", REPO.parent / "shared" / "data"))
    work = Path(tempfile.mkdtemp(prefix="batchscope-proxy-"))
    processes: list[subprocess.Popen] = []
    passed = False
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
        app_port, proxy_port = free_port(), free_port()
        (work / "nginx.conf").write_text(recipe(work, proxy_port, app_port))
        env = {
            **os.environ,
            "DATALIB_ROOT": str(data),
            "STREAMLIT_SERVER_ALLOWED_HOSTS": f"{NAME} localhost",
        }
        with open(work / "streamlit.log", "wb") as app_log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
                     str(app_port), "--server.address", "127.0.0.1"],
                    cwd=REPO, env=env, stdout=app_log, stderr=app_log,
                )
            )  # fmt: skip
        processes.append(
            subprocess.Popen(["nginx", "-c", str(work / "nginx.conf")], stderr=subprocess.PIPE)
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if request("/_stcore/health", False, proxy_port)[2] == b"ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"did not start; see {work}")
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
        check(upgrade(proxy_port, NAME, tls=True) == 101, f"WebSocket via the proxy as {NAME}: 101")
        check(upgrade(app_port, "evil.example", tls=False) == 403, "foreign Host at Streamlit: 403")

        from playwright.sync_api import Error, sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"],
            )
            context = browser.new_context(
                ignore_https_errors=True,
                http_credentials={"username": "reader", "password": "secret"},
                viewport={"width": 1400, "height": 1000},
            )
            page = context.new_page()
            page.goto(f"https://{NAME}:{proxy_port}/balance")
            try:
                title = page.wait_for_function(
                    "() => document.querySelector('.js-plotly-plot')?._fullLayout?.title?.text",
                    polling=500,
                    timeout=120_000,
                ).json_value()
            except Error:  # its TimeoutError included
                page.screenshot(path=SCREENSHOT, full_page=True)
                check(False, f"no chart within 2 minutes ({SCREENSHOT})")
            page.wait_for_timeout(1500)  # the bars finish drawing
            page.screenshot(path=SCREENSHOT, full_page=True)
            title = re.sub(r"<[^>]+>", "", title)  # Plotly bolds the title
            check(title == TITLE, f"Chromium through the proxy shows {title!r} ({SCREENSHOT})")
            browser.close()
        passed = True
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if passed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}")


if __name__ == "__main__":
    main()

"""presenced behind Debian's nginx with TLS, configured as ``docs/deployment.md`` says.

nginx runs in the foreground with a self-signed certificate made for the test, in front of a
real ``presenced serve``; the ``zulip`` client talks to it over https with the certificate as
its CA, using the zuliprc the CLI prints.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import zulip

from deployment_docs import code_block, replace
from live import LiveServer, free_port, live_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def nginx_config(workdir: Path, upstream_port: int, https_port: int, http_port: int) -> Path:
    """The guide's site, on test ports and paths, in a minimal foreground nginx.conf."""
    cert, key = self_signed_certificate(workdir)
    site = code_block("nginx")
    site = replace(site, "server 127.0.0.1:9991;", f"server 127.0.0.1:{upstream_port};")
    site = replace(site, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    site = replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = replace(site, "/etc/letsencrypt/live/presence.example.com/fullchain.pem", str(cert))
    site = replace(site, "/etc/letsencrypt/live/presence.example.com/privkey.pem", str(key))
    temp = workdir / "nginx-temp"
    temp.mkdir()
    paths = "\n".join(
        f"    {kind}_temp_path {temp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = workdir / "nginx.conf"
    config.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "nginx-error.log"} warn;
events {{ worker_connections 128; }}
http {{
    access_log {workdir / "nginx-access.log"};
{paths}
{site}
}}
"""
    )
    return config


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        assert process.poll() is None, log.read_text() if log.exists() else "nginx exited"
        assert time.monotonic() < deadline, "nginx did not start"
        time.sleep(0.05)


@contextlib.contextmanager
def nginx(config: Path, workdir: Path, port: int) -> Iterator[None]:
    log = workdir / "nginx-stderr.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [NGINX, "-c", str(config), "-p", str(workdir), "-e", str(workdir / "nginx-early.log")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Proxied:
    server: LiveServer
    site: str
    """The https URL clients use (through nginx)."""
    cert: Path
    http_port: int
    """nginx's plain-http port (redirects to https)."""


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Proxied]:
    """A live server configured with the guide's settings file, behind the guide's nginx."""
    https_port, http_port, upstream_port = free_port(), free_port(), free_port()
    settings = code_block("toml")
    settings = replace(
        settings, "sqlite:////var/lib/presenced/presenced.db", f"sqlite:///{tmp_path / 'p.db'}"
    )
    settings = replace(settings, '"presence.example.com"', f'"localhost:{https_port}"')
    settings_file = tmp_path / "presenced.toml"
    settings_file.write_text(settings)
    # live_server sets the database and external host itself: empty values defer to the file.
    env = {
        "PRESENCED_CONFIG_FILE": str(settings_file),
        "PRESENCED_DATABASE_URL": "",
        "PRESENCED_EXTERNAL_HOST": "",
    }
    config = nginx_config(tmp_path, upstream_port, https_port, http_port)
    with (
        live_server(tmp_path, env, port=upstream_port) as server,
        nginx(config, tmp_path, https_port),
    ):
        yield Proxied(server, f"https://localhost:{https_port}", tmp_path / "cert.pem", http_port)


def zuliprc_site(text: str) -> str:
    return next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("site="))


def test_zulip_client_over_https_sees_https_everywhere(
    proxied: Proxied, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, site, cert = proxied.server, proxied.site, proxied.cert
    # requests lets these override the client's own cert_bundle: trust only the test's CA.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    server.cli("realm", "create", "--name", "Zulip Dev")
    user = server.user("iago@zulip.com", "Iago", "--role", "admin")
    zuliprc_text = server.cli("zuliprc", "--email", "iago@zulip.com")
    assert zuliprc_site(zuliprc_text) == site
    zuliprc = server.log_path.parent / "zuliprc"
    zuliprc.write_text(zuliprc_text)

    client: Any = zulip.Client(config_file=str(zuliprc), cert_bundle=str(cert))
    settings = client.get_server_settings()
    assert settings["result"] == "success", settings
    assert settings["realm_url"] == site
    assert settings["realm_uri"] == site

    reported = client.update_presence({"status": "active", "last_update_id": -1})
    assert reported["result"] == "success", reported
    assert str(user["user_id"]) in reported["presences"]
    queue = client.register(event_types=["presence"])
    assert queue["result"] == "success", queue
    polled = client.get_events(
        queue_id=queue["queue_id"], last_event_id=queue["last_event_id"], dont_block=True
    )
    assert polled == {"result": "success", "msg": "", "events": []}

    tls = ssl.create_default_context(cafile=str(cert))
    health = httpx.get(site + "/health", verify=tls, timeout=30)
    assert health.json() == {"result": "success", "msg": ""}


def test_plain_http_is_redirected_to_https(proxied: Proxied) -> None:
    response = httpx.get(f"http://127.0.0.1:{proxied.http_port}/health", timeout=30)
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://")


def test_forwarded_proto_from_an_untrusted_address_is_ignored(tmp_path: Path) -> None:
    """Only the proxies in PRESENCED_FORWARDED_ALLOW_IPS may say a request came over https."""
    env = {"PRESENCED_FORWARDED_ALLOW_IPS": "192.0.2.1"}
    with live_server(tmp_path, env) as server:
        server.cli("realm", "create", "--name", "Zulip Dev")
        forged = httpx.get(
            server.url + "/api/v1/server_settings",
            headers={"X-Forwarded-Proto": "https"},
            timeout=30,
        ).json()
        assert forged["realm_url"].startswith("http://")

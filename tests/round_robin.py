"""nginx in front of several ``presenced serve`` processes, sending each request to the next
one (round-robin, no keep-alive to the backends), as the black-box tests of several processes
run them."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from live import free_port

CONFIG = """
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    upstream presenced {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://presenced;
            proxy_set_header Host $http_host;
            proxy_read_timeout 120s;
            proxy_next_upstream off;
        }}
    }}
}}
"""


def _nginx() -> str:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        pytest.fail("nginx is needed for this test (.ci/run installs it)")
    return binary


@contextlib.contextmanager
def round_robin_proxy(workdir: Path, backend_urls: list[str]) -> Iterator[str]:
    """The proxy's URL; each request goes to the next of ``backend_urls``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(
        f"        server {url.removeprefix('http://').replace('localhost', '127.0.0.1')};"
        for url in backend_urls
    )
    config = workdir / "nginx.conf"
    config.write_text(CONFIG.format(workdir=workdir, servers=servers, port=port))
    process = subprocess.Popen(
        [_nginx(), "-c", str(config), "-p", str(workdir), "-e", str(workdir / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(url + "/api/v1/server_settings", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (workdir / "nginx-error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

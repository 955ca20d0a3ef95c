"""The documentation's CSS, JavaScript and images, read into memory once and served by
presenced itself (no external assets, so the pages work offline and behind firewalls)."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from presenced.web.docs.highlight import stylesheet

STATIC_DIR = Path(__file__).resolve().parent / "static"
GENERATED = {"pygments.css": stylesheet}
"""Assets made at start-up rather than read from a file."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _asset(name: str, body: bytes) -> Asset:
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith(("javascript", "svg+xml")):
        media_type += "; charset=utf-8"
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')


def load_assets() -> dict[str, Asset]:
    assets = {
        path.name: _asset(path.name, path.read_bytes())
        for path in sorted(STATIC_DIR.iterdir())
        if path.is_file()
    }
    for name, make in GENERATED.items():
        assets[name] = _asset(name, make().encode("utf-8"))
    return assets

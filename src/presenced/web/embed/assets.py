"""The page, its style and scripts: package files, read once, no external assets."""

from __future__ import annotations

import secrets
from functools import cache
from importlib import resources
from string import Template


@cache
def asset(name: str) -> str:
    return resources.files("presenced.web.embed").joinpath("assets", name).read_text("utf-8")


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def directory_page(theme: str, nonce: str) -> str:
    """The directory page; its inline style and script run only with ``nonce`` (CSP)."""
    return Template(asset("directory.html")).substitute(
        theme=theme, nonce=nonce, style=asset("directory.css"), script=asset("directory.js")
    )

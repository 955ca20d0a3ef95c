"""Which organization a request is for, from its Host header (Zulip's get_subdomain)."""

from __future__ import annotations

import re

ROOT_SUBDOMAIN = ""
ROOT_SUBDOMAIN_ALIASES = frozenset({"www"})


def subdomain_for_host(host: str, external_host: str) -> str:
    """``SUB.<external host>`` is realm SUB; anything else (the host itself, localhost, an IP
    address) is the root realm."""
    host = host.lower()
    match = re.search(r"\." + re.escape(external_host.lower()) + r"(:\d+)?$", host)
    if match is None:
        return ROOT_SUBDOMAIN
    subdomain = host[: match.start()]
    if subdomain in ROOT_SUBDOMAIN_ALIASES:
        return ROOT_SUBDOMAIN
    return subdomain


def realm_url(subdomain: str, external_host: str, scheme: str) -> str:
    host = f"{subdomain}.{external_host}" if subdomain else external_host
    return f"{scheme}://{host}"

"""Which sites may use a token: framing (CSP ``frame-ancestors``) and reading (CORS).

A token made without ``--origin`` may be used from any site; with origins, only from those.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from presenced.store.base import EmbedToken

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


class OriginError(ValueError):
    pass


def _ascii_host(host: str) -> str | None:
    """The host as a browser's ``Origin`` header spells it (an IDN in its ``xn--`` form), or
    None if it is no host name."""
    try:
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return ascii_host if _valid_host(ascii_host) else None


def _valid_host(host: str) -> bool:
    """A DNS name (IDNs in their ``xn--`` form) or an IP address: nothing else may reach the
    ``frame-ancestors`` header (a space or ``;`` there would widen or add directives)."""
    if _DNS_NAME.match(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` from a URL an operator gives (a path is dropped)."""
    not_an_origin = OriginError(
        f"{value!r} is not an http(s) origin such as https://intranet.example"
    )
    try:
        parts = urlsplit(value.strip())
    except ValueError:  # a bracketed host that is no IP address
        raise not_an_origin from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise not_an_origin
    try:
        port = parts.port
    except ValueError:
        raise OriginError(f"{value!r} has an invalid port") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = _ascii_host(parts.hostname.lower())
    if host is None:
        raise not_an_origin
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def page_security_headers(token: EmbedToken, nonce: str) -> dict[str, str]:
    ancestors = " ".join(token.origins) if token.origins else "*"
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        f"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {ancestors}"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def origin_allowed(token: EmbedToken, origin: str | None, own_origin: str) -> bool:
    """Requests without an Origin (same-origin reads, scripts) are fine: CORS is what keeps
    other sites' pages from reading the answer."""
    return not token.origins or origin is None or origin in (own_origin, *token.origins)


def cors_headers(token: EmbedToken, origin: str | None) -> dict[str, str]:
    if not token.origins:
        return {"Access-Control-Allow-Origin": "*"}
    if origin is not None and origin in token.origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}

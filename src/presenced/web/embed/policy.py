"""Which sites may use a token: framing (CSP ``frame-ancestors``) and reading (CORS).

A token made without ``--origin`` may be used from any site; with origins, only from those.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from presenced.store.base import EmbedToken


class OriginError(ValueError):
    pass


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` from a URL an operator gives (a path is dropped)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OriginError(f"{value!r} is not an http(s) origin such as https://intranet.example")
    try:
        port = parts.port
    except ValueError:
        raise OriginError(f"{value!r} has an invalid port") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
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

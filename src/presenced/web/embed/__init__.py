"""The embeddable live presence directory: a page other sites frame, a JSON endpoint and a
small script for their own pages, all reached with a read-only embed token."""

from presenced.web.embed.routes import embed_routes

__all__ = ["embed_routes"]

"""API documentation pages rendered from the OpenAPI document the server serves, with Zulip's
page structure and macros (see ``macros.py``), white-labelled by ``PRESENCED_PRODUCT_NAME``."""

from presenced.web.docs.routes import docs_routes, docs_site

__all__ = ["docs_routes", "docs_site"]

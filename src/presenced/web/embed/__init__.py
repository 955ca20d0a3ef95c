"""The embeddable live presence directory: a page other sites frame, a JSON endpoint and a
small script for their own pages, all reached with a read-only embed token. The app adds its
routes with ``presenced.web.embed.routes.embed_routes``."""

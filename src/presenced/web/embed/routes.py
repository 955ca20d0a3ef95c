"""The embed's routes, added to the app with one call."""

from __future__ import annotations

from starlette.routing import Route

from presenced.core.server import Server
from presenced.web.embed.views import EmbedEndpoint, EmbedViews


def embed_routes(server: Server) -> list[Route]:
    views = EmbedViews(server)
    return [
        Route("/embed/directory", EmbedEndpoint(views.directory)),
        Route("/embed/stream", EmbedEndpoint(views.stream)),
        Route("/embed/presence.json", EmbedEndpoint(views.presence_json)),
        Route("/embed/presence.js", EmbedEndpoint(views.presence_script)),
    ]

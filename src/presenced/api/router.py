"""The lean path's dispatch: Zulip's REST routes by exact path, before Starlette sees them.

Built from the same ``Route`` list Starlette serves, so both agree: a request whose path is
one of the routes (exactly, or by a template's pattern) goes straight to its ``RestEndpoint``;
anything else (unknown paths, trailing slashes, a ``root_path``) is left to Starlette, which
answers it exactly as it would without this router.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route
from starlette.types import Scope

from presenced.api.endpoint import RestEndpoint


class LeanRouter:
    def __init__(self, routes: list[Route]) -> None:
        self._exact: dict[str, RestEndpoint] = {}
        self._patterns: list[tuple[re.Pattern[str], RestEndpoint, dict[str, Any]]] = []
        for route in routes:
            endpoint = route.endpoint
            if not isinstance(endpoint, RestEndpoint):
                continue
            if route.param_convertors:
                self._patterns.append((route.path_regex, endpoint, route.param_convertors))
            elif not any(p.match(route.path) for p, _, _ in self._patterns):
                # (an earlier template matching this path would win in Starlette's order)
                self._exact.setdefault(route.path, endpoint)

    def match(self, scope: Scope) -> RestEndpoint | None:
        """The endpoint for an HTTP scope, with ``path_params`` set; None: not ours."""
        if scope.get("root_path"):
            return None
        path: str = scope["path"]
        endpoint = self._exact.get(path)
        if endpoint is not None:
            scope["path_params"] = {}
            return endpoint
        for pattern, endpoint, convertors in self._patterns:
            found = pattern.match(path)
            if found is not None:
                scope["path_params"] = {
                    name: convertors[name].convert(value)
                    for name, value in found.groupdict().items()
                }
                return endpoint
        return None

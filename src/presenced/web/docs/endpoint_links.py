"""Links from prose to endpoint pages: inline code naming a documented endpoint, such as
`` `PATCH /settings` `` or `` `POST /register` ``, becomes a link to that endpoint's page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from collections.abc import Mapping

from markdown import Markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

_ENDPOINT = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/\S*)$")


class EndpointLinkTreeprocessor(Treeprocessor):
    def __init__(self, md: Markdown, slugs: Mapping[tuple[str, str], str]) -> None:
        super().__init__(md)
        self.slugs = slugs
        """Page slug by (METHOD, path template)."""

    def run(self, root: etree.Element) -> None:
        self._walk(root)

    def _walk(self, parent: etree.Element) -> None:
        if parent.tag in ("a", "pre"):
            return
        for index, child in enumerate(list(parent)):
            match = _ENDPOINT.match(child.text or "") if child.tag == "code" else None
            slug = self.slugs.get((match.group(1), match.group(2))) if match else None
            if slug is None:
                self._walk(child)
                continue
            link = etree.Element("a", {"href": f"/api/{slug}"})
            link.tail, child.tail = child.tail, None
            parent.remove(child)
            link.append(child)
            parent.insert(index, link)


class EndpointLinkExtension(Extension):
    def __init__(self, slugs: Mapping[tuple[str, str], str]) -> None:
        super().__init__()
        self.slugs = slugs

    def extendMarkdown(self, md: Markdown) -> None:
        md.treeprocessors.register(EndpointLinkTreeprocessor(md, self.slugs), "endpoint_links", 2)

"""Reading the served documentation pages as a user's browser would: the text of the
``<pre data-example>`` blocks (exactly what a user copies), the links, and the asset URLs."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@dataclass
class Example:
    language: str
    text: str


@dataclass
class PageContent:
    examples: list[Example] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    """Every ``<link href>``, ``<script src>`` and ``<img src>``."""
    code_texts: list[str] = field(default_factory=list)
    """The text of every ``<pre>`` and ``<code>`` element."""


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.content = PageContent()
        self._stack: list[tuple[str, str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.content.links.append(values["href"] or "")
        if tag == "link" and values.get("href"):
            self.content.assets.append(values["href"] or "")
        if tag in ("script", "img") and values.get("src"):
            self.content.assets.append(values["src"] or "")
        if tag in VOID_ELEMENTS:
            return
        self._stack.append((tag, values.get("data-example"), []))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            return
        while self._stack:
            open_tag, example, parts = self._stack.pop()
            text = "".join(parts)
            if self._stack:
                self._stack[-1][2].append(text)
            if open_tag in ("pre", "code"):
                self.content.code_texts.append(text)
            if open_tag == "pre" and example:
                self.content.examples.append(Example(example, text))
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._stack:
            self._stack[-1][2].append(data)


def parse_page(html: str) -> PageContent:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.content


def page_links(html: str) -> list[str]:
    """The slugs of the documentation pages a page links to (``/api/<slug>``)."""
    slugs = []
    for href in parse_page(html).links:
        if href.startswith("/api/") and "/" not in href[len("/api/") :] and href != "/api/":
            slugs.append(href[len("/api/") :].split("#", 1)[0])
    return list(dict.fromkeys(slugs))

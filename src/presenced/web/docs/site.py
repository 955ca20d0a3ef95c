"""The documentation site: which pages exist, and each page rendered to HTML.

Pages are the prose Markdown files in ``pages/`` (a maintainer edits them) and one page per
operation of the OpenAPI document, rendered from ``pages/api-doc-template.md``. A page's HTML
depends only on the organization URL it shows (from the request's host and scheme). Each page
is rendered once, the first time it is asked for, with a marker in place of that URL; a request
gets the rendered pieces joined around its organization's URL. So no request renders a page,
whatever host it names (a render takes some 30 ms; a join, microseconds).
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from markdown import Markdown

from presenced import version
from presenced.web.docs.endpoint_links import EndpointLinkExtension
from presenced.web.docs.macros import MacroContext, MacroExtension
from presenced.web.docs.operations import OpenApiDocument, Operation
from presenced.web.docs.white_label import ProductNameExtension, brand

HERE = Path(__file__).resolve().parent
PAGES_DIR = HERE / "pages"
TEMPLATES_DIR = HERE / "templates"
TEMPLATE_PAGE = "api-doc-template"
INDEX_PAGE = "index"
ENDPOINT_TOKEN = "API_ENDPOINT_NAME"
URL_MARK = "http://organization-url.invalid"
"""Stands for the organization's URL while a page is rendered: plain text to Markdown, Jinja
and Pygments alike, so it comes out verbatim wherever the URL goes."""
MARKDOWN_EXTENSIONS: list[Any] = ["extra", "toc", "admonition", "sane_lists"]
_SLUG = re.compile(r"^[0-9a-zA-Z_-]{1,100}$")


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    section: str
    source: str
    """Markdown, with ``API_ENDPOINT_NAME`` already replaced for an operation's page."""
    order: int = 0


class DocsSite:
    def __init__(self, document: dict[str, Any], product_name: str) -> None:
        self.product_name = product_name
        openapi = OpenApiDocument(document)
        self.operations: list[Operation] = list(openapi.operations())
        self.by_endpoint = {op.endpoint_name: op for op in self.operations}
        self.endpoint_slugs = {(op.method, op.path): op.slug for op in self.operations}
        self.pages: dict[str, Page] = {}
        self.section_titles = _section_titles(document)
        self._load_prose_pages()
        self._add_operation_pages()
        self.sections = self._sections()
        self.renders = 0
        """How many times a page was rendered (the cache's misses)."""
        self._jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
        )
        self._pieces = functools.cache(self._render_pieces)

    # the pages

    def _load_prose_pages(self) -> None:
        for path in sorted(PAGES_DIR.glob("*.md")):
            slug = path.stem
            if slug == TEMPLATE_PAGE:
                continue
            text = path.read_text(encoding="utf-8")
            meta, body = _front_matter(text)
            title_match = re.search(r"^# (.+)$", body, re.M)
            self.pages[slug] = Page(
                slug=slug,
                title=meta.get("title") or (title_match.group(1) if title_match else slug),
                section=meta.get("section", "General"),
                source=body,
                order=int(meta.get("order", "100")),
            )

    def _add_operation_pages(self) -> None:
        template = (PAGES_DIR / f"{TEMPLATE_PAGE}.md").read_text(encoding="utf-8")
        for operation in self.operations:
            if operation.slug in self.pages or not _SLUG.match(operation.slug):
                continue  # a hand-written page of that name wins, as in Zulip
            self.pages[operation.slug] = Page(
                slug=operation.slug,
                title=operation.summary,
                section=self.section_titles.get(operation.tag, operation.tag.title()),
                source=template.replace(ENDPOINT_TOKEN, operation.endpoint_name),
            )

    def _sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Prose sections first (by ``order``), then the document's tags in its order."""
        prose = sorted(
            (p for p in self.pages.values() if p.slug not in self._operation_slugs()),
            key=lambda p: (p.order, p.title),
        )
        sections: dict[str, list[tuple[str, str]]] = {}
        for page in prose:
            sections.setdefault(page.section, []).append((page.slug, page.title))
        tag_order = list(self.section_titles)
        by_tag = sorted(
            self.operations,
            key=lambda op: tag_order.index(op.tag) if op.tag in tag_order else len(tag_order),
        )
        for operation in by_tag:
            found = self.pages.get(operation.slug)
            if found is not None and found not in prose:
                sections.setdefault(found.section, []).append((found.slug, found.title))
        return list(sections.items())

    def _operation_slugs(self) -> set[str]:
        return {op.slug for op in self.operations}

    def endpoint_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        slugs = self._operation_slugs()
        return [
            (title, [(slug, t) for slug, t in pages if slug in slugs])
            for title, pages in self.sections
            if any(slug in slugs for slug, _ in pages)
        ]

    # rendering

    def render(self, slug: str, realm_url: str) -> bytes | None:
        """The page's HTML for the organization at ``realm_url``, or None if there is none."""
        if slug not in self.pages:
            return None
        return html.escape(realm_url).encode("utf-8").join(self._pieces(slug))

    def _render_pieces(self, slug: str) -> tuple[bytes, ...]:
        return tuple(self.render_from_scratch(slug, URL_MARK).split(URL_MARK.encode("utf-8")))

    def render_from_scratch(self, slug: str, realm_url: str) -> bytes:
        """The page rendered for ``realm_url`` itself (``render`` serves the same bytes)."""
        self.renders += 1
        page = self.pages[slug]
        api_url = realm_url + "/api"
        context = {
            "realm_url": realm_url,
            "api_url": api_url,
            "zulip_version": version.ZULIP_VERSION,
            "feature_level": version.API_FEATURE_LEVEL,
        }
        source = self._jinja.from_string(page.source).render(**context)
        content = self._markdown(api_url).convert(source)
        html = self._jinja.get_template("page.html").render(
            page=page,
            title=brand(page.title, self.product_name),
            content=markupsafe.Markup(content),
            sections=self.sections,
            product_name=self.product_name,
            **context,
        )
        return html.encode("utf-8")

    def _markdown(self, api_url: str) -> Markdown:
        links = EndpointLinkExtension(self.endpoint_slugs)
        prose = Markdown(
            extensions=[*MARKDOWN_EXTENSIONS, links, ProductNameExtension(self.product_name)]
        )

        def render_prose(text: str) -> str:
            return prose.reset().convert(text)

        macro_context = MacroContext(
            operations=self.by_endpoint,
            sections=self.endpoint_sections(),
            api_url=api_url,
            render_prose=render_prose,
        )
        return Markdown(
            extensions=[
                *MARKDOWN_EXTENSIONS,
                "codehilite",
                MacroExtension(macro_context),
                links,
                ProductNameExtension(self.product_name),
            ],
            extension_configs={"codehilite": {"css_class": "highlight", "guess_lang": False}},
        )


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``key: value`` lines between ``---`` lines at the top of a prose page."""
    if not text.startswith("---\n"):
        return {}, text
    head, _, body = text[4:].partition("\n---\n")
    meta = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta, body


def _section_titles(document: dict[str, Any]) -> dict[str, str]:
    titles = {}
    for tag in document.get("tags", []):
        name = tag["name"]
        titles[name] = tag.get("x-displayName") or name.replace("_", " ").capitalize()
    return titles

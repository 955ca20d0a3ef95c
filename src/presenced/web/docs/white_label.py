"""The product name in prose: a Markdown tree processor that replaces the word ``presenced``
with ``PRESENCED_PRODUCT_NAME`` in text, but never inside code (``<code>``, ``<pre>``), link
targets or other attributes, so identifiers (``import zulip``, ``zulip.Client``,
``ZulipMobile``, ``presenced serve``) stay as they are.

Zulip has no such setting; the white-labelled Zulip of seed 001 replaced the word everywhere
and so produced "uKnowva MessengerDesktop" for the client name ``ZulipDesktop``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree

from markdown import Markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

DEFAULT_PRODUCT_NAME = "presenced"
CODE_TAGS = frozenset({"code", "pre", "kbd", "samp", "script", "style"})
_WORD = re.compile(r"\bpresenced\b")


def brand(text: str, product_name: str) -> str:
    """``text`` with the product's name in place of the word ``presenced``."""
    if product_name == DEFAULT_PRODUCT_NAME:
        return text
    return _WORD.sub(lambda _: product_name, text)


class ProductNameTreeprocessor(Treeprocessor):
    def __init__(self, md: Markdown, product_name: str) -> None:
        super().__init__(md)
        self.product_name = product_name

    def run(self, root: etree.Element) -> None:
        self._walk(root)

    def _walk(self, element: etree.Element) -> None:
        if element.text:
            element.text = brand(element.text, self.product_name)
        for child in element:
            if child.tag not in CODE_TAGS:
                self._walk(child)
            if child.tail:
                child.tail = brand(child.tail, self.product_name)


class ProductNameExtension(Extension):
    def __init__(self, product_name: str) -> None:
        super().__init__()
        self.product_name = product_name

    def extendMarkdown(self, md: Markdown) -> None:
        md.treeprocessors.register(
            ProductNameTreeprocessor(md, self.product_name), "product_name", 1
        )

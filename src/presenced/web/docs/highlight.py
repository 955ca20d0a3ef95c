"""Server-side syntax highlighting with Pygments, into ``<pre>`` elements whose text is
exactly the code."""

from __future__ import annotations

import functools
from html import escape

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name

CSS_CLASS = "highlight"


@functools.cache
def _formatter() -> HtmlFormatter[str]:
    return HtmlFormatter(nowrap=True)


def code_block(code: str, language: str, *, example: str | None = None) -> str:
    """A highlighted ``<pre>`` (``language`` is a Pygments lexer name). A usage example is
    marked ``data-example="<example>"`` (``python``, ``curl``) for the test that runs every
    example; its text content is ``code`` exactly."""
    body = highlight(code, get_lexer_by_name(language), _formatter())
    body = body.removesuffix("\n") if not code.endswith("\n") else body
    marker = f' data-example="{escape(example)}"' if example else ""
    return f'<pre class="{CSS_CLASS}" data-language="{escape(language)}"{marker}>{body}</pre>'


def stylesheet() -> str:
    """Pygments' CSS for the highlighted blocks."""
    formatter: HtmlFormatter[str] = HtmlFormatter()
    return str(formatter.get_style_defs("." + CSS_CLASS))  # type: ignore[no-untyped-call]

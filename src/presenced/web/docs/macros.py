"""Zulip's documentation macros as a Python-Markdown extension.

A page's Markdown (the shared ``api-doc-template.md`` for every operation, or a prose page)
may use, each alone on its line:

- ``{generate_api_header(/path:method)}``: the title, the ``METHOD <url>`` line and the
  description;
- ``{generate_code_example(python)|/path:method|example}`` and ``...(curl)...``: the usage
  examples;
- ``{generate_api_arguments_table|openapi.yaml|/path:method}``: the parameters;
- ``{generate_parameter_description(/path:method)}``, ``{generate_response_description(...)}``:
  the operation's ``x-parameter-description`` / ``x-response-description``;
- ``{generate_return_values_table|openapi.yaml|/path:method}``: the return values;
- ``{generate_code_example|/path:method|fixture}``: the example responses;
- ``{start_tabs}``, ``{tab|python}``, ``{tab|curl}``, ``{end_tabs}``: tabs;
- ``{generate_endpoint_index}`` and ``{generate_changelog}``: the endpoint list and the
  changelog by feature level, both from the OpenAPI document.

Generated HTML (code, tables) goes through Python-Markdown's HTML stash; generated Markdown
(descriptions) is rendered with the rest of the page.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markdown import Markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

from presenced.web.docs.examples import curl_example, python_example
from presenced.web.docs.highlight import code_block
from presenced.web.docs.operations import Field, Operation, Parameter

DEPRECATED_BADGE = ' <span class="api-badge deprecated">Deprecated</span>'
TAB_LABELS = {"python": "Python", "curl": "curl", "js": "JavaScript"}
ENDPOINT = r"(?P<endpoint>/[^\s:|()]*:[a-z]+)"
_MACROS: list[tuple[str, re.Pattern[str]]] = [
    ("header", re.compile(r"\{generate_api_header\(" + ENDPOINT + r"\)\}")),
    (
        "code",
        re.compile(
            r"\{generate_code_example\((?P<language>[a-z]+)\)\|" + ENDPOINT + r"\|example\}"
        ),
    ),
    ("fixture", re.compile(r"\{generate_code_example\|" + ENDPOINT + r"\|fixture\}")),
    ("arguments", re.compile(r"\{generate_api_arguments_table\|[^|}]+\|" + ENDPOINT + r"\}")),
    ("returns", re.compile(r"\{generate_return_values_table\|[^|}]+\|" + ENDPOINT + r"\}")),
    ("parameter_text", re.compile(r"\{generate_parameter_description\(" + ENDPOINT + r"\)\}")),
    ("response_text", re.compile(r"\{generate_response_description\(" + ENDPOINT + r"\)\}")),
    ("index", re.compile(r"\{generate_endpoint_index\}")),
    ("changelog", re.compile(r"\{generate_changelog\}")),
]
_TAB = re.compile(r"^\{tab\|(?P<key>[a-z]+)\}$")
_FEATURE_LEVEL = re.compile(r"feature level (\d+)")
_CHANGES = re.compile(r"\*\*Changes\*\*:\s*(.*?)(?:\n\s*\n|\Z)", re.S)


class MacroError(ValueError):
    """A template uses a macro wrongly (an unknown endpoint or tab). The tests render every
    page, so this never reaches a user."""


@dataclass(frozen=True)
class MacroContext:
    """What the macros draw on: the operations, the sections, the URL and the prose renderer."""

    operations: dict[str, Operation]
    """By ``/path:method``."""
    sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]
    """(section title, [(slug, title)]) for the index."""
    api_url: str
    render_prose: Callable[[str], str]
    """Markdown to HTML for descriptions inside generated HTML (with the product name)."""


class MacroPreprocessor(Preprocessor):
    def __init__(self, md: Markdown, context: MacroContext) -> None:
        super().__init__(md)
        self.context = context

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            out.extend(self._expand(line))
        return out

    def _expand(self, line: str) -> list[str]:
        for kind, pattern in _MACROS:
            match = pattern.search(line)
            if match is None:
                continue
            before, after = line[: match.start()], line[match.end() :]
            generated = getattr(self, "_" + kind)(match)
            return [
                *([before] if before.strip() else []),
                *generated,
                *self._expand(after),
            ]
        return [line]

    # helpers

    def _operation(self, match: re.Match[str]) -> Operation:
        endpoint = match.group("endpoint")
        try:
            return self.context.operations[endpoint]
        except KeyError:
            raise MacroError(f"no operation {endpoint} in the OpenAPI document") from None

    def _stash(self, html: str) -> list[str]:
        return ["", self.md.htmlStash.store(html), ""]

    # macros

    def _header(self, match: re.Match[str]) -> list[str]:
        operation = self._operation(match)
        url = f"{self.context.api_url}/v1{operation.path}"
        badges = DEPRECATED_BADGE if operation.deprecated else ""
        return [
            f"# {operation.summary}",
            *self._stash(
                f'<p class="api-endpoint"><code>{operation.method} {escape(url)}</code>{badges}</p>'
            ),
            *operation.description.splitlines(),
            "",
        ]

    def _code(self, match: re.Match[str]) -> list[str]:
        operation = self._operation(match)
        language = match.group("language")
        if language == "python":
            return self._stash(code_block(python_example(operation), "python", example="python"))
        if language == "curl":
            code = curl_example(operation, self.context.api_url)
            return self._stash(code_block(code, "bash", example="curl"))
        return []  # Zulip's other bindings (JavaScript) have no examples here.

    def _fixture(self, match: re.Match[str]) -> list[str]:
        operation = self._operation(match)
        lines: list[str] = []
        shown_status = ""
        for example in operation.responses:
            head = ""
            if example.status != shown_status:
                # The status and what it means, once before its examples.
                shown_status = example.status
                status = int(example.status)
                phrase = http.HTTPStatus(status).phrase if status in _STATUSES else ""
                meaning = self.context.render_prose(example.response_description)
                head = (
                    '<p class="api-response-status">'
                    f'<span class="api-status api-status-{status // 100}xx">'
                    f"{status} {escape(phrase)}</span></p>"
                    f'<div class="api-response-meaning">{meaning}</div>'
                )
            title = self.context.render_prose(example.title) if example.title else ""
            text = json.dumps(example.value, indent=4, ensure_ascii=False)
            lines += self._stash(
                f'<div class="api-example-response">{head}'
                f'<div class="api-response-title">{title}</div>'
                f"{code_block(text, 'json')}</div>"
            )
        return lines

    def _arguments(self, match: re.Match[str]) -> list[str]:
        operation = self._operation(match)
        if not operation.parameters:
            return ["This endpoint does not accept any parameters.", ""]
        rows = "".join(self._argument_row(p) for p in operation.parameters)
        return self._stash(
            '<div class="api-arguments-wrapper"><table class="api-arguments"><thead><tr>'
            "<th>Name</th><th>Example</th><th>Required</th><th>Type</th><th>Description</th>"
            f"</tr></thead><tbody>{rows}</tbody></table></div>"
        )

    def _argument_row(self, parameter: Parameter) -> str:
        required = {
            (True, "path"): "required in path",
            (True, "query"): "required",
            (True, "body"): "required",
        }.get((parameter.required, parameter.location), "optional")
        extra = []
        enum = parameter.schema.get("enum")
        if enum:
            extra.append("Must be one of: " + ", ".join(f"`{json.dumps(v)}`" for v in enum) + ".")
        if "default" in parameter.schema:
            extra.append(f"Defaults to `{json.dumps(parameter.schema['default'])}`.")
        description = self.context.render_prose("\n\n".join([parameter.description, *extra]))
        deprecated = DEPRECATED_BADGE if parameter.deprecated else ""
        example = json.dumps(parameter.example, ensure_ascii=False)
        return (
            f'<tr id="parameter-{escape(parameter.name)}">'
            f'<td data-label="Name"><code>{escape(parameter.name)}</code>{deprecated}</td>'
            f'<td data-label="Example"><code>{escape(example)}</code></td>'
            f'<td data-label="Required">{required}</td>'
            f'<td data-label="Type"><span class="api-field-type">{escape(parameter.type_name)}'
            "</span></td>"
            f'<td data-label="Description">{description}</td></tr>'
        )

    def _returns(self, match: re.Match[str]) -> list[str]:
        operation = self._operation(match)
        if not operation.return_values:
            return [
                "#### Return values",
                "",
                "Nothing beyond the `result` and `msg` that every response has.",
                "",
            ]
        return ["#### Return values", *self._stash(self._field_list(operation.return_values))]

    def _field_list(self, fields: Sequence[Field]) -> str:
        items = []
        for item in fields:
            label = f"<code>{escape(item.label)}</code>: " if item.label else ""
            kind = f'<span class="api-field-type">{escape(item.type_name)}</span>'
            deprecated = DEPRECATED_BADGE if item.deprecated else ""
            text = item.description
            if len(item.values) == 1:
                text = f"Always `{json.dumps(item.values[0])}`. {text}".strip()
            elif item.values:
                text += "\n\nOne of: " + ", ".join(f"`{json.dumps(v)}`" for v in item.values) + "."
            body = self.context.render_prose(text) if text else ""
            nested = self._field_list(item.children) if item.children else ""
            if item.alternatives:
                nested += '<p class="api-one-of">One of:</p>' + self._field_list(item.alternatives)
            items.append(f"<li>{label}{kind}{deprecated}{body}{nested}</li>")
        return '<ul class="api-return-values">' + "".join(items) + "</ul>"

    def _parameter_text(self, match: re.Match[str]) -> list[str]:
        text: str = self._operation(match).raw.get("x-parameter-description", "")
        return [*text.splitlines(), ""]

    def _response_text(self, match: re.Match[str]) -> list[str]:
        text: str = self._operation(match).raw.get("x-response-description", "")
        return [*text.splitlines(), ""]

    def _index(self, match: re.Match[str]) -> list[str]:
        lines: list[str] = []
        for title, pages in self.context.sections:
            lines += [f"## {title}", ""]
            lines += [f"* [{page_title}](/api/{slug})" for slug, page_title in pages]
            lines.append("")
        return lines

    def _changelog(self, match: re.Match[str]) -> list[str]:
        """Every **Changes** note in the document, grouped by the feature levels it names."""
        by_level: dict[int, list[str]] = {}
        for operation in self.context.operations.values():
            notes: list[tuple[str | None, str]] = [(None, operation.description)]
            notes += [(p.name, p.description) for p in operation.parameters]
            notes += [(f.label, f.description) for f in _flatten(operation.return_values)]
            for name, text in notes:
                for change in _CHANGES.findall(text or ""):
                    levels = {int(level) for level in _FEATURE_LEVEL.findall(change)}
                    where = f"[`{operation.method} {operation.path}`](/api/{operation.slug})"
                    if name:
                        where += f", `{name}`"
                    for level in levels:
                        by_level.setdefault(level, []).append(
                            f"* {where}: {' '.join(change.split())}"
                        )
        lines: list[str] = []
        for level in sorted(by_level, reverse=True):
            lines += [f"## Feature level {level}", "", *dict.fromkeys(by_level[level]), ""]
        return lines


_STATUSES = {s.value for s in http.HTTPStatus}


def _flatten(fields: Sequence[Field]) -> list[Field]:
    out: list[Field] = []
    for item in fields:
        out.append(item)
        out += _flatten(item.children)
        out += _flatten(item.alternatives)
    return out


class TabsPreprocessor(Preprocessor):
    """``{start_tabs}`` ... ``{end_tabs}``: a tab list and one panel per ``{tab|key}``. Without
    JavaScript every panel shows; the script hides all but the selected one."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            if line.strip() != "{start_tabs}":
                out.append(line)
                index += 1
                continue
            end = next(
                (i for i in range(index + 1, len(lines)) if lines[i].strip() == "{end_tabs}"), None
            )
            if end is None:
                raise MacroError("{start_tabs} without {end_tabs}")
            out += self._section(lines[index + 1 : end])
            index = end + 1
        return out

    def _section(self, lines: list[str]) -> list[str]:
        keys = [m.group("key") for line in lines if (m := _TAB.match(line.strip()))]
        for key in keys:
            if key not in TAB_LABELS:
                raise MacroError(f"unknown tab {key!r}")
        tabs = "".join(
            f'<li role="tab" data-tab-key="{key}" tabindex="0">{TAB_LABELS[key]}</li>'
            for key in keys
        )
        out = self._stash(f'<div class="tabbed-section"><ul class="nav" role="tablist">{tabs}</ul>')
        opened = False
        for line in lines:
            match = _TAB.match(line.strip())
            if match:
                closing = "</div>" if opened else ""
                key = match.group("key")
                panel = f'<div class="tab-panel" role="tabpanel" data-tab-key="{key}">'
                out += self._stash(closing + panel)
                opened = True
            else:
                out.append(line)
        out += self._stash(("</div>" if opened else "") + "</div>")
        return out

    def _stash(self, html: str) -> list[str]:
        return ["", self.md.htmlStash.store(html), ""]


class MacroExtension(Extension):
    def __init__(self, context: MacroContext) -> None:
        super().__init__()
        self.context = context

    def extendMarkdown(self, md: Markdown) -> None:
        # After whitespace normalization (30), which would strip the stash placeholders, and
        # before fenced code (25), since descriptions may hold fenced blocks.
        md.preprocessors.register(MacroPreprocessor(md, self.context), "presenced_macros", 28)
        md.preprocessors.register(TabsPreprocessor(md), "presenced_tabs", 22)

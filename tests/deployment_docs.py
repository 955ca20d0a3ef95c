"""The configuration blocks of ``docs/deployment.md``, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"


def code_block(language: str) -> str:
    """The first fenced block of ``language`` in the deployment guide."""
    match = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert match is not None, f"no {language} block in {DOC}"
    return match.group(1)


def replace(text: str, old: str, new: str) -> str:
    """``str.replace`` that insists ``old`` is there (so the guide and its test agree)."""
    assert old in text, f"{old!r} is no longer in {DOC.name}"
    return text.replace(old, new)


def command(containing: str) -> str:
    """The first line of a ``sh`` block of the guide that contains ``containing``."""
    for block in re.finditer(r"```sh\n(.*?)```", DOC.read_text(), re.S):
        for line in block.group(1).splitlines():
            if containing in line:
                return line
    raise AssertionError(f"no sh command with {containing!r} in {DOC}")

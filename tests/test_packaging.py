"""Packaging metadata: an SPDX license with its file, project URLs, bounded linters."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return data


def test_license_is_an_spdx_expression_with_its_file() -> None:
    meta = project()
    assert meta["license"] == "Apache-2.0"
    assert meta["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_project_urls() -> None:
    urls = project()["urls"]
    assert isinstance(urls, dict)
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert all(str(url).startswith("https://") for url in urls.values())


def test_the_linters_the_suite_runs_have_upper_bounds() -> None:
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    for name in ("ruff", "mypy"):
        (spec,) = [d for d in extras["test"] if re.match(rf"{name}\b", d)]
        assert "<" in spec, spec

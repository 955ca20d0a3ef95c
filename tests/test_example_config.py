"""``presenced.example.toml`` names every setting with its default, and loads as it is."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from presenced.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "presenced.example.toml"
SETTING_LINE = re.compile(r"^# ([a-z_]+ = .+)$")


def test_every_setting_is_in_the_example_with_its_default() -> None:
    lines = [
        m.group(1) for line in EXAMPLE.read_text().splitlines() if (m := SETTING_LINE.match(line))
    ]
    values = tomllib.loads("\n".join(lines))
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert values == defaults


def test_the_example_loads_and_uncommented_it_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings({"PRESENCED_CONFIG_FILE": str(EXAMPLE)}) == Settings()
    uncommented = tmp_path / "presenced.toml"
    text = "\n".join(
        m.group(1) if (m := SETTING_LINE.match(line)) else line
        for line in EXAMPLE.read_text().splitlines()
    )
    uncommented.write_text(text)
    assert load_settings({"PRESENCED_CONFIG_FILE": str(uncommented)}) == Settings()

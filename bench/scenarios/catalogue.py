"""The load scenarios by key."""

from __future__ import annotations

from scenarios import (
    s1_saturation,
    s2_steady_state,
    s3_many_realms,
    s4_first_fetch,
    s5_empty_delta,
)
from scenarios.model import Scenario, Sizes

MODULES = (s1_saturation, s2_steady_state, s3_many_realms, s4_first_fetch, s5_empty_delta)


def load_scenarios(quick: bool) -> dict[str, Scenario]:
    sizes = Sizes(quick)
    table = [module.scenario(sizes) for module in MODULES]
    return {s.key: s for s in table}

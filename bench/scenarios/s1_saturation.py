"""S1: one realm of 1,000 users, all online: saturation (closed loop) and 1,000 req/s open."""

from __future__ import annotations

from scenarios.model import AUDIT, Phase, RealmSpec, Scenario, Sizes, saturation, warm_up


def scenario(sizes: Sizes) -> Scenario:
    n1 = 200 if sizes.quick else 1_000
    return Scenario(
        "S1",
        f"one realm of {n1:,} users, all online",
        (RealmSpec("s1", n1, "all"),),
        (
            warm_up(32, sizes),
            saturation(sizes),
            Phase(
                f"open {n1:,}/s",
                "open",
                "auto",
                duration=sizes.saturation_s,
                period=1.0,
                label=f"open loop, each user once a second ({n1:,} req/s)",
            ),
            *AUDIT,
        ),
        memory_phase="warm-up",
    )

"""S2: one realm of 10,000 users, all online, each pinging every 60 s (open loop)."""

from __future__ import annotations

from scenarios.model import AUDIT, Phase, RealmSpec, Scenario, Sizes, warm_up


def scenario(sizes: Sizes) -> Scenario:
    q = sizes.quick
    n2 = 1_000 if q else 10_000
    p2 = 4.0 if q else 60.0
    d2 = 8.0 if q else 120.0
    return Scenario(
        "S2",
        f"one realm of {n2:,} users, all online, each pinging every {p2:g} s"
        + (" (quick: time-compressed)" if q else ""),
        (RealmSpec("s2", n2, "all"),),
        (
            warm_up(16, sizes),
            Phase(
                f"open {n2 / p2:,.0f}/s",
                "open",
                "auto",
                duration=d2,
                period=p2,
                label=f"open loop, each user every {p2:g} s for {d2:g} s",
            ),
            *AUDIT,
        ),
        connections=256,
        memory_phase="warm-up",
    )

"""S4: the first fetch (last_update_id=-1, and GET /realm/presence) in a realm of 10,000 users
who all have presence."""

from __future__ import annotations

from scenarios.model import AUDIT, Phase, RealmSpec, Scenario, Sizes


def scenario(sizes: Sizes) -> Scenario:
    n4 = 1_000 if sizes.quick else 10_000
    k4 = 30 if sizes.quick else 1_000
    return Scenario(
        "S4",
        f"first fetch in a realm of {n4:,} users, all with presence",
        (RealmSpec("s4", n4, "all"),),
        (
            Phase(
                "prime",
                "each",
                "ping_only",
                32,
                sizes.warm_bound,
                measured=False,
                label="every user once with ping_only=true",
            ),
            Phase(
                "POST last_update_id=-1",
                "closed",
                "first_fetch",
                1,
                300.0,
                max_requests=k4,
                label=f"{k4} in a row, one connection",
            ),
            Phase(
                "GET /realm/presence",
                "closed",
                "legacy_get",
                1,
                300.0,
                max_requests=k4,
                label=f"{k4} in a row, one connection",
            ),
            Phase(
                "POST first fetch x4",
                "closed",
                "first_fetch",
                4,
                300.0,
                max_requests=k4,
                label=f"{k4}, four connections",
            ),
            *AUDIT,
        ),
        memory_phase="prime",
    )

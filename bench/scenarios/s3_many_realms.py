"""S3: 1,000 realms of 100 users each, at saturation."""

from __future__ import annotations

from scenarios.model import AUDIT, RealmSpec, Scenario, Sizes, saturation, warm_up


def scenario(sizes: Sizes) -> Scenario:
    r3, n3 = (20, 20) if sizes.quick else (1_000, 100)
    return Scenario(
        "S3",
        f"{r3:,} realms of {n3:,} users each",
        tuple(RealmSpec(f"r{i:04d}", n3, "all") for i in range(1, r3 + 1)),
        (warm_up(64, sizes), saturation(sizes), *AUDIT),
        memory_phase="warm-up",
    )

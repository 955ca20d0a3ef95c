"""S5: the empty-delta ping in a realm of 100 users and in one of 10,000 (it should cost the
same: a request with a cursor is O(changes since the cursor), never O(realm))."""

from __future__ import annotations

from scenarios.model import AUDIT, Phase, RealmSpec, Scenario, Sizes


def scenario(sizes: Sizes) -> Scenario:
    n5 = 1_000 if sizes.quick else 10_000
    d5 = 3.0 if sizes.quick else 20.0
    bound = sizes.warm_bound
    return Scenario(
        "S5",
        f"empty-delta ping in realms of 100 and of {n5:,} users",
        (
            RealmSpec("small", 100, "small"),
            RealmSpec("big", n5, "+100:bigm:bigo"),
        ),
        (
            Phase(
                "prime big",
                "each",
                "ping_only",
                32,
                bound,
                groups=("bigo",),
                measured=False,
                label="the big realm's other users: ping_only",
            ),
            Phase(
                "first small", "each", "first_fetch", 16, bound, groups=("small",), measured=False
            ),
            Phase(
                "sync small", "each", "empty_delta", 16, bound, groups=("small",), measured=False
            ),
            Phase(
                "empty delta, 100 users",
                "closed",
                "empty_delta",
                32,
                d5,
                groups=("small",),
                label="100 users, 32 connections",
            ),
            Phase("first big", "each", "first_fetch", 4, bound, groups=("bigm",), measured=False),
            Phase("sync big", "each", "empty_delta", 16, bound, groups=("bigm",), measured=False),
            Phase(
                f"empty delta, {n5:,} users",
                "closed",
                "empty_delta",
                32,
                d5,
                groups=("bigm",),
                label=f"100 of the {n5:,} users, 32 connections",
            ),
            *AUDIT,
        ),
    )

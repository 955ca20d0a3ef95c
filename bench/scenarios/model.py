"""What a load scenario is: realms of users, and phases of requests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BEHAVIOURS = ["active"] * 16 + ["idle"] * 2 + ["ping_only"] + ["legacy"]
"""User i of a realm behaves as BEHAVIOURS[i % 20]: 80 % active, 10 % idle, 5 % / 5 %."""


@dataclass(frozen=True)
class Sizes:
    """Full-size or --quick: the sizes every scenario draws on."""

    quick: bool

    @property
    def warm_bound(self) -> float:
        """The upper bound on an unmeasured phase that sends each user's request once."""
        return 120.0 if self.quick else 900.0

    @property
    def saturation_s(self) -> float:
        return 3.0 if self.quick else 30.0


@dataclass(frozen=True)
class RealmSpec:
    subdomain: str
    users: int
    group: str
    """Users' group (phases select users by group); "+N:name" splits the first N off."""
    behaviours: bool = True
    """False: users have behaviour "other" (never auditors; the phases say what they send)."""

    def groups(self) -> list[str]:
        """Each user's group, in creation order."""
        if not self.group.startswith("+"):
            return [self.group] * self.users
        head, first, rest = self.group[1:].split(":")
        n = int(head)
        return [first] * min(n, self.users) + [rest] * max(0, self.users - n)


@dataclass(frozen=True)
class Phase:
    name: str
    mode: str  # each | closed | open
    request: str  # a loadgen kind: auto, first_fetch, legacy_get, ping_only, empty_delta
    concurrency: int = 16
    """Total over all generator processes (each, closed)."""
    duration: float = 30.0
    """The window (closed, open); the upper bound on the phase (each)."""
    period: float = 60.0
    """Open loop: each user sends once per period."""
    max_requests: int | None = None
    """Closed loop: stop after this many requests in total."""
    groups: tuple[str, ...] | None = None
    auditors_only: bool = False
    grace: float = 30.0
    """After the window: how long in-flight requests may still take before they are cancelled."""
    measured: bool = True
    shown: bool = True
    """False: left out of the printed tables (still in the JSON)."""
    label: str = ""

    @property
    def counted(self) -> bool:
        """Whether the phase ends when its requests are done (not at the end of a window)."""
        return self.mode == "each" or self.max_requests is not None


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    realms: tuple[RealmSpec, ...]
    phases: tuple[Phase, ...]
    connections: int = 64
    """Total HTTP connections over all generator processes."""
    memory_phase: str | None = None
    """After this phase every user has presence: server RSS growth per user is taken there."""

    def with_memory_phase(self, name: str) -> Scenario:
        return dataclasses.replace(self, memory_phase=name)


def warm_up(concurrency: int, sizes: Sizes) -> Phase:
    """Every user's first call (last_update_id=-1): afterwards everyone is online."""
    return Phase(
        "warm-up",
        "each",
        "auto",
        concurrency,
        sizes.warm_bound,
        measured=False,
        label="every user's first call (last_update_id=-1)",
    )


def saturation(sizes: Sizes) -> Phase:
    return Phase(
        "saturation",
        "closed",
        "auto",
        64,
        sizes.saturation_s,
        label="closed loop, 64 connections, the behaviour mix",
    )


AUDIT = tuple(
    Phase(
        f"audit sync {i}",
        "each",
        "empty_delta",
        8,
        60.0,
        auditors_only=True,
        measured=False,
        shown=False,
    )
    for i in (1, 2)
)
"""Two rounds of empty-delta requests by the auditors, so their views catch up at the end."""

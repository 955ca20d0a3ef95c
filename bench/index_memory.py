"""Memory of the in-memory presence index per user (target: under 2 KB per user with presence).

Run: ``python bench/index_memory.py [--users 10000]``. Builds a realm index the way the server
does (one entry per user, both formats pre-encoded) and reports the bytes it holds per user,
measured with tracemalloc, and the time to build it and to produce a first-fetch payload.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from presenced.presence.index import RealmIndex, make_entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    now = time.time()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    started = time.perf_counter()
    index = RealmIndex()
    for user_id in range(1, args.users + 1):
        email = f"user{user_id}@example-organization.com"
        index.apply(make_entry(user_id, email, now - 86400, now - 30, now, user_id, 70))
    built = time.perf_counter() - started
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    started = time.perf_counter()
    modern = index.connected_since(now - 14 * 86400, 14, None, slim=True)
    legacy = index.connected_since(now - 14 * 86400, 14, None, slim=False)
    first_fetch = time.perf_counter() - started
    started = time.perf_counter()
    index.connected_since(now - 14 * 86400 + 1, 14, None, slim=True)
    cached = time.perf_counter() - started
    started = time.perf_counter()
    delta = index.changed_since(args.users - 100, slim=True)
    delta_time = time.perf_counter() - started
    # Steady state: everyone pinged since the client's last poll, so the delta is the realm.
    index.changed_since(0, slim=True)  # fills the block cache
    for user_id in range(1, 101):  # a hundred new pings stale a few blocks and append
        index.apply(
            make_entry(
                user_id,
                f"user{user_id}@example-organization.com",
                now - 86400,
                now,
                now,
                args.users + user_id,
                70,
            )
        )
    started = time.perf_counter()
    rounds = 50
    for _ in range(rounds):
        everyone = index.changed_since(100, slim=True)
    everyone_time = (time.perf_counter() - started) / rounds
    uncached = RealmIndex(segment_size=1 << 30)
    for user_id in range(1, args.users + 1):
        uncached.apply(
            make_entry(
                user_id,
                f"user{user_id}@example-organization.com",
                now - 86400,
                now - 30,
                now,
                user_id,
                70,
            )
        )
    started = time.perf_counter()
    for _ in range(rounds):
        uncached.changed_since(0, slim=True)
    uncached_time = (time.perf_counter() - started) / rounds
    print(f"users: {args.users}")
    print(f"index memory: {size / args.users:.0f} bytes per user ({size / 1e6:.1f} MB)")
    print(f"build: {built * 1000:.1f} ms")
    print(
        f"first fetch, uncached, both formats: {first_fetch * 1000:.2f} ms "
        f"({len(modern.presences)} + {len(legacy.presences)} bytes)"
    )
    print(f"first fetch, cached: {cached * 1e6:.1f} us")
    print(f"delta of 100 changes: {delta_time * 1e6:.1f} us ({len(delta.presences)} bytes)")
    print(
        f"delta of the whole realm (steady state): {everyone_time * 1000:.2f} ms with cached "
        f"blocks, {uncached_time * 1000:.2f} ms walking every entry "
        f"({len(everyone.presences)} bytes)"
    )


if __name__ == "__main__":
    main()

"""Running one load scenario: backend, accounts, servers, generators, phases, figures.

For each scenario: a fresh backend (SQLite file, or a PostgreSQL database of its own, with
Redis under a key prefix of its own if asked); realms, users and keys through the store API;
the servers; ``procs`` generator processes with a slice of the users each; then each phase in
turn, with the servers' CPU (summed over every server process) and RSS read at its edges and
the presence writes counted through the store.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends import Backend, BackendChoice, bench_backend
from harness.generators import LoadGenerators, share
from harness.logs import scan_logs
from harness.procfs import Snapshot, allowed_cpus, cpu_by_pid, cpu_growth
from harness.servers import ServerGroup, ServerOptions
from harness.stats import out
from presenced.store.base import Store
from scenarios.consistency import check_consistency
from scenarios.load_report import print_scenario
from scenarios.load_results import summarize_phase
from scenarios.load_setup import (
    EXTERNAL_HOST,
    Setup,
    create_scenario_accounts,
    presence_sequence_total,
    users_with_presence,
)
from scenarios.model import Phase, Scenario


@dataclass(frozen=True)
class PhaseWindow:
    """The readings taken around one phase."""

    index: int
    before: Snapshot
    after: Snapshot
    end: Snapshot
    """After the last request (the window's end, for a timed phase, may come earlier)."""
    writes: int
    """Presence writes during the phase (the realms' sequences grew by this much)."""
    services_cpu: dict[str, float]
    """CPU seconds of the backend's own processes (PostgreSQL, Redis) over the window."""


@dataclass(frozen=True)
class RunOptions:
    procs: int
    """Load-generator processes."""
    backend: BackendChoice
    workers: int
    workers_mode: str
    server_cpus: str | None
    keep: bool
    accept_encoding: str = "identity"
    """What the simulated clients send as Accept-Encoding (gzip: as the zulip client does)."""


def phase_spec(phase: Phase, p: int, procs: int, n_users: int) -> dict[str, Any]:
    """Generator process p's part of a phase."""
    active = min(procs, phase.concurrency)
    concurrency = share(phase.concurrency, p, procs)
    max_requests = None
    if phase.max_requests is not None:
        max_requests = share(phase.max_requests, p, active) if p < active else 0
        if max_requests == 0:
            concurrency = 0
    return {
        "name": phase.name,
        "mode": phase.mode,
        "request": phase.request,
        "concurrency": concurrency if phase.mode != "open" else 1,
        "duration": phase.duration,
        "period": phase.period,
        "max_requests": max_requests,
        "groups": None if phase.groups is None else list(phase.groups),
        "auditors_only": phase.auditors_only,
        "grace": phase.grace,
        "n_total": n_users,
    }


def generator_specs(
    setup: Setup, scenario: Scenario, base_urls: list[str], procs: int, accept_encoding: str
) -> list[dict[str, Any]]:
    per_proc_conns = max(1, scenario.connections // procs)
    return [
        {
            "base_urls": base_urls,
            "credentials": str(setup.credentials),
            "proc": p,
            "procs": procs,
            "auditors": 2,
            "connections": per_proc_conns,
            "request_timeout": 120.0,
            "accept_encoding": accept_encoding,
            "phases": [phase_spec(ph, p, procs, setup.users) for ph in scenario.phases],
        }
        for p in range(procs)
    ]


async def run_scenario(scenario: Scenario, options: RunOptions) -> dict[str, Any]:
    out(f"== {scenario.key}: {scenario.title} ==")
    result: dict[str, Any] = {
        "scenario": scenario.key,
        "title": scenario.title,
        "store": options.backend.store,
        "redis": options.backend.redis,
    }
    workdir = Path(tempfile.mkdtemp(prefix=f"presenced-load-{scenario.key}-"))
    started = time.perf_counter()
    try:
        async with bench_backend(options.backend, workdir) as backend:
            store = await backend.open_store()
            try:
                await _run_with_store(scenario, options, backend, store, workdir, result)
            finally:
                await store.close()
    finally:
        if options.keep:
            out(f"  kept {workdir}")
        else:
            remove_workdir(workdir)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    print_scenario(result)
    return result


async def _run_with_store(
    scenario: Scenario,
    options: RunOptions,
    backend: Backend,
    store: Store,
    workdir: Path,
    result: dict[str, Any],
) -> None:
    out(
        f"  creating {sum(r.users for r in scenario.realms):,} users in "
        f"{len(scenario.realms):,} realm(s) through the store API"
    )
    setup = await create_scenario_accounts(scenario, store, workdir)
    realm_ids = list(setup.realms.values())
    result["users"] = setup.users
    result["realms"] = len(setup.realms)
    result["create_s"] = round(setup.create_s, 1)
    result["create_users_per_s"] = round(setup.users / setup.create_s)
    server_options = ServerOptions(
        workers=options.workers,
        workers_mode=options.workers_mode,
        log_level="warning",
        cpus=options.server_cpus,
        env={
            **backend.server_env(),
            "PRESENCED_RATE_LIMIT_REQUESTS": "0",
            "PRESENCED_EXTERNAL_HOST": EXTERNAL_HOST,
        },
    )
    servers = ServerGroup(server_options, workdir)
    gens: LoadGenerators | None = None
    result["workers"] = options.workers
    result["workers_mode"] = servers.mode
    try:
        result["server_ready_s"] = round(await servers.wait_ready(), 2)
        ready = servers.snapshot()
        result["server_processes"] = ready.processes
        result["server_rss_ready_mib"] = round(ready.rss_kib / 1024, 1)
        specs = generator_specs(
            setup, scenario, servers.base_urls, options.procs, options.accept_encoding
        )
        gens = LoadGenerators(specs, workdir)
        gens.expect("READY", 120)
        result["cpus_allowed"] = {
            "server": ", ".join(sorted({allowed_cpus(pid) for pid in servers.pids()})),
            "generators": sorted({allowed_cpus(p.pid) for p in gens.procs}),
        }
        phases: list[PhaseWindow] = []
        for index, phase in enumerate(scenario.phases):
            writes0 = await presence_sequence_total(store, realm_ids)
            services = await backend.service_pids()
            t0 = time.monotonic() + 0.3
            gens.go(t0)
            time.sleep(max(0.0, t0 - time.monotonic()))
            before = servers.snapshot()
            services_before = {k: cpu_by_pid(v) for k, v in services.items()}
            if phase.counted:
                gens.expect("DONE", phase.duration + phase.grace + 60)
                services = await backend.service_pids()
                after = servers.snapshot()
                services_after = {k: cpu_by_pid(v) for k, v in services.items()}
            else:
                time.sleep(max(0.0, t0 + phase.duration - time.monotonic() - 0.05))
                services = await backend.service_pids()
                time.sleep(max(0.0, t0 + phase.duration - time.monotonic()))
                after = servers.snapshot()
                services_after = {k: cpu_by_pid(v) for k, v in services.items()}
                gens.expect("DONE", phase.grace + 60)
            services_cpu = {
                k: cpu_growth(services_before.get(k, {}), v) for k, v in services_after.items()
            }
            end = servers.snapshot()
            writes = await presence_sequence_total(store, realm_ids) - writes0
            phases.append(PhaseWindow(index, before, after, end, writes, services_cpu))
            out(f"  {phase.name}: done ({after.at - before.at:.1f} s)")
        gens.expect("RESULT", 120)
        gens.close()
        parts = gens.results()
        idle_s = servers.wait_idle()
        result["phases"] = [
            summarize_phase(
                scenario.phases[w.index],
                [part["phases"][w.index] for part in parts],
                w.before,
                w.after,
                w.end,
                w.writes,
                setup.users,
                w.services_cpu,
            ).to_json()
            for w in phases
        ]
        result["generator_max_rss_mib"] = round(max(p["max_rss_kib"] for p in parts) / 1024, 1)
        result["idle_wait_s"] = round(idle_s, 1)
        with_presence = await users_with_presence(store, realm_ids)
        result["users_with_presence"] = with_presence
        warm = next(
            (w for w in phases if scenario.phases[w.index].name == scenario.memory_phase),
            None,
        )
        if warm is not None and with_presence:
            grown = warm.end.rss_kib - ready.rss_kib
            result["rss_growth_per_user_with_presence_bytes"] = round(grown * 1024 / with_presence)
        consistency = await check_consistency(setup, store, servers.base_url, parts)
        result["consistency"] = consistency.to_json()
        final = servers.snapshot()
        result["server_rss_final_mib"] = round(final.rss_kib / 1024, 1)
        result["server_rss_peak_mib"] = round(final.hwm_kib / 1024, 1)
    finally:
        if gens is not None:
            gens.close()
        servers.stop()
        scan, _gc = scan_logs(servers.logs)
        result["server_log"] = {
            "lines": scan.lines,
            "tracebacks": scan.tracebacks,
            "first": scan.first,
        }


def remove_workdir(path: Path) -> None:
    """Remove a scenario's temporary directory; retried, and said out loud if it stays."""
    errors: list[str] = []

    def note(func: Any, name: str, exc_info: Any) -> None:
        errors.append(f"{name}: {exc_info[1]}")

    for _attempt in range(3):
        shutil.rmtree(path, onerror=note)
        if not path.exists():
            return
        time.sleep(1.0)
    out(f"  could not remove {path}: {errors[:3]}")

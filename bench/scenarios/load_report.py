"""How load results are printed: the per-scenario table, the targets, the generator check
and the markdown section that docs/performance.md records."""

from __future__ import annotations

from typing import Any

from harness.stats import fmt, out

GENERATOR_BOUND = 0.85
"""A generator process above this fraction of a core (or CPU 0 this busy) may be the limit."""

TABLE_HEADER = (
    "| phase | req/s | p50 ms | p99 ms | max ms | server CPU s / 1k req | server CPU util "
    "| bytes / req | wire bytes / req | entries / reply | writes | server RSS MiB | errors "
    "| generators' CPU | CPU0 / CPU1 busy |"
)


def phase_row(ph: dict[str, Any]) -> str:
    lat = ph["latency_ms"]
    busy = ph["cpu_busy"]
    cells = [
        ph["phase"] + ("" if ph["measured"] else " (not measured)"),
        fmt(ph["req_per_s"]),
        fmt(lat["p50"], 2),
        fmt(lat["p99"], 2),
        fmt(lat["max"], 1),
        fmt(ph["server_cpu_s_per_1k"], 3),
        fmt(ph["server_cpu_util"], 2),
        fmt(ph["bytes_per_request"]),
        fmt(ph.get("wire_bytes_per_request")),
        fmt(ph["entries_per_reply"]),
        fmt(ph["presence_writes"]),
        fmt(ph["server_rss_mib"]),
        fmt(ph["errors"]),
        fmt(ph["generator_cpu_total"], 2),
        f"{busy.get('cpu0', 0):.2f} / {busy.get('cpu1', 0):.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def slow_text(ph: dict[str, Any]) -> str:
    slow = ph["slow_requests"]
    worst = ", ".join(
        f"s{w['second']}: {w['over']}/{w['requests']} (max {w['max_ms']} ms)"
        for w in slow["worst_seconds"]
    )
    text = f"{slow['count']:,} requests over {slow['over_ms']} ms"
    return text + (f", worst seconds of the phase: {worst}" if worst else "")


def print_scenario(result: dict[str, Any]) -> None:
    out()
    out(f"{result['scenario']}: {result['title']}")
    if "cpus_allowed" in result:
        cpus = result["cpus_allowed"]
        out(f"  CPUs allowed: server {cpus['server']}, generators {', '.join(cpus['generators'])}")
    out(
        f"  {result.get('users', 0):,} users in {result.get('realms', 0):,} realm(s); created in "
        f"{result.get('create_s')} s ({result.get('create_users_per_s')} users/s through the "
        f"store API); elapsed {result.get('elapsed_s')} s"
    )
    out(
        f"  store {result.get('store')}{' + Redis' if result.get('redis') else ''}; "
        f"{result.get('server_processes', '?')} server process(es) "
        f"({result.get('workers_mode', 'single')})"
    )
    out("  " + TABLE_HEADER)
    for ph in result.get("phases", []):
        if ph["shown"]:
            out("  " + phase_row(ph))
    for ph in result.get("phases", []):
        if not ph["shown"]:
            continue
        extra = []
        if ph["error_kinds"]:
            extra.append(f"errors {ph['error_kinds']} e.g. {ph['error_samples'][:2]}")
        if "send_lag_ms" in ph:
            extra.append(f"generator send lag p99 {ph['send_lag_ms']['p99']} ms")
        if "offered_req_per_s" in ph:
            extra.append(f"offered {ph['offered_req_per_s']} req/s")
        extra.append(slow_text(ph))
        by = ", ".join(
            f"{k} {v['n']:,} (p50 {v['p50']} / p99 {v['p99']} ms)"
            for k, v in ph["latency_by_request"].items()
        )
        extra.append(f"by request: {by}")
        extra.append(f"non-empty replies {ph['nonempty_replies']:,}/{ph['presence_replies']:,}")
        if services_text(ph):
            extra.append(services_text(ph).removeprefix("; "))
        out(f"    {ph['phase']}: " + "; ".join(extra))
    if "rss_growth_per_user_with_presence_bytes" in result:
        out(
            f"  server RSS: {result['server_rss_ready_mib']} MiB when ready, "
            f"+{result['rss_growth_per_user_with_presence_bytes']:,} B per user with presence "
            f"after warm-up ({result['users_with_presence']:,} users); peak "
            f"{result.get('server_rss_peak_mib')} MiB"
        )
    log = result.get("server_log")
    if log:
        out(
            f"  server log: {log['lines']} lines, {log['tracebacks']} tracebacks"
            + (f"; first: {log['first']}" if log["lines"] else "")
        )
    c = result.get("consistency")
    if c:
        verdict = "OK" if c["ok"] else "FAILED"
        out(
            f"  consistency {verdict}: {c['realms_checked']:,} realm full fetches, "
            f"{c['realms_disagreeing']} disagree; {c['auditors_checked']} auditors, "
            f"{c['auditors_disagreeing']} disagree; {c['cursor_regressions']} cursor regressions"
        )
        for problem in c["realm_problems"] + c["auditor_problems"]:
            out(f"    {problem}")
    out()


def find_phase(results: dict[str, Any], key: str, prefix: str) -> dict[str, Any] | None:
    scenario = results.get(key)
    if not scenario:
        return None
    phases: list[dict[str, Any]] = scenario.get("phases", [])
    for ph in phases:
        if ph["phase"].startswith(prefix) and ph["measured"]:
            return ph
    return None


def targets(results: dict[str, Any], quick: bool) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    sat = find_phase(results, "S1", "saturation")
    if sat:
        rows.append(
            (
                "S1 ≥ 6,000 req/s at saturation with the behaviour mix",
                f"{fmt(sat['req_per_s'])} req/s ({sat['errors']} errors)",
                verdict((sat["req_per_s"] or 0) >= 6000),
            )
        )
        by = sat["latency_by_request"]
        if "active" in by and "idle" in by and by["idle"]["p99"]:
            ratio = by["active"]["p99"] / by["idle"]["p99"]
            rows.append(
                (
                    "S1 active (new_user_input=true) p99 within 1.5x of idle p99, saturation",
                    f"active p99 {by['active']['p99']} ms, idle p99 {by['idle']['p99']} ms: "
                    f"{ratio:.2f}x",
                    verdict(ratio <= 1.5),
                )
            )
    open1 = find_phase(results, "S1", "open")
    if open1:
        rate = open1["req_per_s"] or 0
        rows.append(
            (
                "S1 p99 < 25 ms at open-loop 1,000 req/s",
                f"p99 {fmt(open1['latency_ms']['p99'], 2)} ms at {fmt(rate)} req/s",
                verdict(open1["latency_ms"]["p99"] < 25 and open1["errors"] == 0)
                + (" (quick: lower rate)" if quick else ""),
            )
        )
    s2 = find_phase(results, "S2", "open")
    if s2:
        util = s2["server_cpu_util"] or 0
        offered = s2.get("offered_req_per_s") or 0
        sustained = s2["errors"] == 0 and (s2["req_per_s"] or 0) >= 0.95 * offered
        rows.append(
            (
                "S2 sustained, p99 < 100 ms, server < 0.15 core (all server processes)",
                f"{fmt(s2['req_per_s'])} of {fmt(offered)} req/s, p99 "
                f"{fmt(s2['latency_ms']['p99'], 1)} ms, {util:.2f} core, {s2['errors']} errors",
                verdict(sustained and s2["latency_ms"]["p99"] < 100 and util < 0.15)
                + (" (quick: time-compressed)" if quick else ""),
            )
        )
    small = find_phase(results, "S5", "empty delta, 100")
    big = next(
        (
            ph
            for ph in results.get("S5", {}).get("phases", [])
            if ph["phase"].startswith("empty delta") and ph is not small and ph["measured"]
        ),
        None,
    )
    if small and big and small["server_cpu_s_per_1k"] and big["server_cpu_s_per_1k"]:
        ratio = big["server_cpu_s_per_1k"] / small["server_cpu_s_per_1k"]
        rows.append(
            (
                "S5 CPU per empty-delta request, large realm within 1.1x of 100 users",
                f"{fmt(small['server_cpu_s_per_1k'], 3)} vs {fmt(big['server_cpu_s_per_1k'], 3)} "
                f"s/1k req: {ratio:.2f}x",
                verdict(ratio <= 1.1),
            )
        )
    for key in ("S2", "S4"):
        growth = results.get(key, {}).get("rss_growth_per_user_with_presence_bytes")
        if growth is not None:
            rows.append(
                (
                    f"memory < 2 KB per user with presence ({key}: server RSS growth, an upper "
                    "bound on the index)",
                    f"{growth:,} B per user",
                    verdict(growth < 2048),
                )
            )
    checks = [(k, r["consistency"]) for k, r in results.items() if "consistency" in r]
    if checks:
        good = all(c["ok"] for _, c in checks)
        rows.append(
            (
                "no lost or reordered change (final full fetch and auditors agree with the store)",
                ", ".join(f"{k} {'ok' if c['ok'] else 'FAILED'}" for k, c in checks),
                verdict(good),
            )
        )
    return rows


def services_text(ph: dict[str, Any]) -> str:
    """CPU per 1k requests outside the servers: PostgreSQL's backends for the run's database,
    and the Redis server (all of it: other clients' work included)."""
    parts = []
    if ph.get("postgres_cpu_s_per_1k") is not None:
        parts.append(f"PostgreSQL backends {fmt(ph['postgres_cpu_s_per_1k'], 3)} s")
    if ph.get("redis_cpu_s_per_1k") is not None:
        parts.append(f"Redis server {fmt(ph['redis_cpu_s_per_1k'], 3)} s (shared)")
    return "; plus " + ", ".join(parts) + " per 1k req" if parts else ""


def cpu_per_1k_lines(results: dict[str, Any]) -> list[str]:
    """Per measured phase: server CPU seconds per 1,000 requests, summed over every server
    process (the figure that scales with the number of processes)."""
    lines = []
    for key, scenario in results.items():
        for ph in scenario.get("phases", []):
            if ph["measured"]:
                lines.append(
                    f"{key} {ph['phase']}: {fmt(ph['server_cpu_s_per_1k'], 3)} s per 1k req "
                    f"({ph.get('server_processes', 1)} server process(es), "
                    f"{fmt(ph['req_per_s'])} req/s)" + services_text(ph)
                )
    return lines


def generator_check(results: dict[str, Any]) -> list[str]:
    """Per measured phase, which side was the limit: the server if its process used >= 95 % of
    its core; else the generators if they used >= 85 % of theirs (all processes together) or
    open-loop sends left > 10 ms late at p99; else neither (an open loop below capacity, or one
    request at a time). CPU busy time not used by the server or the generators is shown too
    (other processes on the machine)."""
    lines = []
    for key, scenario in results.items():
        for ph in scenario.get("phases", []):
            if not ph["measured"]:
                continue
            total = ph["generator_cpu_total"] or 0.0
            server = ph["server_cpu_util"] or 0.0
            cpu0 = ph["cpu_busy"].get("cpu0", 0.0)
            cpu1 = ph["cpu_busy"].get("cpu1", 0.0)
            other = ph["other_cpu_util"] or 0.0
            lag = ph.get("send_lag_ms", {}).get("p99")
            if server >= 0.95:
                verdict = "server-bound (its core is full)"
                if total >= GENERATOR_BOUND:
                    verdict += "; the generators were close to their limit too"
            elif total >= GENERATOR_BOUND or (lag is not None and lag > 10):
                verdict = "GENERATOR-BOUND: the figure understates the server"
            elif other >= 0.2:
                verdict = "neither saturated; other processes competed for the CPUs"
            else:
                verdict = "neither saturated (below capacity, or one request at a time)"
            lag_text = f", send lag p99 {lag} ms" if lag is not None else ""
            lines.append(
                f"{key} {ph['phase']}: generators {total:.2f} core (all processes){lag_text}; "
                f"server {server:.2f} core; CPU0 {cpu0:.2f} / CPU1 {cpu1:.2f} busy, other "
                f"processes ~{other:.2f} core: {verdict}"
            )
    return lines


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"## Load benchmark run, {report['started']}" + (" (quick)" if report["quick"] else ""),
        "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), memory `{m['memory']}`, Python "
        f"{m['python']}, Linux {m['kernel']}; {m['pinning']}.",
        f"- Command: `{report['command']}`",
        f"- presenced: git {report['source']['git_head']} plus working tree, src sha256 "
        f"{report['source']['src_sha256']}; `presenced serve --log-level warning` (no access "
        "log), `PRESENCED_RATE_LIMIT_REQUESTS=0`, uvicorn with uvloop/httptools.",
        f"- Store: {report['backend']}; {report['workers']} server process(es) "
        f"({report['workers_mode']}); server CPU figures are summed over every server process.",
        f"- Clients send `Accept-Encoding: {report['accept_encoding']}`; bytes / req is the "
        "decoded body, wire bytes / req the body as received.",
        f"- Generators: {report['procs']} processes (bench/loadgen.py, asyncio + aiohttp).",
        f"- Load average before / after: {report['loadavg_before']} / "
        f"{report['loadavg_after']}; total time {report['elapsed_s']:.0f} s.",
        "",
        "### Targets",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in report["targets"]]
    for key, result in report["results"].items():
        lines += [
            "",
            f"### {key}: {result['title']}",
            "",
            f"{result.get('users', 0):,} users in {result.get('realms', 0):,} realm(s), created "
            f"through the store API in {result.get('create_s')} s "
            f"({result.get('create_users_per_s')} users/s). Server RSS "
            f"{result.get('server_rss_ready_mib')} MiB when ready, peak "
            f"{result.get('server_rss_peak_mib')} MiB.",
            "",
            TABLE_HEADER,
            "|" + " --- |" * 15,
        ]
        lines += [phase_row(ph) for ph in result.get("phases", []) if ph["shown"]]
        lines.append("")
        for ph in result.get("phases", []):
            if not ph["shown"]:
                continue
            notes = [ph["label"]] if ph["label"] else []
            if "offered_req_per_s" in ph:
                notes.append(f"offered {fmt(ph['offered_req_per_s'])} req/s")
            if "send_lag_ms" in ph:
                notes.append(f"generator send lag p99 {ph['send_lag_ms']['p99']} ms")
            notes.append(slow_text(ph))
            by = ", ".join(
                f"{k} {v['n']:,} (p50 {v['p50']} / p99 {v['p99']} ms)"
                for k, v in ph["latency_by_request"].items()
            )
            notes.append(f"by request: {by}")
            if ph["error_kinds"]:
                notes.append(f"errors: {ph['error_kinds']}")
            lines.append(f"- {ph['phase']}: " + "; ".join(notes))
        if "rss_growth_per_user_with_presence_bytes" in result:
            lines.append(
                f"- Server RSS growth over the warm-up: "
                f"{result['rss_growth_per_user_with_presence_bytes']:,} B per user with presence"
            )
        log = result.get("server_log")
        if log:
            lines.append(
                f"- Server log (warning level): {log['lines']} lines, {log['tracebacks']} "
                "tracebacks."
            )
        c = result.get("consistency")
        if c:
            lines.append(
                f"- Consistency {'OK' if c['ok'] else 'FAILED'}: {c['realms_checked']:,} full "
                f"fetches (last_update_id=-1, history_limit_days=365) vs the store's rows, "
                f"{c['realms_disagreeing']} disagree; {c['auditors_checked']} auditor views "
                f"built from deltas, {c['auditors_disagreeing']} disagree; "
                f"{c['cursor_regressions']} cursor regressions."
            )
    lines += ["", "### Server CPU per 1,000 requests (all server processes)", ""]
    lines += [f"- {line}" for line in cpu_per_1k_lines(report["results"])]
    lines += ["", "### Is the generator the bottleneck?", ""]
    lines += [f"- {line}" for line in report["generator_check"]]
    return "\n".join(lines) + "\n"

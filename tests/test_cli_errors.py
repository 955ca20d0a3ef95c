"""Operator mistakes through the real CLI, in a subprocess: each ends in one clear line on
stderr and a non-zero exit, never a traceback; and the operator conveniences around them."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from live import free_port, live_server, wait_until_serving


def presenced(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, stdout: int | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PRESENCED_DATABASE_URL": f"sqlite:///{tmp_path / 'presenced.db'}",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "presenced", *args],
        env=full_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` can be neither written nor (for a directory) created in, even by root."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("needs chattr to make a path read-only for root")
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(stat.S_IMODE(mode))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("serve", "--log-level", "bogus"), "invalid choice: 'bogus'"),
        (("serve", "--port", "http"), "expected a whole number, not 'http'"),
        (("serve", "--port", "70000"), "a port is at most 65535"),
        (("serve", "--workers", "0"), "expected a positive number"),
        (("user", "create", "--email", "a@example.com"), "required: --full-name"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        # A label is a column of `embed list` and `key list`: one line, of reasonable length.
        (("embed", "create", "--label", "a\nb"), "a label is one line"),
        (("key", "create", "--email", "a@b.c", "--label", "x" * 101), "at most 100 characters"),
        (("zuliprc", "--email", "a@b.c", "--label", "tab\there"), "a label is one line"),
    ],
)
def test_bad_flags(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    done = presenced(tmp_path, *args)
    assert done.returncode == 2
    assert_one_line_error(done, fragment)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PRESENCED_PORT": "http"}, "PRESENCED_PORT must be an integer, not 'http'"),
        ({"PRESENCED_LOG_LEVEL": "bogus"}, "log_level must be one of"),
        ({"PRESENCED_WORKERS": "0"}, "workers must be positive"),
        ({"PRESENCED_OFFLINE_THRESHOLD_SECS": "10"}, "offline_threshold_secs must be at least"),
        ({"PRESENCED_CAN_ACCESS_ALL_USERS_GROUP_LIMITS_PRESENCE": "maybe"}, "true or false"),
        ({"PRESENCED_CONFIG_FILE": "/nonexistent/presenced.toml"}, "cannot read config file"),
        ({"PRESENCED_DATABASE_URL": "mysql://x/y"}, "unsupported database URL scheme"),
        ({"PRESENCED_DATABASE_URL": "sqlite://presenced.db"}, "(three slashes, four for an"),
        # NaN and infinity pass every "must be positive" comparison; they must not get through.
        ({"PRESENCED_HEADER_TIMEOUT_SECS": "nan"}, "HEADER_TIMEOUT_SECS must be a finite number"),
        ({"PRESENCED_SHUTDOWN_TIMEOUT_SECS": "inf"}, "must be a finite number, not 'inf'"),
        # The database drivers would fail on these with a traceback.
        ({"PRESENCED_DATABASE_URL": "postgresql://u@db:pg/x"}, "the port 'pg' is not a number"),
        ({"PRESENCED_DATABASE_URL": "postgresql://u@[::1/x"}, "Invalid IPv6 URL"),
        ({"PRESENCED_DATABASE_URL": "postgres://u@a:5432,b:5432/x"}, "one host only"),
        # Mistakes that were accepted silently: no proxy believed, no realm ever matched.
        ({"PRESENCED_FORWARDED_ALLOW_IPS": "10.0.0.0/33"}, "forwarded_allow_ips: '10.0.0.0/33'"),
        ({"PRESENCED_EXTERNAL_HOST": "https://presence.example.com"}, "(no scheme or path)"),
    ],
)
def test_bad_settings(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    for command in (("serve",), ("init",)):
        assert_one_line_error(presenced(tmp_path, *command, env=env), fragment)


def test_more_than_one_worker_needs_postgresql_and_redis(tmp_path: Path) -> None:
    for env, args in (({"PRESENCED_WORKERS": "2"}, ()), ({}, ("--workers", "4"))):
        done = presenced(tmp_path, "serve", *args, env=env)
        assert_one_line_error(done, "workers need PostgreSQL and Redis")


def test_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "presenced.toml"
    config.write_text("port = [")
    assert_one_line_error(
        presenced(tmp_path, "serve", env={"PRESENCED_CONFIG_FILE": str(config)}),
        "cannot read config file",
    )
    # A TOML value of the wrong type is refused, never truncated or stringified.
    for line, fragment in (
        ("port = 1.5", "port must be an integer, not 1.5"),
        ("workers = true", "workers must be an integer, not True"),
        ("host = 5", "host must be a string, not 5"),
        ("header_timeout_secs = nan", "header_timeout_secs must be a finite number"),
    ):
        config.write_text(line + "\n")
        assert_one_line_error(
            presenced(tmp_path, "init", env={"PRESENCED_CONFIG_FILE": str(config)}), fragment
        )
    config.write_text("prot = 1\n")
    assert_one_line_error(
        presenced(tmp_path, "init", env={"PRESENCED_CONFIG_FILE": str(config)}),
        "unknown setting 'prot'",
    )


def test_a_database_in_a_missing_directory(tmp_path: Path) -> None:
    env = {"PRESENCED_DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'presenced.db'}"}
    for command in (("init",), ("serve",), ("realm", "list"), ("check",)):
        done = presenced(tmp_path, *command, env=env)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr + done.stdout
        assert "does not exist" in done.stderr + done.stdout
    assert_one_line_error(presenced(tmp_path, "init", env=env), "database directory")


def test_a_database_in_an_unwritable_directory(tmp_path: Path) -> None:
    directory = tmp_path / "locked"
    directory.mkdir()
    env = {"PRESENCED_DATABASE_URL": f"sqlite:///{directory / 'presenced.db'}"}
    with unwritable(directory):
        for command in (("init",), ("serve",)):
            assert_one_line_error(
                presenced(tmp_path, *command, env=env), "the directory is not writable"
            )


def test_a_read_only_database(tmp_path: Path) -> None:
    assert presenced(tmp_path, "init").returncode == 0
    database = tmp_path / "presenced.db"
    for leftover in tmp_path.glob("presenced.db-*"):
        leftover.unlink()
    with unwritable(database):
        for command in (("init",), ("serve",), ("realm", "list")):
            assert_one_line_error(presenced(tmp_path, *command), "is read-only")


def test_no_schema_yet(tmp_path: Path) -> None:
    assert_one_line_error(presenced(tmp_path, "realm", "list"), "run `presenced init`")


def test_unknown_realm_and_user(tmp_path: Path) -> None:
    assert presenced(tmp_path, "init").returncode == 0
    assert_one_line_error(
        presenced(tmp_path, "user", "create", "--email", "a@example.com", "--full-name", "A"),
        "the root realm does not exist",
    )
    assert presenced(tmp_path, "realm", "create", "--name", "Org").returncode == 0
    assert_one_line_error(
        presenced(tmp_path, "user", "list", "--realm", "nope"), "realm 'nope' does not exist"
    )
    assert_one_line_error(
        presenced(tmp_path, "key", "create", "--email", "who@example.com"), "no user"
    )
    assert_one_line_error(presenced(tmp_path, "realm", "create", "--name", "Org"), "already exists")


def test_a_port_in_use(tmp_path: Path) -> None:
    import socket

    assert presenced(tmp_path, "init").returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert_one_line_error(
            presenced(tmp_path, "serve", "--port", str(port)), f"port {port}", "in use"
        )


def test_unknown_presenced_variables_are_warned_about(tmp_path: Path) -> None:
    done = presenced(tmp_path, "init", env={"PRESENCED_OFLINE_THRESHOLD_SECS": "100"})
    assert done.returncode == 0
    assert done.stderr == (
        "presenced: warning: PRESENCED_OFLINE_THRESHOLD_SECS is not a presenced setting\n"
    )


def test_check(tmp_path: Path) -> None:
    env = {"PRESENCED_PORT": str(free_port())}
    done = presenced(tmp_path, "check", env=env)
    assert done.returncode == 1
    assert "problem: the database file" in done.stdout
    assert presenced(tmp_path, "init").returncode == 0
    done = presenced(tmp_path, "check", env=env)
    assert done.returncode == 0, done.stdout
    assert "problem" not in done.stdout
    assert "ok: database schema is current" in done.stdout
    done = presenced(tmp_path, "check", env={**env, "PRESENCED_WORKRES": "2"})
    assert done.returncode == 1
    assert "problem: PRESENCED_WORKRES is not a presenced setting" in done.stdout
    done = presenced(tmp_path, "check", env={**env, "PRESENCED_WORKERS": "3"})
    assert done.returncode == 1
    assert "problem: 3 workers need PostgreSQL and Redis" in done.stdout
    done = presenced(tmp_path, "check", env={**env, "PRESENCED_PORT": "0"})
    assert done.returncode == 1
    assert done.stdout == "problem: port must be between 1 and 65535, not 0\n"


def test_the_readme_first_command_runs_twice(tmp_path: Path) -> None:
    """The README's setup, minus installing and serving: an owner, and safe to run again."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("python3 -m venv .venv &&"))
    steps = [s.strip() for s in line.split("&&")]
    setup = [s for s in steps if s.startswith(".venv/bin/presenced") and not s.endswith("serve")]
    assert steps[-1] == ".venv/bin/presenced serve"
    assert any("--role owner" in s for s in setup)
    import shlex

    for _ in range(2):
        for step in setup:
            done = presenced(tmp_path, *shlex.split(step)[1:])
            assert done.returncode == 0, (step, done.stderr)
    users = presenced(tmp_path, "user", "list", "--json")
    assert '"role":"owner"' in users.stdout


def test_zuliprc_files_are_private(tmp_path: Path) -> None:
    assert presenced(tmp_path, "init").returncode == 0
    assert presenced(tmp_path, "realm", "create", "--name", "Org").returncode == 0
    args = ("user", "create", "--email", "a@example.com", "--full-name", "A")
    assert presenced(tmp_path, *args).returncode == 0
    output = tmp_path / "zuliprc"
    done = presenced(tmp_path, "zuliprc", "--email", "a@example.com", "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert output.read_text().startswith("[api]\nemail=a@example.com\nkey=")
    redirected = tmp_path / "redirected"
    with redirected.open("w") as out:
        redirected.chmod(0o644)
        done = presenced(tmp_path, "zuliprc", "--email", "a@example.com", stdout=out.fileno())
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(redirected.stat().st_mode) == 0o600
    assert redirected.read_text().startswith("[api]\n")


def test_printed_urls_follow_the_external_scheme(tmp_path: Path) -> None:
    """Behind a TLS proxy (PRESENCED_EXTERNAL_URI_SCHEME=https) the realm and embed URLs the
    CLI prints are https ones, like the zuliprc's site."""
    env = {"PRESENCED_EXTERNAL_URI_SCHEME": "https", "PRESENCED_EXTERNAL_HOST": "chat.example"}
    assert presenced(tmp_path, "init", env=env).returncode == 0
    created = presenced(tmp_path, "realm", "create", "--name", "Org", "--subdomain", "hr", env=env)
    assert created.returncode == 0, created.stderr
    assert "at https://hr.chat.example" in created.stdout
    embed = presenced(tmp_path, "embed", "create", "--realm", "hr", env=env)
    assert embed.returncode == 0, embed.stderr
    assert "url: https://hr.chat.example/embed/directory?token=" in embed.stdout


def test_serve_takes_host_port_and_log_level_from_settings(tmp_path: Path) -> None:
    assert presenced(tmp_path, "init").returncode == 0
    port = free_port()
    env = {
        **os.environ,
        "PRESENCED_DATABASE_URL": f"sqlite:///{tmp_path / 'presenced.db'}",
        "PRESENCED_HOST": "127.0.0.1",
        "PRESENCED_PORT": str(port),
        "PRESENCED_LOG_LEVEL": "WARNING",
        "HOME": str(tmp_path),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "presenced", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", process, log_path)
        finally:
            process.terminate()
            process.wait(timeout=15)
    # At level warning, uvicorn's start-up lines (info) are not logged.
    assert "Uvicorn running" not in log_path.read_text()


def test_serve_flags_override_settings(tmp_path: Path) -> None:
    port = free_port()
    with live_server(tmp_path, {"PRESENCED_PORT": "1", "PRESENCED_LOG_LEVEL": "error"}, port=port):
        pass  # live_server passes --port, which wins over PRESENCED_PORT
    log = (tmp_path / f"server-{port}.log").read_text()
    assert "Uvicorn running" not in log
    done = presenced(tmp_path, "serve", "--help")
    for flag in ("--host", "--port", "--workers", "--log-level"):
        assert flag in done.stdout
    assert "PRESENCED_WORKERS" in done.stdout


def test_uvicorn_factory(tmp_path: Path) -> None:
    assert presenced(tmp_path, "init").returncode == 0
    port = free_port()
    env = {
        **os.environ,
        "PRESENCED_DATABASE_URL": f"sqlite:///{tmp_path / 'presenced.db'}",
        "HOME": str(tmp_path),
    }
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "presenced.app:from_environment",
                "--port",
                str(port),
            ],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", process, log_path)
        finally:
            process.terminate()
            process.wait(timeout=15)
    bad = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "presenced.app:from_environment"],
        env={**env, "PRESENCED_PORT": "x"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "presenced: PRESENCED_PORT must be an integer, not 'x'" in bad.stderr
    # A database that cannot be reached is found in the app's startup: one line, no traceback.
    unreachable = f"postgresql://presenced@127.0.0.1:{free_port()}/presenced"
    factory_command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "presenced.app:from_environment",
    ]
    bad = subprocess.run(
        [*factory_command, "--port", str(port)],
        env={**env, "PRESENCED_DATABASE_URL": unreachable},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr, bad.stderr
    assert "presenced: cannot connect to the database" in bad.stderr, bad.stderr


INTERRUPTED_IMPORT = """
import sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "sqlalchemy":  # imported by every command, as the console script starts
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
from presenced.cli import main  # what the console script does
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["init", "serve"])
def test_ctrl_c_while_the_command_is_still_importing(tmp_path: Path, command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_IMPORT, command],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_check_asks_redis_and_never_prints_passwords(tmp_path: Path) -> None:
    assert presenced(tmp_path, "init").returncode == 0
    env = {
        "PRESENCED_PORT": str(free_port()),
        "PRESENCED_REDIS_URL": f"redis://:hunter2@127.0.0.1:{free_port()}/0",  # nobody there
    }
    done = presenced(tmp_path, "check", env=env)
    assert done.returncode == 1, done.stdout
    assert "problem: Redis does not answer (PRESENCED_REDIS_URL)" in done.stdout
    assert "Traceback" not in done.stderr and "hunter2" not in done.stdout + done.stderr
    done = presenced(
        tmp_path, "check", env={**env, "PRESENCED_REDIS_URL": "redis://127.0.0.1:6379/0"}
    )
    assert done.returncode == 0, done.stdout
    assert "ok: Redis redis://127.0.0.1:6379/0 answers" in done.stdout
    pg_url = "postgresql://presenced:hunter2@127.0.0.1:1/presenced"
    done = presenced(tmp_path, "check", env={"PRESENCED_DATABASE_URL": pg_url})
    assert "hunter2" not in done.stdout + done.stderr and "presenced:***@" in done.stdout


def test_a_metrics_port_that_cannot_be_served(tmp_path: Path) -> None:
    """``PRESENCED_METRICS_PORT`` is bound in the app's startup: each way that would fail there
    (with a traceback, or a worker restarted forever) is one line before anything starts."""
    port = str(free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        env = {"PRESENCED_PORT": port, "PRESENCED_METRICS_PORT": busy}
        assert_one_line_error(
            presenced(tmp_path, "serve", env=env), f"port {busy} on 127.0.0.1 is already in use"
        )
        done = presenced(tmp_path, "check", env=env)
        assert done.returncode == 1
        assert "(PRESENCED_METRICS_PORT)" in done.stdout
    assert_one_line_error(
        presenced(tmp_path, "serve", env={"PRESENCED_PORT": port, "PRESENCED_METRICS_PORT": port}),
        "metrics_port must differ from port",
    )
    # With --workers N, worker k serves its metrics on PRESENCED_METRICS_PORT + k.
    below = str(int(port) - 1)
    workers = {"PRESENCED_METRICS_PORT": below, "PRESENCED_REDIS_URL": "redis://127.0.0.1:1/0"}
    assert_one_line_error(
        presenced(tmp_path, "serve", "--workers", "2", "--port", port, env=workers),
        f"the metrics ports {below}-{port}, which include the server's port {port}",
    )

"""Schemathesis and a mixed load against one real ``bentoml serve`` on a free loopback port.

The server runs over a private copy of the session test world (conftest) with the anonymous limit
at 300/min (the load's anonymous clients share the loopback address and may meet it: intended
429s; whether they do depends on the machine's speed, so it is reported, not asserted) and the
per-user limit out of the way, so the fuzzer's thousands of calls with one user's token are not
throttled into 429s that would hide the answers under test. ``benchmarks/load.py`` runs with the
production limits, where 429s are certain.

* Fuzzing: the schemathesis CLI, exactly as a user runs it, against ``/docs.json``: every
  operation, every check (``--checks all``), all phases (examples, coverage, fuzzing, stateful),
  seed 42, ``FUZZ_EXAMPLES`` examples per operation, a token for ``thriller-fan`` (the user of the
  documented examples). Settings in ``tests/serving/schemathesis.toml`` (one widened expectation,
  explained there). Goal: 0 failures.
* Load: :func:`benchmarks.load.run_mixed_load` (the benchmark's own driver) with 32 clients for
  ``LOAD_SECONDS`` s (the benchmark runs 60 s): 0 errors other than 429, memory reported and
  bounded, p99 reported (printed; timings are never asserted).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core import PROJECT_ROOT
from core.settings import workspace_paths
from serving.auth import SCOPES, SECRET_ENV
from serving.run import free_port, start_server, stop_server, wait_ready
from tests.serving.conftest import HISTORIES, SECRET, TITLES, World, make_token

FUZZ_USER = "thriller-fan"
FUZZ_SEED = 42
FUZZ_EXAMPLES = 40
LOAD_CLIENTS = 32
LOAD_SECONDS = 20
RSS_GROWTH_LIMIT = 512 * 1024 * 1024
"""Bound on the server's memory growth over the load: no leak of one copy per request or user."""
SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass
class RealServer:
    base: str
    proc: subprocess.Popen
    world: World
    log: Path


@pytest.fixture(scope="module")
def real_server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    root = tmp_path_factory.mktemp("real-server")
    shutil.copytree(world.root / "var", root / "var")
    own = World(root, {"paths": workspace_paths(root / "var")})
    port = free_port()
    overlay = own.overlay(
        "real", host="127.0.0.1", port=port, anonymous_per_minute=300,
        authenticated_per_minute=1_000_000,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    env[SECRET_ENV] = SECRET
    log = root / "server.log"
    settings = own.settings().model_copy(
        update={
            "serving": own.settings().serving.model_copy(update={"host": "127.0.0.1", "port": port})
        }
    )
    proc = start_server(settings, [overlay], env=env, log_file=log)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(proc, base, timeout_s=300)
        except Exception:
            print(log.read_text()[-4000:])
            raise
        yield RealServer(base, proc, own, log)
    finally:
        stop_server(proc)


def _load_driver():
    spec = importlib.util.spec_from_file_location(
        "bench_load", PROJECT_ROOT / "benchmarks" / "load.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look it up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
def test_schemathesis_finds_no_failure(real_server: RealServer, tmp_path: Path) -> None:
    token = make_token(real_server.world, FUZZ_USER, sorted(SCOPES), ttl=60)  # every route
    junit = tmp_path / "junit.xml"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color",
        "--config-file", str(SCHEMATHESIS_CONFIG),
        "run", f"{real_server.base}/docs.json",
        "--checks", "all",
        "--seed", str(FUZZ_SEED),
        "--max-examples", str(FUZZ_EXAMPLES),
        "--workers", "1",  # 2 threads race in CPython 3.11 ast.parse (hypothesis)
        "--header", f"Authorization: Bearer {token}",
        "--report", "junit", "--report-junit-path", str(junit),
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:]
    document = httpx.get(f"{real_server.base}/docs.json").json()
    operations = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    cases = ET.parse(junit).getroot().iter("testcase")
    tested = {case.get("name") for case in cases}
    assert operations <= tested, f"not fuzzed: {sorted(operations - tested)}"
    generated = int(re.search(r"(\d+) generated", out).group(1))  # type: ignore[union-attr]
    print(f"\nschemathesis: {len(operations)} operations, {generated} cases, 0 failures")


@pytest.mark.slow
def test_32_clients_mixed_load_only_intended_429s(real_server: RealServer) -> None:
    load = _load_driver()
    users = [(u, make_token(real_server.world, u, ttl=60)) for u in sorted(HISTORIES)]
    content_ids = [t[0] for t in TITLES]
    load.warm_up(real_server.base, users, content_ids)
    report = load.run_mixed_load(
        real_server.base,
        real_server.proc.pid,
        users,
        content_ids,
        clients=LOAD_CLIENTS,
        seconds=LOAD_SECONDS,
        max_requests=5_000,
    )
    print("\n" + report.table())
    assert report.errors == [], report.errors[:10]
    for role, stats in report.roles.items():
        assert stats.latencies_ms, f"no request of {role} succeeded"
    assert report.rss_after - report.rss_before < RSS_GROWTH_LIMIT
    assert httpx.get(f"{real_server.base}/readyz").status_code == 200

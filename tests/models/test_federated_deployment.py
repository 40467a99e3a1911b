"""End-to-end: a real SuperLink, two SuperNodes and ``flwr run models/federated`` on loopback.

Every process gets free ports and a private ``FLWR_HOME``; the SuperLink connection is written to
``$FLWR_HOME/config.toml`` (Flower 1.42 reads connections there, not from the app's pyproject).
Each SuperNode reads the data file named in its ``--node-config`` (never data in messages).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import psutil
import pytest

from core import PROJECT_ROOT

BIN = Path(sys.executable).parent
APP_DIR = PROJECT_ROOT / "models" / "federated"
DEADLINE_S = 240


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the finally block kills only it
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop the processes this test started and the helpers they spawned (by pid, nothing else).

    The SuperLink and SuperNodes start ``flower-superexec`` / app processes in new sessions, so
    their descendants are collected first and terminated individually.
    """
    family: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            family.extend(psutil.Process(proc.pid).children(recursive=True))
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(family, timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_for_port(port: int, procs: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), _logs(logs)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"SuperLink did not listen on {port}\n" + _logs(logs))


def _logs(folder: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in folder.glob("*.log")
    )


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_S + 60)
def test_flwr_run_on_local_superlink_writes_model_and_epsilon(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    rows = [
        (f"user-{u}", int((u % 3) * 4 + i))
        for u in range(24)
        for i in rng.choice(4, size=3, replace=False)
    ]
    data = tmp_path / "interactions.parquet"
    pl.DataFrame(rows, schema=["user_id", "item_index"], orient="row").write_parquet(data)
    out = tmp_path / "model-out"
    logs = tmp_path / "logs"
    logs.mkdir()
    home = tmp_path / "flwr-home"
    home.mkdir()
    port = _free_port()  # Flower 1.42: one HTTP port serves the Fleet, Control and runtime APIs
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "e2e"\n\n'
        f'[superlink.e2e]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # flower-superexec & co.
    }
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            _start(
                [
                    str(BIN / "flower-superlink"),
                    "--insecure",
                    "--disable-runtime-dependency-installation",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env,
                logs / "superlink.log",
            )
        )
        _wait_for_port(port, procs, logs)
        for part in range(2):
            procs.append(
                _start(
                    [
                        str(BIN / "flower-supernode"),
                        "--insecure",
                        "--superlink",
                        f"127.0.0.1:{port}",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(_free_port()),
                        "--node-config",
                        f"partition-id={part} num-partitions=2 data-path='{data}'",
                    ],
                    env,
                    logs / f"supernode-{part}.log",
                )
            )
        run_config = (
            f"num-items=12 embedding-dim=8 rounds=2 local-epochs=1 batch-size=8 num-clients=2 "
            f"dp=true target-epsilon=1.0 model-out='{out}'"
        )
        submitted = subprocess.run(
            [str(BIN / "flwr"), "run", str(APP_DIR), "e2e", "--run-config", run_config],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr + _logs(logs)
        metrics_file = out / "metrics.json"
        deadline = time.monotonic() + DEADLINE_S
        while not metrics_file.exists() and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), _logs(logs)
            time.sleep(1)
        assert metrics_file.exists(), "no metrics.json before the deadline\n" + _logs(logs)
        metrics = json.loads(metrics_file.read_text())
        assert [r["round"] for r in metrics["history"]] == [1, 2]
        privacy = metrics["privacy"]
        assert 0 < privacy["epsilon"] <= 1.0 and privacy["delta"] == 1e-5
        assert privacy["privacy_unit"].startswith("one user's whole")
        with np.load(out / "weights.npz") as npz:
            assert npz["decoder.weight"].shape == (12, 8)
    finally:
        _stop(procs)

"""Nightly job: a cold run against a no-change rerun, in one process, on the embedded sample.

A rerun with unchanged inputs should re-encode no title, re-import nothing and skip retraining,
so it costs a fraction of the cold run (goal: ratio <= 0.25). Both runs use a fresh temporary
workspace; timings include Dagster's own overhead.

    .venv/bin/python benchmarks/nightly_rerun.py [--config configs/sample.yaml]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from core.settings import load_settings, workspace_paths
from pipelines.run import run_nightly


def overlay(root: Path) -> Path:
    path = root / "paths.yaml"
    path.write_text(yaml.safe_dump({"paths": workspace_paths(root / "var")}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        files = [*(args.config or ["configs/sample.yaml"]), str(overlay(Path(tmp)))]
        settings = load_settings(*files)
        timings = {}
        for name, day in (("cold", "2026-11-27"), ("no-change rerun", "2026-11-28")):
            t0 = time.perf_counter()
            ok = run_nightly(settings, files, partition_key=day, console=Console(quiet=True))
            timings[name] = (time.perf_counter() - t0, ok)
    table = Table(title="nightly job: cold vs no-change rerun")
    for col in ("run", "seconds", "succeeded", "ratio to cold"):
        table.add_column(col)
    cold = timings["cold"][0]
    for name, (secs, ok) in timings.items():
        table.add_row(name, f"{secs:.1f}", str(ok), f"{secs / cold:.3f}")
    console.print(table)


if __name__ == "__main__":
    main()

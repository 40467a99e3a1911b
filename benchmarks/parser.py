"""Local query parser on its query set: accuracy and latency, this tree against a git ref.

The query set is the parser's hand-written test cases (``CASES`` in
``tests/serving/test_local_parser.py``: a query and its full expected intent) plus
:data:`TYPO_CASES` (misspelt genre words and look-alike words that must stay free text). Each tree
(this checkout, and ``--baseline`` exported with ``git archive`` into a temporary folder) is run in
its own child process with that tree first on ``PYTHONPATH``; rounds alternate between the children
so machine noise hits both alike. Reported per tree: import time of ``serving.nlu`` (vocabulary
load and validation, pattern compilation; third-party and shared modules imported before),
exact-intent accuracy on ``CASES``, genre accuracy on the typo set, and per-query latency (median
over rounds of each query's time, then p50/p95 over queries).

    .venv/bin/python benchmarks/parser.py --baseline HEAD~1 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TYPO_CASES: list[tuple[str, list[str]]] = [
    ("thriler", ["Thriller"]),
    ("Thriler movies", ["Thriller"]),
    ("documentry", ["Documentary"]),
    ("documantaries about space", ["Documentary"]),
    ("comdey for tonight", ["Comedy"]),
    ("comedeis", ["Comedy"]),
    ("horrer movies", ["Horror"]),
    ("horor", []),  # five letters: under the six-letter floor of typo matching
    ("romanse", ["Romance"]),
    ("westren", ["Western"]),
    ("fantasey", ["Fantasy"]),
    ("animaton", ["Animation"]),
    ("animted films", ["Animation"]),
    ("adventrue", ["Adventure"]),
    ("musicla", ["Music"]),
    ("thrilers", []),  # two edits from every genre word: stays free text
    ("thrones", []),
    ("western", ["Western"]),
    ("honor", []),
    ("horrible bosses", []),
    ("comedian", []),
]
"""Typo queries and the genres they must yield (look-alikes two edits away yield none)."""

_CHILD = r"""
import json, sys, time
from datetime import date
import importlib
for dep in ("google.genai", "pydantic", "yaml", "rapidfuzz.process", "models.ranking.intent"):
    try:  # third-party and shared modules first: not the parser's own import cost
        importlib.import_module(dep)
    except ImportError:
        pass
t0 = time.perf_counter()
from serving.nlu.local_parser import parse_local
import_ms = (time.perf_counter() - t0) * 1000
spec = json.load(sys.stdin)
today = date.fromisoformat(spec["today"])
for _ in range(spec["warmup"]):
    for q in spec["queries"]:
        parse_local(q["query"], today=today)
out = {"import_ms": import_ms, "ok": [], "us": []}
for q in spec["queries"]:
    started = time.perf_counter()
    for _ in range(spec["repeat"]):
        got = parse_local(q["query"], today=today)
    out["us"].append((time.perf_counter() - started) / spec["repeat"] * 1e6)
    if q["intent"] is not None:
        out["ok"].append(got.model_dump(mode="json") == q["intent"])
    else:
        out["ok"].append(list(got.genres) == q["genres"])
json.dump(out, sys.stdout)
"""


def query_set() -> list[dict]:
    """CASES with their expected intents (as JSON) and the typo cases with their genres."""
    sys.path.insert(0, str(ROOT))
    from models.ranking.intent import QueryIntent
    from tests.serving.test_local_parser import CASES

    cases = [
        {
            "query": q,
            "intent": QueryIntent(**exp, parser="local").model_dump(mode="json"),
            "kind": "cases",
        }
        for q, exp in CASES
    ]
    typos = [{"query": q, "intent": None, "genres": g, "kind": "typos"} for q, g in TYPO_CASES]
    return cases + typos


def export_ref(ref: str, dest: Path) -> Path:
    """The tree of ``ref`` (``git archive``) under ``dest``."""
    archive = dest / "tree.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", ref], cwd=ROOT, stdout=fh, check=True)
    tree = dest / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def run_child(tree: Path, spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"parser child for {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--baseline", help="git ref to compare against (e.g. HEAD~3); none: only this tree"
    )
    ap.add_argument("--rounds", type=int, default=5, help="child runs per tree, alternating")
    ap.add_argument("--repeat", type=int, default=20, help="parses of each query per round")
    args = ap.parse_args()

    queries = query_set()
    spec = {"today": "2026-11-15", "queries": queries, "repeat": args.repeat, "warmup": 2}
    kinds = [q["kind"] for q in queries]
    with tempfile.TemporaryDirectory(prefix="parser-bench-") as tmp:
        trees = {"this tree": ROOT}
        if args.baseline:
            trees = {f"baseline {args.baseline}": export_ref(args.baseline, Path(tmp)), **trees}
        results: dict[str, list[dict]] = {name: [] for name in trees}
        started = time.perf_counter()
        for r in range(args.rounds):
            for name, tree in trees.items():
                results[name].append(run_child(tree, spec))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    table = Table(title=f"local parser on {len(queries)} queries ({args.rounds} rounds)")
    for col in ("tree", "import ms", "CASES exact", "typo set", "p50 µs/query", "p95 µs/query"):
        table.add_column(col, justify="left" if col == "tree" else "right")
    for name, runs in results.items():
        ok = runs[0]["ok"]
        if any(run["ok"] != ok for run in runs):
            raise RuntimeError(f"{name}: the parser is not deterministic")
        per_query = [statistics.median(run["us"][i] for run in runs) for i in range(len(queries))]
        cuts = statistics.quantiles(per_query, n=20)

        def acc(kind: str, ok: list[bool] = ok) -> str:
            hits = [o for o, k in zip(ok, kinds, strict=True) if k == kind]
            return f"{sum(hits)}/{len(hits)}"

        table.add_row(
            name,
            f"{statistics.median(run['import_ms'] for run in runs):.0f}",
            acc("cases"),
            acc("typos"),
            f"{statistics.median(per_query):.0f}",
            f"{cuts[18]:.0f}",
        )
    Console().print(table)
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()

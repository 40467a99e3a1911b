"""The serving benchmark's synthetic world for other benchmarks.

``benchmarks/serving.py`` shares its name with the ``serving`` package, so it cannot be imported
by name; :func:`build_world` loads it by path and calls its ``build_world``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from core.settings import Settings


def build_world(root: Path, titles: int, users: int, seed: int) -> Settings:
    """``build_world`` of benchmarks/serving.py: titles, offers, users and an EASE champion."""
    spec = importlib.util.spec_from_file_location(
        "bench_serving_world", Path(__file__).with_name("serving.py")
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # its dataclasses look it up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.build_world(root, titles, users, seed)

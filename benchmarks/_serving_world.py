"""The serving benchmark's synthetic world for other benchmarks.

``benchmarks/serving.py`` shares its name with the ``serving`` package, so it cannot be imported
by name; :func:`serving_benchmark` loads it by path; :func:`build_world` calls its ``build_world``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from core.settings import Settings


def serving_benchmark() -> ModuleType:
    """benchmarks/serving.py as a module (loaded once)."""
    name = "bench_serving_world"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("serving.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # its dataclasses look it up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def build_world(root: Path, titles: int, users: int, seed: int) -> Settings:
    """``build_world`` of benchmarks/serving.py: titles, offers, users and an EASE champion."""
    return serving_benchmark().build_world(root, titles, users, seed)

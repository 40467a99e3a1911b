"""Dagster code location: `dagster dev -m pipelines.definitions` shows the whole graph.

Everything under :mod:`pipelines.defs` (assets, asset checks, jobs, schedules and sensors defined
at module level) is found by Dagster's ``defs/`` folder loader: :class:`dagster.ComponentTree` of
the ``pipelines.defs`` package, what ``dg.load_from_defs_folder`` builds from a ``[tool.dg]``
project table (``dg.load_defs`` is deprecated), so a new module there needs no registration
here. The resources are bound here because they carry the settings overlays of the run
(:func:`pipelines.defs.resources.resources_for`).
"""

from __future__ import annotations

import warnings

import dagster as dg

import pipelines.defs
from core import PROJECT_ROOT
from pipelines.defs.resources import resources_for


def build_definitions(overlays: str = "") -> dg.Definitions:
    """All assets, checks, jobs, the schedule and the sensor, with settings from ``overlays``."""
    with warnings.catch_warnings():
        # the loader's own internals are marked "preview"; the loader itself is Dagster's
        # documented way to load a defs folder
        warnings.simplefilter("ignore", dg.PreviewWarning)
        loaded = dg.ComponentTree.from_module(pipelines.defs, PROJECT_ROOT).build_defs()
    return dg.Definitions.merge(loaded, dg.Definitions(resources=resources_for(overlays)))


defs = build_definitions()

"""The resources the assets take: the project's validated settings and the two catalogue sources.

``app`` (:class:`MediaGatewayConfig`) gives the settings; ``tmdb`` (:class:`TMDBResource`) and
``justwatch`` (:class:`JustWatchResource`) open the TMDB and JustWatch sources. Each source has a
live implementation (the HTTP clients :class:`~pipelines.lib.tmdb.TMDBClient`,
:class:`~pipelines.lib.justwatch.JustWatchClient`) and a recorded one
(:class:`~pipelines.lib.replay.RecordedTMDBClient`, ``RecordedJustWatchClient``: the files under
``sources.recorded_dir`` read directly, no HTTP). The settings decide, when a run opens the source
(not at import time): ``sources.<tmdb|justwatch>.mode`` is ``recorded`` in ``configs/base.yaml``
and so in the sample, ``live`` when a deployment sets it (TMDB then needs ``TMDB_READ_TOKEN`` or
``TMDB_API_KEY`` in the environment). See :mod:`pipelines.lib.sources` for why the mode stays an
explicit setting instead of following the presence of a key.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import dagster as dg

from core.feedback import configure_state
from core.settings import Settings, load_settings
from pipelines.lib import sources
from pipelines.lib.justwatch import JustWatchSource
from pipelines.lib.tmdb import TMDBSource


class MediaGatewayConfig(dg.ConfigurableResource):
    """Settings = configs/base.yaml + overlays.

    ``overlays`` is a comma-separated list of YAML files; empty means "whatever
    ``MEDIA_GATEWAY_CONFIG`` says when the run starts" (read at run time, not import time).
    """

    overlays: str = ""

    def settings(self) -> Settings:
        files = [p.strip() for p in self.overlays.split(",") if p.strip()]
        settings = load_settings(*files)
        configure_state(settings)  # feedback and erasures from the store the service writes
        return settings


class TMDBResource(dg.ConfigurableResource):
    """The TMDB source of ``app``'s settings: ``with tmdb.open() as client: ...``."""

    app: MediaGatewayConfig

    def open(self) -> AbstractContextManager[TMDBSource]:
        """The recorded or live TMDB source (``sources.tmdb.mode``), closed after the block."""
        return sources.tmdb_client(self.app.settings())


class JustWatchResource(dg.ConfigurableResource):
    """The JustWatch source of ``app``'s settings: ``with justwatch.open() as client: ...``."""

    app: MediaGatewayConfig

    def open(self) -> AbstractContextManager[JustWatchSource]:
        """The recorded or live JustWatch source (``sources.justwatch.mode``)."""
        return sources.justwatch_client(self.app.settings())


def resources_for(overlays: str = "") -> dict[str, dg.ConfigurableResource]:
    """Every resource the definitions need, all reading the settings of ``overlays``."""
    app = MediaGatewayConfig(overlays=overlays)
    return {"app": app, "tmdb": TMDBResource(app=app), "justwatch": JustWatchResource(app=app)}

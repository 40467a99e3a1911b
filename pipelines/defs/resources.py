"""The one resource every asset takes: the project's validated settings."""

from __future__ import annotations

import dagster as dg

from core.feedback import configure_state
from core.settings import Settings, load_settings


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

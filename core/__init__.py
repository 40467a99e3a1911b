"""The ground floor of Media Gateway: settings, constants, lake IO and schemas, the feedback store,
the content vector index and content text. It imports nothing else of the project; everything
else (``pipelines.lib``, ``models``, ``mlops``, ``serving``, the entry points) may import it."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Root of the source checkout (where `configs/` and `data/sample/` live)."""

TMDB_ATTRIBUTION = "This product uses the TMDB API but is not endorsed or certified by TMDB."
JUSTWATCH_ATTRIBUTION = "Streaming availability data powered by JustWatch."

"""Media Gateway: what to watch tonight, across your streaming services."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Root of the source checkout (where `configs/` and `data/sample/` live)."""

TMDB_ATTRIBUTION = "This product uses the TMDB API but is not endorsed or certified by TMDB."
JUSTWATCH_ATTRIBUTION = "Streaming availability data powered by JustWatch."

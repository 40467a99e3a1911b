"""Test-only crash points: SIGKILL this process at a named stage of the nightly run.

The crash-safety tests start a nightly run with ``MEDIA_GATEWAY_TEST_CRASH_AT=<point>`` and check
that the next run repairs everything. Without that variable (every real run) a crash point does
nothing; it never raises, writes or logs. Points: ``import`` (after the first history file of a
run is imported), ``embeddings`` (after the first batch of titles is encoded, before anything is
written), ``training`` (right after the challenger is registered in MLflow, before its tags).
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "MEDIA_GATEWAY_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL the current process when ``$MEDIA_GATEWAY_TEST_CRASH_AT`` equals ``name``."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

"""Media Gateway's entry points: the ``media-gateway`` CLI and the notebook helpers (the top layer)."""

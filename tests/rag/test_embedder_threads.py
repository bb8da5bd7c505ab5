"""The embedder from several threads at once, as a server uses it (questions embedded while an ingest job embeds
chunks): no error, and the same vectors as one thread gets."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_concurrent_embedding_is_safe_and_gives_the_same_vectors(embedder):
    texts = ["Where is my parcel?", "Gift wrapping costs $4.50 per item and comes with a card. " * 6, "退货政策"] * 60
    expected = embedder.embed(texts)
    results: list[np.ndarray] = []
    errors: list[str] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(embedder.embed(texts))
        except Exception as exc:  # the failure this test is about
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 12
    assert all(np.abs(r - expected).max() < 1e-5 for r in results)

"""The index half of a knowledge base: one vector index file and one lexical index file per generation,

    index-<gen>.faiss      the vector index of generation <gen> (named in the manifest)
    bm25-<gen>.npz         the lexical (BM25) index of the same generation

written and fsynced under the new generation's name *before* the manifest naming it commits, and deleted
only once a newer generation has committed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rag.core.errors import KnowledgeBaseCorrupt
from rag.store.lexical_index import BM25Index, LexicalIndex
from rag.store.vector_index import FaissVectorIndex, IndexType, VectorIndex

_REINGEST = "re-ingest into a new --kb directory"


def index_file(folder: Path, generation: int) -> Path:
    return folder / f"index-{generation}.faiss"


def lexical_file(folder: Path, generation: int) -> Path:
    return folder / f"bm25-{generation}.npz"


def write_generation(folder: Path, generation: int, vectors: FaissVectorIndex, lexical: LexicalIndex) -> None:
    """Write both index files of `generation`, each durable on disk before this returns."""
    _write_durably(index_file(folder, generation), vectors.save)
    _write_durably(lexical_file(folder, generation), lexical.save)


def load_generation(
    folder: Path, generation: int, kind: IndexType, dimension: int, *, ef_search: int = 128, nprobe: int = 16
) -> tuple[VectorIndex, LexicalIndex]:
    """Both indexes of a committed generation; KnowledgeBaseCorrupt if a file is missing or disagrees."""
    vector_file, bm25_file = index_file(folder, generation), lexical_file(folder, generation)
    for file in (vector_file, bm25_file):
        if not file.is_file():
            raise KnowledgeBaseCorrupt(f"{file} is missing - {_REINGEST}")
    vectors = FaissVectorIndex.load(vector_file, kind, ef_search=ef_search, nprobe=nprobe)
    if vectors.dimension != dimension:
        raise KnowledgeBaseCorrupt(f"{vector_file} has dimension {vectors.dimension}, manifest says {dimension}")
    return vectors, BM25Index.load(bm25_file)


def remove_other_generations(folder: Path, keep: int) -> None:
    """Delete index files of every generation but `keep` (older ones, and unfinished newer ones)."""
    current = {index_file(folder, keep).name, lexical_file(folder, keep).name}
    for file in [*folder.glob("index-*.faiss*"), *folder.glob("bm25-*.npz*")]:
        if file.name not in current:
            try:
                file.unlink()
            except OSError:
                pass


def _write_durably(final: Path, save: Callable[[Path], None]) -> None:
    tmp = final.with_name(final.name + ".tmp")
    save(tmp)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

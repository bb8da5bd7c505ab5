"""Errors of turning files into documents. Each is reported with the file's path, and that file is skipped
(its previous version, if any, stays in the knowledge base).

    RagError (rag.core.errors)
    └── LoaderError                 one file could not be turned into documents
        ├── UnsupportedFileType     the extension has no loader
        ├── EmptyDocumentError      the file holds no text
        └── FileTooLarge            the file is over a RAG_INGEST_* limit (unpacked size, elements)
            ├── LoadTimeout         loading it took longer than RAG_INGEST_FILE_TIMEOUT
            └── LoadOutOfMemory     loading it needed more than RAG_INGEST_FILE_MEMORY_MB

Every `FileTooLarge` names the setting to raise, so an operator can tell a hostile upload from a big
legitimate file and act on the second.
"""

from __future__ import annotations

from pathlib import Path

from rag.core.errors import RagError


class LoaderError(RagError):
    def __init__(self, path: Path | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedFileType(LoaderError):
    pass


class EmptyDocumentError(LoaderError):
    pass


class FileTooLarge(LoaderError):
    pass


class LoadTimeout(FileTooLarge):
    pass


class LoadOutOfMemory(FileTooLarge):
    pass

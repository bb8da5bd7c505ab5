"""Text analysis shared by ingest, retrieval, generation and chat (pure functions, no I/O but model files):

language     which language a text is in; the one definition of a Chinese character
lexical      content terms, lexical coverage, BM25 tokens (Snowball stemming, jieba)
sentences    paragraph and sentence boundaries
similarity   word-set similarity (Jaccard)
tokenizer    token counting with tiktoken
"""

"""Models behind one small interface: where weights come from (:mod:`.source`), and backends that
generate from them in-process (:mod:`.hf_backend`) or through an OpenAI-compatible server
(:mod:`.openai_backend`). Used by AI feedback (``curate/feedback``) and shared with ``train/``."""

"""Language-model backends: the embedded default model, chat generation and token log-likelihoods.

Knows no roles (policy, proposer, scorer) and no search: those are the callers' business.
"""

from retrace.llm.embedded import build_embedded_model, embedded_model_dir, resolve_model_path

__all__ = ["build_embedded_model", "embedded_model_dir", "resolve_model_path"]

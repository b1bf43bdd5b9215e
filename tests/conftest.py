"""Shared fixtures: nothing here reaches the network; models are built locally."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from retrace_testing import build_tiny_llama  # noqa: E402


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """The shared tiny random Llama, embeddings sharpened so that score differences show."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny", sharpen=40)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests need CUDA: skipped, with the reason, on machines without it."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

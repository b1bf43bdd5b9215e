"""The realised global batch is logged, a world size that changes it is named, and a self-contradicting recipe fails."""

from __future__ import annotations

import logging

from retrace.training import RetraceTrainingArguments, check_global_batch


def _args(tmp_path, **keys):
    return RetraceTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **keys)


def test_realised_batch_matches_the_recipe_silently(tmp_path, caplog):
    args = _args(tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=4, global_batch_sequences=8,
                 global_batch_tokens=8 * 128)
    with caplog.at_level(logging.INFO, logger="retrace.training"):
        assert check_global_batch(args, max_length=128) == 8
    assert "global batch: 8 sequences x 128 tokens = 1024 tokens" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_different_world_size_is_warned_with_the_fix(tmp_path, caplog):
    # sized for 64 sequences (8 GPUs x 8 accumulation); here one process: 8 sequences
    args = _args(tmp_path, per_device_train_batch_size=1, gradient_accumulation_steps=8, global_batch_sequences=64)
    with caplog.at_level(logging.INFO, logger="retrace.training"):
        assert check_global_batch(args, max_length=65536) == 8
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning and "sized for 64" in warning[0] and "gradient_accumulation_steps to 64" in warning[0]


def test_tokens_intent_alone_is_checked_too(tmp_path, caplog):
    args = _args(tmp_path, per_device_train_batch_size=2, global_batch_tokens=4 * 256)
    with caplog.at_level(logging.WARNING, logger="retrace.training"):
        check_global_batch(args, max_length=256)
    assert "sized for 1024 tokens (= 4 sequences of 256)" in caplog.text
    assert "gradient_accumulation_steps to 2" in caplog.text


def test_an_overridden_max_length_is_named_against_the_tokens_intent(tmp_path, caplog):
    """Sequences still match, tokens do not: only the tokens intent is warned about."""
    args = _args(tmp_path, per_device_train_batch_size=2, global_batch_sequences=2, global_batch_tokens=1024)
    with caplog.at_level(logging.WARNING, logger="retrace.training"):
        assert check_global_batch(args, max_length=32) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1024 tokens (= 32 sequences of 32)" in warnings[0]


def test_an_intent_no_accumulation_can_meet_is_said_so(tmp_path, caplog):
    """3 sequences per accumulation step can never make 64: the warning says what to change instead."""
    args = _args(tmp_path, per_device_train_batch_size=3, global_batch_sequences=64)
    with caplog.at_level(logging.WARNING, logger="retrace.training"):
        check_global_batch(args, max_length=128)
    assert "no whole gradient_accumulation_steps gives it with 1 processes x 3 per device" in caplog.text
    assert "set gradient_accumulation_steps to" not in caplog.text

"""The HF Trainer with the two numbers pretraining runs are watched by: tokens/s now, and the realised batch.

What the stock Trainer (transformers 5.x, `include_num_input_tokens_seen`) logs at every logging step:
loss, grad_norm, learning_rate, epoch, `num_input_tokens_seen`, and `train_tokens_per_second`, which is
the average since this session started (start-up, compilation and checkpoint saves included), so it
hides a slowdown late in a run. `RetraceTrainer.log` adds `tokens_per_second` over the window since the
previous log, and, once, the realised global batch in sequences and tokens, so that both reach every
`report_to` backend (wandb included) next to the loss.

Why the HF Trainer and not TRL's SFTTrainer: the data here is already tokenised, masked and packed
(SFTTrainer's value is chat templating and its own packing, which would undo the per-segment mask and
the document-aware position ids); what remains is the plain causal-LM loop, DeepSpeed and resume.
"""

from __future__ import annotations

import logging
import time

from transformers import Trainer

logger = logging.getLogger("retrace.training")


class RetraceTrainer(Trainer):
    """`Trainer` whose logs also carry windowed tokens/s and the realised global batch."""

    def __init__(self, *args, max_length: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_length = max_length
        self._last_log: tuple[float, int] | None = None
        self._batch_logged = False

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        now, seen = time.time(), self.state.num_input_tokens_seen  # the Trainer's start_time is time.time()
        if "loss" in logs and self.args.include_num_input_tokens_seen != "no":
            if self._last_log is None and start_time is not None:
                self._last_log = (start_time, self._initial_num_input_tokens_seen)
            if self._last_log is not None and now > self._last_log[0]:
                logs["tokens_per_second"] = round((seen - self._last_log[1]) / (now - self._last_log[0]), 3)
            self._last_log = (now, seen)
        if "loss" in logs and not self._batch_logged:
            sequences = realised_global_batch(self.args)
            logs["global_batch_sequences"] = sequences
            logs["global_batch_tokens"] = sequences * self.max_length
            self._batch_logged = True
        super().log(logs, start_time)


def realised_global_batch(args) -> int:
    """Sequences per optimizer step across all processes."""
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size


def check_global_batch(args, max_length: int) -> int:
    """Log the realised global batch; warn when it differs from the recipe's intent.

    The recipe states the intent as `global_batch_sequences` and/or `global_batch_tokens`; each one given
    is compared with the realised batch, and a warning names the gradient_accumulation_steps that would
    meet it at this world size (a changed world size or an overridden max_length are the usual causes),
    or says that no whole number does. Logged by the processes that log (`should_log`), so once per run.
    """
    realised = realised_global_batch(args)
    if not args.should_log:
        return realised
    logger.info("global batch: %d sequences x %d tokens = %d tokens (%d processes x %d per device x %d "
                "accumulation)", realised, max_length, realised * max_length, args.world_size,
                args.per_device_train_batch_size, args.gradient_accumulation_steps)
    intents = []
    if args.global_batch_sequences:
        intents.append((args.global_batch_sequences, f"{args.global_batch_sequences} sequences"))
    if args.global_batch_tokens:
        intents.append((args.global_batch_tokens / max_length,
                        f"{args.global_batch_tokens} tokens (= {args.global_batch_tokens / max_length:g} sequences "
                        f"of {max_length})"))
    for sequences, stated in intents:
        if sequences != realised:
            logger.warning("global batch is %d sequences (%d tokens) but the recipe was sized for %s: %s",
                           realised, realised * max_length, stated, _accumulation_fix(args, sequences))
    return realised


def _accumulation_fix(args, sequences: float) -> str:
    """The gradient_accumulation_steps that gives `sequences` per step here, or why none does."""
    per_step = args.per_device_train_batch_size * args.world_size
    steps = sequences / per_step
    if steps >= 1 and steps == int(steps):
        return f"with {args.world_size} processes set gradient_accumulation_steps to {int(steps)}"
    return (f"no whole gradient_accumulation_steps gives it with {args.world_size} processes x "
            f"{args.per_device_train_batch_size} per device ({per_step} sequences per accumulation step); "
            "change per_device_train_batch_size or the number of processes")

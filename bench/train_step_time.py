"""Time per optimizer step: train.py's path (RetraceTrainer, packed data, document-aware positions) vs a plain
HF Trainer on the same model and the same packed sequences.

Three set-ups on the embedded SmolLM2-135M-Instruct (CPU, fp32, sdpa), the packs built once by
`build_packed_dataset` from documents made of the running Python's standard library:
  plain     transformers.Trainer + default_data_collator on input_ids/labels (HF's usual packing, attention
            across documents)
  retrace   RetraceTrainer + PackedCollator without document separation: our trainer overhead alone
  retrace+  RetraceTrainer + PackedCollator with position ids restarting per document (what train.py does):
            sdpa then gets a block-diagonal mask, which is extra attention work on CPU
The set-ups run in interleaved rounds (so machine load drifts hit all of them alike); the median step
time of each is reported with the ratio to plain (goal for `retrace`: at most 1.05).

    python bench/train_step_time.py [--steps 6] [--rounds 2] [--max_length 256] [--model PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_packing import stdlib_documents  # noqa: E402

from retrace.atomic import write_jsonl  # noqa: E402
from retrace.llm import embedded_model_dir  # noqa: E402
from retrace.training import (  # noqa: E402
    DataArguments,
    ModelArguments,
    PackedCollator,
    RetraceTrainer,
    RetraceTrainingArguments,
)
from retrace.training.dataset import build_packed_dataset  # noqa: E402
from retrace.training.model import load_model, load_tokenizer  # noqa: E402


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step (from the end of the previous one)."""

    def __init__(self):
        self.times: list[float] = []
        self._last = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self._last is None:
            self._last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.times.append(now - self._last)
        self._last = now


def _time(kind: str, model_args: ModelArguments, dataset, tokenizer, args: argparse.Namespace, out: Path) -> list[float]:
    torch.manual_seed(0)
    model = load_model(model_args, pad_token_id=tokenizer.pad_token_id)
    model.config.use_cache = False
    common = {"output_dir": str(out / kind), "use_cpu": True, "max_steps": args.steps,
              "per_device_train_batch_size": args.batch, "learning_rate": 1e-4, "save_strategy": "no",
              "report_to": "none", "logging_steps": 1, "disable_tqdm": True, "seed": 0,
              "dataloader_num_workers": 0, "include_num_input_tokens_seen": True}
    timer = StepTimer()
    if kind == "plain":
        data = dataset.remove_columns([c for c in dataset.column_names if c not in ("input_ids", "labels")])
        trainer = Trainer(model=model, args=TrainingArguments(**common), train_dataset=data,
                          data_collator=default_data_collator, callbacks=[timer])
    else:
        data = dataset if kind == "retrace+" else dataset.remove_columns(["position_ids"])
        trainer = RetraceTrainer(model=model, args=RetraceTrainingArguments(**common), train_dataset=data,
                                 data_collator=PackedCollator(), processing_class=tokenizer,
                                 max_length=args.max_length, callbacks=[timer])
    trainer.train()
    return timer.times[1:]  # the first step pays for warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(embedded_model_dir()))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--max_length", type=int, default=256)
    args = parser.parse_args()
    model_args = ModelArguments(model_name_or_path=args.model, dtype="float32", attn_implementation="sdpa")
    tokenizer = load_tokenizer(model_args)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_jsonl(out / "documents" / "stdlib.jsonl", [d.to_dict() for d in stdlib_documents()])
        dataset, stats = build_packed_dataset(DataArguments(documents=[str(out / "documents")],
                                                            max_length=args.max_length), tokenizer, out / "packs")
        print(f"model {args.model}; {stats['sequences']} packs of {args.max_length} tokens; batch {args.batch}; "
              f"{args.steps} steps x {args.rounds} rounds per set-up (first step of each run dropped)")
        times: dict[str, list[float]] = {"plain": [], "retrace": [], "retrace+": []}
        for round_index in range(args.rounds):
            for kind in (list(times) if round_index % 2 == 0 else list(reversed(times))):
                times[kind] += _time(kind, model_args, dataset, tokenizer, args, out)
    plain = statistics.median(times["plain"])
    print(f"{'set-up':>9} {'median s/step':>14} {'ratio to plain':>15}")
    for kind, values in times.items():
        print(f"{kind:>9} {statistics.median(values):>14.3f} {statistics.median(values) / plain:>15.3f}")
    ratio = statistics.median(times["retrace"]) / plain
    print(f"train.py trainer overhead: {ratio:.3f}x plain ({'within' if ratio <= 1.05 else 'over'} the 1.05x goal); "
          f"document separation on sdpa/CPU: {statistics.median(times['retrace+']) / plain:.3f}x")


if __name__ == "__main__":
    main()

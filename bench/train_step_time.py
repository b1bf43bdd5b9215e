"""Time per optimizer step: train.py's path (RetraceTrainer, packed data, document-aware positions) vs a plain
HF Trainer on the same model and the same packed sequences.

Three set-ups on one model (default: a random 4-layer hidden-256 Llama with the embedded tokenizer, so a
step takes a fraction of a second and fixed per-step overheads show the most; `--model smollm2` for the
embedded SmolLM2-135M-Instruct), CPU, fp32, sdpa, the packs built once by
`build_packed_dataset` from documents made of the running Python's standard library:
  plain     transformers.Trainer + default_data_collator on input_ids/labels (HF's usual packing, attention
            across documents)
  retrace   RetraceTrainer + PackedCollator without document separation: our trainer overhead alone
  retrace+  RetraceTrainer + PackedCollator with position ids restarting per document (what train.py does):
            sdpa then gets a block-diagonal mask, which is extra attention work on CPU
The set-ups run in interleaved rounds; within a round each run's median step time is divided by plain's
in the same round, and the median of those ratios over rounds is reported (goal for `retrace`: at most
1.05), with the fastest step of each: on a shared machine other people's load moves wall time several-fold
between rounds, and this keeps such drift out of the ratio.

    python bench/train_step_time.py [--steps 12] [--rounds 3] [--max_length 512] [--model small|smollm2|PATH]
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
    """Wall and CPU time of each optimizer step (from the end of the previous one).

    CPU time (this process, all its threads) is what the comparison rests on: on a shared machine the wall
    time of the same step varies several-fold with other people's load, the CPU it burns much less.
    """

    def __init__(self):
        self.times: list[tuple[float, float]] = []
        self._last = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self._last is None:
            self._last = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        now = (time.perf_counter(), time.process_time())
        self.times.append((now[0] - self._last[0], now[1] - self._last[1]))
        self._last = now


def build_small_llama(path: Path, tokenizer) -> Path:
    """A random 4-layer, hidden-256 Llama with the embedded tokenizer: steps of a fraction of a second."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _time(kind: str, model_args: ModelArguments, dataset, tokenizer, args: argparse.Namespace,
          out: Path) -> list[tuple[float, float]]:
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
    parser.add_argument("--model", default="small",
                        help="a checkpoint path, or 'small' (a random 4-layer Llama) or 'smollm2' (the embedded model)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--max_length", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        embedded = ModelArguments(model_name_or_path=str(embedded_model_dir()))
        if args.model == "small":
            args.model = str(build_small_llama(out / "small-llama", load_tokenizer(embedded)))
        elif args.model == "smollm2":
            args.model = embedded.model_name_or_path
        model_args = ModelArguments(model_name_or_path=args.model, dtype="float32", attn_implementation="sdpa")
        tokenizer = load_tokenizer(model_args)
        write_jsonl(out / "documents" / "stdlib.jsonl", [d.to_dict() for d in stdlib_documents()])
        dataset, stats = build_packed_dataset(DataArguments(documents=[str(out / "documents")],
                                                            max_length=args.max_length), tokenizer, out / "packs")
        print(f"model {args.model}; {stats['sequences']} packs of {args.max_length} tokens; batch {args.batch}; "
              f"{args.steps} steps x {args.rounds} rounds per set-up (first step of each run dropped)")
        runs: dict[str, list[list[tuple[float, float]]]] = {"plain": [], "retrace": [], "retrace+": []}
        for round_index in range(args.rounds):
            for kind in (list(runs) if round_index % 2 == 0 else list(reversed(runs))):
                runs[kind].append(_time(kind, model_args, dataset, tokenizer, args, out))
    report(runs)


def report(runs: dict[str, list[list[tuple[float, float]]]]) -> None:
    """Per set-up: the fastest step (least disturbed by other load) and, per round, the median step, whose
    ratio to plain's in the same round is taken; the median over rounds of those ratios is the figure."""
    def run_median(run, which):
        return statistics.median(t[which] for t in run)

    print(f"{'set-up':>9} {'min wall s':>11} {'min CPU s':>10} {'wall ratio':>11} {'CPU ratio':>10}  per-round wall ratios")
    figures = {}
    for kind, kind_runs in runs.items():
        wall = [run_median(r, 0) / run_median(p, 0) for r, p in zip(kind_runs, runs["plain"])]
        cpu = [run_median(r, 1) / run_median(p, 1) for r, p in zip(kind_runs, runs["plain"])]
        figures[kind] = (statistics.median(wall), statistics.median(cpu))
        print(f"{kind:>9} {min(t[0] for r in kind_runs for t in r):>11.3f} {min(t[1] for r in kind_runs for t in r):>10.3f} "
              f"{figures[kind][0]:>11.3f} {figures[kind][1]:>10.3f}  {' '.join(f'{x:.3f}' for x in wall)}")
    ratio = figures["retrace"][0]
    print(f"train.py trainer vs plain Trainer: {ratio:.3f}x wall, {figures['retrace'][1]:.3f}x CPU per step "
          f"({'within' if ratio <= 1.05 else 'over'} the 1.05x goal); with document separation (sdpa, CPU): "
          f"{figures['retrace+'][0]:.3f}x wall, {figures['retrace+'][1]:.3f}x CPU")


if __name__ == "__main__":
    main()

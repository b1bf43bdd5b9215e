"""Cost of the refine stage's scorer: duplicated work and throughput against a bare forward pass.

    python bench/refine_scoring.py [--sources python:concurrent] [--model PATH] [--context 256] [--target 96]

Trajectories: the structural policy on `--sources` (standard-library packages by default), built here in
memory. Refinement: the structural proposer, 3 iterations x 2 candidates, the embedded SmolLM2-135M as
scorer (the `hf` engine, `HFEngine`) on CPU (float32), prefix cut to `--context` tokens, payload to
`--target` tokens (`--context 0`: the scorer's window), Thinks to `--think_chars` characters: small enough
for ~1-2 minutes on a 2-core CPU. Every Think of a writing sub-agent is searched (before its Reads, before
its Write), the first `--max_steps` per repository.

Reported:
1. tokens forwarded per unique token. "Unique" = the tokens of the distinct texts that had to be scored:
   each step's prefix window once, plus each distinct row (Think block + what follows it up to the payload
   + payload) once.
   Anything above 1.0 would be work done twice (a prefix forwarded per candidate, an incumbent re-scored
   every iteration). Goal: <= 1.15. Also shown: what a scorer without prefix reuse would forward (every
   row with its own copy of the prefix), i.e. the saving.
2. throughput: scorer tokens/s (tokens forwarded / seconds inside the scorer, tokenisation, cache copies
   and log-softmax included) over the tokens/s of a bare `model(input_ids)` forward of the same token
   sequences in the same batch shapes (the prefix alone, then the rows with no cache: the bare pass does
   not even attend to the prefix, so it is the cheaper one). Goal: >= 0.8. Both timed back to back;
   other work on the machine makes single runs noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import retrace  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def make_trajectories(sources: list[str]):
    from retrace.agents import SimulationOptions, StructuralPolicy, simulate_repositories
    from retrace.repo import IngestStats
    from retrace.repo.parallel import analyze_in_workers
    from retrace.repo.sources import IngestArguments, ingest_sources

    snapshots = ingest_sources(sources, IngestArguments(sources=sources, heldout_sources=[]), IngestStats())
    graphs = analyze_in_workers(snapshots, 1)
    return simulate_repositories(list(zip(snapshots, graphs)), StructuralPolicy(), SimulationOptions())


class RecordingStepScorer:
    """Wraps a StepScorer (its `scorer` an `HFEngine`); after each of its calls, times a bare forward of the same
    token sequences.

    Interleaving the two keeps them under the same load when other work shares the machine.
    """

    def __init__(self, inner):
        self.inner = inner
        self.no_reuse_tokens = 0
        self.bare_seconds = 0.0
        self.bare_tokens = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def begin(self, *args, **kwargs):
        step = self.inner.begin(*args, **kwargs)
        if step is not None:
            self._bare([list(step.state.ids)])
        return step

    def score(self, step, thinks):
        scores = self.inner.score(step, thinks)
        rows = [self.inner.think_ids(t) + step.between_ids + step.target_ids for t in thinks]
        self.no_reuse_tokens += sum(len(step.state.ids) + len(r) for r in rows)
        size = self.inner.scorer.batch_size
        ordered = sorted(rows, key=len, reverse=True)
        for i in range(0, len(ordered), size):
            self._bare(ordered[i:i + size])
        return scores

    def _bare(self, batch: list[list[int]]) -> None:
        """`model(input_ids)` on the rows, right-padded, no cache, all logits: what a naive scorer runs."""
        import torch

        model = self.inner.scorer.model
        width = max(len(r) for r in batch)
        ids = torch.full((len(batch), width), self.inner.scorer.pad_id, dtype=torch.long)
        for i, row in enumerate(batch):
            ids[i, :len(row)] = torch.tensor(row)
        with torch.inference_mode():
            start = time.perf_counter()
            model(input_ids=ids.to(model.device))
            self.bare_seconds += time.perf_counter() - start
        self.bare_tokens += sum(len(r) for r in batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", nargs="+", default=["python:concurrent"])
    parser.add_argument("--model", default="~/.cache/retrace/models/SmolLM2-135M-Instruct")
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--target", type=int, default=96)
    parser.add_argument("--think_chars", type=int, default=1600)
    parser.add_argument("--max_steps", type=int, default=3, help="searched Thinks per repository (0: all)")
    args = parser.parse_args()

    import torch

    from retrace.refine import RefineArguments, build_proposer, build_step_scorer, refine_trajectories

    torch.manual_seed(0)
    trajectories = make_trajectories(args.sources)
    recipe = RefineArguments(refine=True, scorer_model=args.model, refine_max_context_tokens=args.context,
                             refine_max_target_tokens=args.target, refine_max_think_chars=args.think_chars,
                             refine_max_steps_per_repo=args.max_steps)
    scorer = RecordingStepScorer(build_step_scorer(recipe))
    _, stats = refine_trajectories(trajectories, recipe, build_proposer(recipe), scorer)
    summary = stats.summary
    print(f"steps {summary.steps}, candidates scored {summary.scored}, accepted {summary.accepted}, "
          f"leaks {sum(summary.leaks.values())}, scorer {stats.scoring_seconds:.1f}s")
    print("payload NLL per iteration:", " ".join(f"{x:.3f}" for x in summary.nll),
          f"(no Think: {summary.baseline_nll:.3f})")
    print("Think tokens per iteration:", " ".join(f"{x:.0f}" for x in summary.think_tokens))
    print(f"tokens forwarded {stats.tokens_forwarded}, unique {stats.unique_tokens}: "
          f"forwarded/unique = {stats.forwarded_per_unique:.3f} (goal <= 1.15); without prefix reuse "
          f"{scorer.no_reuse_tokens} ({scorer.no_reuse_tokens / stats.tokens_forwarded:.2f}x)")
    assert scorer.bare_tokens == stats.tokens_forwarded, (scorer.bare_tokens, stats.tokens_forwarded)
    scorer_seconds = stats.scoring_seconds
    scorer_rate = stats.tokens_forwarded / scorer_seconds
    bare_rate = scorer.bare_tokens / scorer.bare_seconds
    print(f"scorer {scorer_rate:.0f} tokens/s, bare forward {bare_rate:.0f} tokens/s: "
          f"throughput ratio = {scorer_rate / bare_rate:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()

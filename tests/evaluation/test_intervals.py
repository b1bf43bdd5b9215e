"""Interval arithmetic against known cases: the bootstrap of a constant, a large Bernoulli sample against the
normal approximation, token-weighted NLL over files, paired differences, pass@k, seeds; and the intervals
as a reader sees them in results.md."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from retrace.evaluation.heldout import HELDOUT_NLL, context_metrics
from retrace.evaluation.humaneval.task import HUMANEVAL, HumanEvalOptions, problem_pass_at_k
from retrace.evaluation.intervals import (
    Resampling,
    bootstrap_intervals,
    combine_seeds,
    difference_intervals,
    differences_from_base,
    draw_indices,
    interval_entry,
    unit_sample,
)
from retrace.evaluation.report import write_reports
from retrace.evaluation.ruler.task import RULER, RulerOptions, aggregate

MEAN = Resampling(unit=lambda r: r["id"], metrics=lambda units, options: {
    "mean": float(np.mean([r["x"] for unit in units for r in unit]))})


def values_sample(values, ids=None):
    ids = range(len(values)) if ids is None else ids
    return unit_sample([{"id": i, "x": float(v)} for i, v in zip(ids, values)], MEAN)


def test_the_bootstrap_of_a_constant_has_zero_width():
    interval = bootstrap_intervals(values_sample([2.5] * 50), 500, seed=0)["mean"]
    assert (interval.estimate, interval.low, interval.high) == (2.5, 2.5, 2.5)


def test_a_large_bernoulli_mean_matches_the_normal_approximation():
    successes = [1] * 600 + [0] * 1400   # p = 0.3 exactly, n = 2000
    random.Random(0).shuffle(successes)
    interval = bootstrap_intervals(values_sample(successes), 2000, seed=1)["mean"]
    half = 1.96 * math.sqrt(0.3 * 0.7 / 2000)   # 0.0201
    assert interval.estimate == pytest.approx(0.3)
    # Tolerance 0.003 (15% of the half-width): the percentile bootstrap's Monte Carlo error at 2000
    # resamples is about 0.001, and the binomial's skew at p=0.3, n=2000 is negligible.
    assert interval.low == pytest.approx(0.3 - half, abs=0.003)
    assert interval.high == pytest.approx(0.3 + half, abs=0.003)


def heldout_rows(order_seed: int | None = None) -> list[dict]:
    """Two contexts of 12 files with very different lengths (a token-weighted mean is not a mean of files)."""
    rng = random.Random(5)
    rows = []
    for i in range(12):
        tokens = rng.choice([5, 40, 400])
        for context, per_token in (("trajectory", 1.0 + rng.random()), ("raw", 1.5 + rng.random())):
            rows.append({"repo": f"r{i % 3}", "path": f"f{i}.py", "context": context, "n_tokens": tokens,
                         "nll_sum": per_token * tokens, "n_bytes": 3 * tokens})
    if order_seed is not None:
        random.Random(order_seed).shuffle(rows)
    return rows


def test_token_weighted_nll_bootstrap_reproduces_the_estimate_and_ignores_file_order():
    rows = heldout_rows()
    _, metrics = context_metrics(rows, ["trajectory", "raw"])
    traj = [r for r in rows if r["context"] == "trajectory"]
    assert metrics["trajectory/nll"] == pytest.approx(sum(r["nll_sum"] for r in traj) / sum(r["n_tokens"] for r in traj))
    assert metrics["trajectory/nll"] != pytest.approx(np.mean([r["nll_sum"] / r["n_tokens"] for r in traj]))
    sample = unit_sample(rows, HELDOUT_NLL.resampling)
    assert len(sample.ids) == 12 and all(len(unit) == 2 for unit in sample.units)   # a file's contexts together
    found = bootstrap_intervals(sample, 400, seed=3)
    for name, value in metrics.items():
        assert found[name].estimate == pytest.approx(value, rel=1e-12)
        assert found[name].low <= value <= found[name].high
    assert found["raw/nll"].high > found["raw/nll"].low   # files differ, so the interval has width
    shuffled = bootstrap_intervals(unit_sample(heldout_rows(order_seed=9), HELDOUT_NLL.resampling), 400, seed=3)
    assert sorted(shuffled) == sorted(found)
    assert [b for k in sorted(found) for b in shuffled[k].bounds] == pytest.approx(
        [b for k in sorted(found) for b in found[k].bounds], rel=1e-12)


def test_a_paired_difference_of_identical_models_is_exactly_zero():
    rows = heldout_rows()
    difference = difference_intervals(unit_sample(rows, HELDOUT_NLL.resampling),
                                      unit_sample(heldout_rows(order_seed=2), HELDOUT_NLL.resampling), 300, seed=0)
    for interval in difference.values():
        assert (interval.estimate, interval.low, interval.high, interval.paired) == (0.0, 0.0, 0.0, True)
        assert not interval.excludes_zero


def test_a_shift_of_every_unit_gives_a_difference_around_the_shift():
    rng = random.Random(1)
    base = [rng.gauss(0, 1) for _ in range(200)]
    shift = 0.05   # far below the spread between units: only pairing can see it
    paired = difference_intervals(values_sample(base), values_sample([x + shift for x in base]), 500, seed=0)["mean"]
    assert paired.paired and paired.estimate == pytest.approx(shift)
    assert paired.low == pytest.approx(shift, abs=1e-9) and paired.high == pytest.approx(shift, abs=1e-9)
    assert paired.excludes_zero
    other_units = values_sample([x + shift for x in base], ids=range(1000, 1200))
    unpaired = difference_intervals(values_sample(base), other_units, 500, seed=0)["mean"]
    assert not unpaired.paired and unpaired.low < 0 < shift < unpaired.high   # unpaired: too wide to tell


def test_intervals_are_deterministic_given_the_seed():
    sample = values_sample(random.Random(4).choices([0, 1], k=100))
    first, again = bootstrap_intervals(sample, 300, seed=11), bootstrap_intervals(sample, 300, seed=11)
    other = bootstrap_intervals(sample, 300, seed=12)
    assert first == again and first != other


def test_strata_keep_their_size_in_every_resample():
    strata = ["a"] * 3 + ["b"] * 7
    drawn = draw_indices(strata, 200, np.random.default_rng(0))
    assert ((drawn < 3).sum(axis=1) == 3).all() and ((drawn >= 3).sum(axis=1) == 7).all()
    records = [{"task": t, "length": n, "index": i, "score": float(i % 2), "prompt_tokens": 1, "total_tokens": 2}
               for t in ("niah_single_1", "vt") for n in (128, 256) for i in range(4)]
    options = RulerOptions(ruler_tasks=["niah_single_1", "vt"], ruler_lengths=[128, 256])
    sample = unit_sample(records, RULER.resampling, options)
    assert len(set(sample.strata)) == 4
    assert sample.statistic(sample.units) == aggregate(records, options.ruler_tasks, options.ruler_lengths)[0]


def test_pass_at_k_known_values_and_a_problem_drawn_twice_counts_twice():
    problems = [[{"task_id": f"HumanEval/{p}", "passed": s < c} for s in range(10)]
                for p, c in enumerate([0, 1, 5, 10])]
    options = HumanEvalOptions(humaneval_samples=10, humaneval_k=[1, 5], humaneval_temperature=0.8)
    per_problem = [problem_pass_at_k([problem], options) for problem in problems]
    assert [m["pass@1"] for m in per_problem] == pytest.approx([0, 0.1, 0.5, 1])
    assert [m["pass@5"] for m in per_problem] == pytest.approx([0, 0.5, 1 - 1 / 252, 1])
    assert problem_pass_at_k([problems[1], problems[1]], options)["pass@5"] == pytest.approx(0.5)
    sample = unit_sample([r for problem in problems for r in problem], HUMANEVAL.resampling, options)
    found = bootstrap_intervals(sample, 500, seed=0)
    assert found["pass@1"].estimate == pytest.approx(0.4) and 0 <= found["pass@1"].low < 0.4 < found["pass@1"].high <= 1


def test_seeds_combine_by_a_t_interval():
    combined = combine_seeds([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)   # t(0.975, df=2) * sd / sqrt(n)
    assert (combined.estimate, combined.low, combined.high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    single = combine_seeds([0.7])
    assert single.estimate == 0.7 and math.isnan(single.low) and math.isnan(single.high)


def test_results_md_shows_intervals_units_and_differences_from_the_first_model(tmp_path):
    base_records = [{"id": i, "x": float(i % 2)} for i in range(40)]
    better_records = [{"id": i, "x": 1.0} for i in range(40)]
    samples = {"base": {"toy": unit_sample(base_records, MEAN)}, "better": {"toy": unit_sample(better_records, MEAN)}}
    metrics = {"base": {"toy": {"mean": 0.5}}, "better": {"toy": {"mean": 1.0}}}
    results = {"tasks": ["toy"], "models": {}}
    for model in ("base", "better"):
        entry = interval_entry(samples[model]["toy"], metrics[model]["toy"], 500, seed=0)
        results["models"][model] = {"tasks": {"toy": {"metrics": metrics[model]["toy"], "details": {}, **entry}}}
    results["differences"] = differences_from_base(metrics, samples, 500, seed=0)
    paths = write_reports(tmp_path, results, {"toy": (["mean"], "share")})
    text = paths["markdown"].read_text()
    low, high = results["models"]["base"]["tasks"]["toy"]["intervals"]["mean"]
    assert 0.3 < low < 0.5 < high < 0.7
    assert f"| base | 0.5000 [{low:.4f}, {high:.4f}] |" in text
    assert "| better | 1.0000 [1.0000, 1.0000] |" in text
    assert "percentile bootstrap interval (500 resamples of its 40 samples)" in text
    assert "## Differences from base (the first model)" in text
    entry = results["differences"]["models"]["better"]["toy"]["mean"]
    assert entry["difference"] == 0.5 and entry["excludes_zero"] and entry["paired"]
    assert f"| better - base | +0.5000 [+{entry['interval'][0]:.4f}, +{entry['interval'][1]:.4f}] * |" in text
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

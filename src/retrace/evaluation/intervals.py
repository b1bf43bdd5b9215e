"""95% intervals for every reported metric, and whether a difference between two models is larger than chance.

A metric averages over units (held-out files, benchmark samples, HumanEval problems): a percentile
bootstrap resamples those units with replacement, recomputes the metric the way the task computes it,
and takes the 2.5th and 97.5th percentiles. A task opts in by declaring a `Resampling`: which unit a
per-sample record belongs to (all of a unit's records move together), optionally a stratum (units are
resampled within it: RULER's task/length cells, BFCL's categories, fixed by design), and how its metrics
are recomputed from the resampled units. The units are put in a canonical order (by stratum, then id)
before drawing, so an interval depends on the seed and the set of units, never on the records' order.

Two models measured on the same units are compared by a paired bootstrap (the same draw for both), which
removes the between-unit spread both share; when the unit sets differ, each side is resampled on its own
(unpaired) and the result says so. Several seeds of one arm combine by a t-interval over the seeds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

CONFIDENCE = 0.95
Units = list[list[dict[str, Any]]]  # each unit: the records of one file / sample / problem


@dataclass(frozen=True)
class Resampling:
    """How a task's metrics are recomputed from its per-sample records (`TaskResult.records`).

    `metrics(units, options)` gets a list of units, each the list of its records; a unit drawn twice
    appears twice, so it must not merge units by id.
    """

    unit: Callable[[dict[str, Any]], Hashable]
    metrics: Callable[[Units, Any], dict[str, float]]
    stratum: Callable[[dict[str, Any]], Hashable] | None = None
    unit_name: str = "samples"


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    paired: bool = True  # differences only: False when the two models' units differ

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (a difference larger than its uncertainty)."""
        return self.low > 0 or self.high < 0

    @property
    def bounds(self) -> list[float]:
        return [self.low, self.high]


@dataclass
class UnitSample:
    """One model's units on one task, in canonical order, with the statistic that turns units into metrics."""

    ids: list[Hashable]
    units: Units
    strata: list[Hashable]
    statistic: Callable[[Units], dict[str, float]]
    unit_name: str = "samples"


def _order_key(value: Hashable) -> str:
    return repr(value)


def unit_sample(records: Sequence[dict[str, Any]], resampling: Resampling, options: Any = None) -> UnitSample:
    """Group `records` into units, ordered by (stratum, id) so the draw never depends on record order."""
    grouped: dict[Hashable, list[dict[str, Any]]] = {}
    strata: dict[Hashable, Hashable] = {}
    for record in records:
        key = _freeze(resampling.unit(record))
        grouped.setdefault(key, []).append(record)
        strata.setdefault(key, _freeze(resampling.stratum(record)) if resampling.stratum else None)
    ids = sorted(grouped, key=lambda k: (_order_key(strata[k]), _order_key(k)))
    return UnitSample(ids=ids, units=[grouped[k] for k in ids], strata=[strata[k] for k in ids],
                      statistic=lambda units: resampling.metrics(units, options), unit_name=resampling.unit_name)


def _freeze(value: Any) -> Hashable:
    """Lists (ids read back from JSON) as tuples, so a unit id is the same before and after a round trip."""
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def draw_indices(strata: Sequence[Hashable], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`(resamples, len(strata))` unit indices: each stratum's units drawn with replacement within it."""
    strata_index: dict[Hashable, list[int]] = {}
    for i, stratum in enumerate(strata):
        strata_index.setdefault(stratum, []).append(i)
    drawn = np.empty((resamples, len(strata)), dtype=np.int64)
    for members in strata_index.values():
        members_array = np.asarray(members)
        drawn[:, members_array] = members_array[rng.integers(0, len(members), size=(resamples, len(members)))]
    return drawn


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return math.nan, math.nan
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _resampled_metrics(sample: UnitSample, drawn: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """`(resamples, len(names))` metric values, NaN where a resample could not compute one."""
    out = np.full((len(drawn), len(names)), math.nan)
    for b, row in enumerate(drawn):
        metrics = sample.statistic([sample.units[i] for i in row])
        out[b] = [_number(metrics.get(name)) for name in names]
    return out


def _number(value: Any) -> float:
    """A metric as a float; None (NaN read back from JSON) or anything else as NaN."""
    return float(value) if isinstance(value, (int, float)) else math.nan


def bootstrap_intervals(sample: UnitSample, resamples: int, seed: int,
                        names: Sequence[str] | None = None) -> dict[str, Interval]:
    """Percentile-bootstrap 95% interval of each metric (all the statistic returns, or `names`)."""
    if not sample.units or resamples < 1:
        return {}
    estimates = sample.statistic(sample.units)
    names = [n for n in (names if names is not None else estimates) if n in estimates]
    drawn = draw_indices(sample.strata, resamples, np.random.default_rng(seed))
    values = _resampled_metrics(sample, drawn, names)
    return {name: Interval(_number(estimates[name]), *_percentiles(values[:, j])) for j, name in enumerate(names)}


def paired(base: UnitSample, other: UnitSample) -> bool:
    """Whether the two samples hold the same units (then one draw serves both)."""
    return base.ids == other.ids


def difference_intervals(base: UnitSample, other: UnitSample, resamples: int, seed: int,
                         names: Sequence[str] | None = None) -> dict[str, Interval]:
    """`other - base` per metric with its 95% interval: paired on shared units, unpaired (marked) otherwise."""
    if not base.units or not other.units or resamples < 1:
        return {}
    base_estimates, other_estimates = base.statistic(base.units), other.statistic(other.units)
    names = [n for n in (names if names is not None else other_estimates) if n in base_estimates and n in other_estimates]
    rng = np.random.default_rng(seed)
    same_units = paired(base, other)
    base_drawn = draw_indices(base.strata, resamples, rng)
    other_drawn = base_drawn if same_units else draw_indices(other.strata, resamples, rng)
    spread = _resampled_metrics(other, other_drawn, names) - _resampled_metrics(base, base_drawn, names)
    return {name: Interval(_number(other_estimates[name]) - _number(base_estimates[name]),
                           *_percentiles(spread[:, j]), paired=same_units) for j, name in enumerate(names)}


def combine_seeds(estimates: Sequence[float]) -> Interval:
    """Mean of one arm's per-seed estimates with a Student-t 95% interval over seeds (NaN bounds for one seed)."""
    from scipy import stats

    values = np.asarray([v for v in estimates if v is not None and math.isfinite(v)], dtype=float)
    if not values.size:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if values.size < 2:
        return Interval(mean, math.nan, math.nan)
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return Interval(mean, mean - half, mean + half)


def interval_entry(sample: UnitSample, metrics: dict[str, float], resamples: int, seed: int) -> dict[str, Any]:
    """What results.json keeps beside a task's metrics: `intervals` {metric: [low, high]} and `units`.

    A metric the resampling recomputes differently from the task (a bug in the task's `Resampling`) is
    logged and left without an interval: an interval around another number would mislead.
    """
    found = bootstrap_intervals(sample, resamples, seed, names=list(metrics))
    for name, interval in list(found.items()):
        reported = _number(metrics[name])
        if not (math.isclose(interval.estimate, reported, rel_tol=1e-9, abs_tol=1e-12)
                or (math.isnan(interval.estimate) and math.isnan(reported))):
            logger.warning("interval of %s dropped: the records give %r, the task reported %r",
                           name, interval.estimate, reported)
            del found[name]
    return {"intervals": {name: interval.bounds for name, interval in found.items()},
            "units": {"name": sample.unit_name, "count": len(sample.ids), "strata": len(set(sample.strata)),
                      "resamples": resamples, "confidence": CONFIDENCE}}


def difference_entry(base: UnitSample | None, other: UnitSample | None, base_metrics: dict[str, Any],
                     other_metrics: dict[str, Any], resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    """`{metric: {difference, interval, excludes_zero, paired}}` of `other - base`; without units (no records),
    the difference of the point estimates alone (interval None)."""
    found = (difference_intervals(base, other, resamples, seed, names=list(other_metrics))
             if base is not None and other is not None else {})
    out = {}
    for name, value in other_metrics.items():
        if name not in base_metrics:
            continue
        if name in found:
            interval = found[name]
            out[name] = {"difference": interval.estimate, "interval": interval.bounds,
                         "excludes_zero": interval.excludes_zero, "paired": interval.paired}
        else:
            out[name] = {"difference": _number(value) - _number(base_metrics[name]), "interval": None,
                         "excludes_zero": None, "paired": None}
    return out


def differences_from_base(metrics: dict[str, dict[str, dict[str, Any]]], samples: dict[str, dict[str, UnitSample]],
                          resamples: int, seed: int) -> dict[str, Any]:
    """Each model after the first against the first (the base), task by task: `{base, models: {model: {task:
    {metric: difference entry}}}}`. `metrics` is {model: {task: metrics}}, `samples` {model: {task: units}}."""
    names = list(metrics)
    if len(names) < 2:
        return {}
    base = names[0]
    out: dict[str, Any] = {}
    for model in names[1:]:
        tasks = [t for t in metrics[model] if t in metrics[base] and metrics[model][t] and metrics[base][t]]
        out[model] = {task: difference_entry(samples.get(base, {}).get(task), samples.get(model, {}).get(task),
                                             metrics[base][task], metrics[model][task], resamples, seed)
                      for task in tasks}
    return {"base": base, "confidence": CONFIDENCE, "resamples": resamples, "models": out}

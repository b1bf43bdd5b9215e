"""Hit a requested token length by searching over the amount of filler.

Every RULER task can grow its context in small units (essay words, noise words, characters of
distractor needles, list words). The fitter finds the largest amount whose full prompt, measured with
the evaluated model's tokenizer and wrapping, is at most the target, by doubling then bisecting, and
refuses a result shorter than the tolerance allows. Token counts are nearly, not strictly, monotone in
the amount (needle positions move with it); bisection tolerates that, and the final check is on the
measured count, never on an estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class LengthError(ValueError):
    """A sample cannot be fitted to the requested length (too short for the task, or filler exhausted)."""


@dataclass(frozen=True)
class Fit:
    amount: int
    prompt: str
    tokens: int


def fit_amount(render: Callable[[int], str], count: Callable[[str], int], target: int, min_tokens: int,
               *, start: int = 64, limit: int | None = None) -> Fit:
    """The largest filler amount whose prompt has at most `target` tokens; LengthError under `min_tokens`.

    `limit` is the most filler there is (None: unbounded). Raises LengthError when even no filler is
    longer than `target`, or when the best fit is shorter than `min_tokens`.
    """
    measured: dict[int, tuple[str, int]] = {}

    def tokens(amount: int) -> int:
        if amount not in measured:
            prompt = render(amount)
            measured[amount] = (prompt, count(prompt))
        return measured[amount][1]

    if tokens(0) > target:
        raise LengthError(f"needs at least {tokens(0)} prompt tokens without any filler; only {target} allowed")
    lo, hi = 0, max(1, start if limit is None else min(start, limit))
    while tokens(hi) <= target:
        lo = hi
        if limit is not None and hi >= limit:
            break
        hi = hi * 2 if limit is None else min(hi * 2, limit)
    if tokens(hi) > target:
        while hi - lo > 1:  # invariant: tokens(lo) <= target < tokens(hi)
            mid = (lo + hi) // 2
            if tokens(mid) <= target:
                lo = mid
            else:
                hi = mid
    prompt, found = measured[lo]
    if found < min_tokens:
        reason = "the filler ran out" if limit is not None and lo >= limit else "the filler steps are too coarse"
        raise LengthError(f"reached {found} prompt tokens, under the {min_tokens} needed ({reason})")
    return Fit(amount=lo, prompt=prompt, tokens=found)

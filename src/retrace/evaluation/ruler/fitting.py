"""Hit a requested token length by searching over the amount of filler.

Every RULER task can grow its context in small units (essay words, noise words, characters of
distractor needles, list words). The fitter finds the largest amount whose full prompt, measured with
the evaluated model's tokenizer and wrapping, is at most the target, and refuses a result shorter
than the tolerance allows. Token counts are nearly, not strictly, monotone in
the amount (needle positions move with it); bisection tolerates that, and the final check is on the
measured count, never on an estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SECANT_STEPS = 4


class LengthError(ValueError):
    """A sample cannot be fitted to the requested length (too short for the task, or filler exhausted)."""


@dataclass(frozen=True)
class Fit:
    amount: int
    prompt: str
    tokens: int
    probes: int = 0   # prompts rendered and tokenized to find it


def fit_amount(render: Callable[[int], str], count: Callable[[str], int], target: int, min_tokens: int,
               *, start: int = 64, limit: int | None = None) -> Fit:
    """The largest filler amount whose prompt has at most `target` tokens; LengthError under `min_tokens`.

    `start` is a first guess; `limit` the most filler there is (None: unbounded). Secant steps on the
    nearly linear token count put the guess within a few units of the answer (each probe tokenizes
    the whole prompt, which dominates the cost at long lengths), then a bracket grown from the guess
    is bisected. Raises LengthError when even no filler is longer than `target`, or when the best fit
    is shorter than `min_tokens`.
    """
    measured: dict[int, tuple[str, int]] = {}

    def tokens(amount: int) -> int:
        if amount not in measured:
            prompt = render(amount)
            measured[amount] = (prompt, count(prompt))
        return measured[amount][1]

    def clamp(amount: int) -> int:
        return max(0, amount if limit is None else min(amount, limit))

    base = tokens(0)
    if base > target:
        raise LengthError(f"needs at least {base} prompt tokens without any filler; only {target} allowed")
    guess = clamp(max(1, start))
    for _ in range(SECANT_STEPS):
        slope = (tokens(guess) - base) / guess if guess else 0.0
        if slope <= 0:
            break
        better = clamp(int((target - base) / slope))
        if better == guess or better == 0:
            break
        guess = better
    lo, hi = 0, None  # invariant: tokens(lo) <= target < tokens(hi); hi None: not found yet
    step = 1
    if guess and tokens(guess) > target:
        hi = guess
        while hi - lo > 1:
            probe = max(lo, hi - step)
            if tokens(probe) <= target:
                lo = probe
                break
            hi, step = probe, step * 2
    else:
        lo = guess
        while limit is None or lo < limit:
            probe = clamp(lo + step)
            if tokens(probe) > target:
                hi = probe
                break
            lo, step = probe, step * 2
    while hi is not None and hi - lo > 1:
        mid = (lo + hi) // 2
        if tokens(mid) <= target:
            lo = mid
        else:
            hi = mid
    prompt, found = measured[lo]
    if found < min_tokens:
        reason = "the filler ran out" if limit is not None and lo >= limit else "the filler steps are too coarse"
        raise LengthError(f"reached {found} prompt tokens, under the {min_tokens} needed ({reason})")
    return Fit(amount=lo, prompt=prompt, tokens=found, probes=len(measured))

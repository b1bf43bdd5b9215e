"""The unbiased pass@k estimator of Chen et al. (2021), "Evaluating Large Language Models Trained on Code".

With n samples per problem of which c pass, pass@k = 1 - C(n-c, k) / C(n, k): the chance that k
samples drawn without replacement from the n include a passing one. Computed as a product so it is
exact for large n. The benchmark score is its mean over problems.
"""

from __future__ import annotations


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `n` samples, `c` of them passing; ValueError unless 0<=c<=n, 1<=k<=n."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(k):  # C(n-c, k) / C(n, k) = prod_{i<k} (n-c-i) / (n-i)
        miss *= (n - c - i) / (n - i)
    return 1.0 - miss


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given `(n, c)` per problem; ValueError for no problems."""
    if not counts:
        raise ValueError("pass@k over no problems")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)

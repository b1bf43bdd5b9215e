"""Search-based refinement of Think steps (the paper's CoT search).

Not built yet: issue 5 adds proposers, the likelihood scorer search and its log. Until then the
pipeline exports trajectories without search (the paper's "no search" ablation).
"""

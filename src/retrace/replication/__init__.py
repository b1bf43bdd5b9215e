"""The paper's experiment in one command: synthesize, train the three arms at equal budgets and seeds, evaluate,
and write a report with intervals (`python -m retrace.replication`, or `make replicate`).

Sits above the stages, like the entry scripts: it runs `synthesize.py`, `train.py` and `evaluate.py` as
subprocesses and reads their artifacts; no stage imports it.
"""

from retrace.replication.pipeline import ARMS, Arm, ReplicationPlan, run_replication
from retrace.replication.report import build_report

__all__ = ["ARMS", "Arm", "ReplicationPlan", "build_report", "run_replication"]

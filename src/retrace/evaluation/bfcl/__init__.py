"""BFCL (Berkeley Function Calling Leaderboard) non-live Python categories, in prompting mode.

Data from the pinned `bfcl-eval` wheel; BFCL's default system prompt (`templates/system.prompt`);
replies decoded with `ast` (never executed) and checked by a restatement of BFCL's AST checker with
its type and string normalisation. `BFCL` is the evaluation task, `BFCLOptions` its recipe keys, and
`load_questions` the raw entries (for decontamination).
"""

from retrace.evaluation.bfcl.checker import (
    Verdict,
    check_call,
    check_calls,
    check_irrelevance,
    standardize_string,
)
from retrace.evaluation.bfcl.data import (
    AST_CATEGORIES,
    CATEGORIES,
    BFCLDataError,
    BFCLQuestion,
    load_category,
    load_possible_answers,
    load_questions,
)
from retrace.evaluation.bfcl.decoding import DecodeError, decode_calls, render_calls
from retrace.evaluation.bfcl.oracle import oracle_calls, oracle_reply
from retrace.evaluation.bfcl.prompting import conversation, system_prompt
from retrace.evaluation.bfcl.scoring import aggregate, score_reply
from retrace.evaluation.bfcl.task import BFCL, BFCLOptions, spread_sample

__all__ = [
    "AST_CATEGORIES", "BFCL", "CATEGORIES", "BFCLDataError", "BFCLOptions", "BFCLQuestion", "DecodeError", "Verdict",
    "aggregate", "check_call", "check_calls", "check_irrelevance", "conversation", "decode_calls", "load_category",
    "load_possible_answers", "load_questions", "oracle_calls", "oracle_reply", "render_calls", "score_reply",
    "spread_sample", "standardize_string", "system_prompt",
]

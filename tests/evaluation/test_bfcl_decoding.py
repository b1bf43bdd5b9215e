"""Decoding BFCL replies with `ast` (never eval), and scoring replies: malformed ones are counted errors."""

from __future__ import annotations

import time

import pytest

from retrace.evaluation.bfcl import (
    DecodeError,
    decode_calls,
    load_category,
    oracle_reply,
    render_calls,
    score_reply,
)


def test_the_reply_forms_bfcl_reads():
    assert decode_calls("[math.factorial(number=5)]") == [{"math.factorial": {"number": 5}}]
    assert decode_calls("math.factorial(number=5)") == [{"math.factorial": {"number": 5}}]  # brackets added
    assert decode_calls("```\n[f(a=1), g(b='x')]\n```") == [{"f": {"a": 1}}, {"g": {"b": "x"}}]
    assert decode_calls("") == [] and decode_calls("[]") == []
    (call,) = decode_calls("[f(a=-3, b=[1, -2.5], c={'k': (1, 2)}, d=x, e=g(1), h=k(z=1), s=a[1:2], t=2**10, u=...)]")
    assert call == {"f": {"a": -3, "b": [1, -2.5], "c": {"k": (1, 2)}, "d": "x", "e": "g(1)", "h": {"k": {"z": 1}},
                          "s": "a[1:2]", "t": 1024, "u": "..."}}
    assert decode_calls("[f(1, 2, a=3)]") == [{"f": {"a": 3}}]  # positional arguments are dropped, as BFCL does


def test_round_trip_of_every_oracle_reply():
    for category in ("simple", "parallel_multiple"):
        for question in load_category(category):
            reply = oracle_reply(question)
            assert render_calls(decode_calls(reply)) == reply


MALFORMED = [
    "I cannot answer that with these functions.",
    "```python\n[f(a=1)]\n```",            # a language tag after the fence: BFCL cannot read it either
    "[f(a=1)] and then I would call g",
    "[f(a=1), 3]",
    "[f(a=lambda: 1)]",
    "[f(a=math.pi)]",
    "[f(a={x for x in y})]",
    "[f(a=f'{x}')]",
    "[f(a=[i for i in range(3)])]",
    "[f(a={[1]: 2})]",
    "[f(a={**other})]",
    "[f(a=1/0)]",
    "[f(a=9**9**9)]",
    "[f(a='x' * 10**9)]",
    "[f(a=-'x')]",
    "[f(a=" + "[" * 500 + "]" * 500 + ")]",
    "(" * 2000,
    "\x00\x01 binary \xff",
    "'[f(a=1)]'",                          # BFCL adds the brackets before stripping quotes: a string, no call
]


@pytest.mark.parametrize("reply", MALFORMED)
def test_malformed_replies_are_decode_errors(reply):
    started = time.perf_counter()
    with pytest.raises(DecodeError):
        decode_calls(reply)
    assert time.perf_counter() - started < 1.0


def test_calls_inside_arguments_are_text_never_run(tmp_path):
    marker = tmp_path / "ran"
    (call,) = decode_calls(f"[f(a=__import__('os').system('touch {marker}'), b=open('{marker}', 'w'))]")
    assert call == {"f": {"a": f"__import__('os').system('touch {marker}')", "b": f"open('{marker}', 'w')"}}
    assert not marker.exists()


def test_malformed_replies_are_counted_not_raised():
    simple = load_category("simple")[0]
    irrelevant = load_category("irrelevance")[0]
    for reply in MALFORMED:
        record = score_reply(simple, reply)
        assert record["correct"] is False
        if record["decode_error"] is not None:
            assert record["error_type"] == "ast_decoder:decoder_failed" and record["decoded_calls"] is None
        assert score_reply(irrelevant, reply)["correct"] is (record["decode_error"] is not None)


def test_irrelevance_is_correct_only_without_a_call():
    question = load_category("irrelevance")[0]
    function = question.functions[0]["name"]
    assert score_reply(question, "")["correct"]
    assert score_reply(question, "[]")["correct"]
    assert score_reply(question, "None of the functions can compute a triangle's area.")["correct"]
    wrong = score_reply(question, f"[{function}(weight=70.0, height=1.8)]")
    assert not wrong["correct"] and wrong["error_type"] == "irrelevance_error:decoder_success"
    assert wrong["decoded_calls"] == [{function: {"weight": 70.0, "height": 1.8}}]
    assert not score_reply(question, "[some_other_function()]")["correct"]  # any call at all is wrong


def test_records_are_json_ready_and_carry_the_reason():
    import json

    question = load_category("simple")[0]
    record = score_reply(question, "[calculate_triangle_area(base=10, height=(5, 6))]")
    assert record["error_type"] == "type_error:simple" and "height" in record["error"]
    assert record["decoded_calls"] == [{"calculate_triangle_area": {"base": 10, "height": [5, 6]}}]
    json.dumps(record)
    assert score_reply(question, oracle_reply(question))["correct"]

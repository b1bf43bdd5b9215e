"""How a RULER task's text becomes the exact string the model reads, and how long that string is.

A task writes a `TaskText` (its question with the context inside, the answer prefix, the references,
maybe one worked example). `PromptFormat` wraps it either in the model's chat template (the example
as an earlier user/assistant exchange) or as plain text for a base model, and appends the answer
prefix after the wrapping, as RULER does for every model. The result is sent through
`TextGenerator.complete`, which tokenizes it exactly as `PromptFormat.count` does, so the length the
fitter measured is the length the model reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

PROMPT_STYLES = ("auto", "chat", "base")


@dataclass(frozen=True)
class TaskText:
    """A sample's words before wrapping; `answers` are the references scored by string match."""

    question: str
    answer_prefix: str
    answers: tuple[str, ...]
    example: tuple[str, str, str] | None = None   # (question, answer prefix, answer) shown first
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


def _adds_bos(tokenizer: Any) -> bool:
    bos = getattr(tokenizer, "bos_token_id", None)
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bos is not None and bool(ids) and ids[0] == bos


@dataclass(frozen=True)
class PromptFormat:
    """Chat-template or base-model wrapping for one tokenizer; `count` is the model's own token count."""

    tokenizer: Any
    chat: bool
    answer_prefix: bool = True

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, style: str = "auto", answer_prefix: bool = True) -> PromptFormat:
        """`style` auto uses the chat template when the tokenizer has one; chat without one is an error."""
        if style not in PROMPT_STYLES:
            raise ValueError(f"key 'ruler_prompt_style': expected one of {list(PROMPT_STYLES)}, got {style!r}")
        has_template = getattr(tokenizer, "chat_template", None) is not None
        if style == "chat" and not has_template:
            raise ValueError("key 'ruler_prompt_style': chat asked for, but the tokenizer has no chat template")
        return cls(tokenizer, chat=has_template if style == "auto" else style == "chat", answer_prefix=answer_prefix)

    def render(self, text: TaskText) -> str:
        """The full prompt string: wrapping, optional worked example, question, then the answer prefix."""
        prefix = text.answer_prefix if self.answer_prefix else ""
        if not self.chat:
            head = ""
            if text.example:
                question, example_prefix, answer = text.example
                head = f"{question}\n{example_prefix} {answer}\n\n"
            return f"{head}{text.question}\n{prefix}" if prefix else f"{head}{text.question}"
        messages = []
        if text.example:
            question, example_prefix, answer = text.example
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": f"{example_prefix} {answer}"}]
        messages.append({"role": "user", "content": text.question})
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and rendered.startswith(bos) and _adds_bos(self.tokenizer):
            rendered = rendered[len(bos):]  # complete() adds it again when tokenizing
        return rendered + prefix

    def count(self, prompt: str) -> int:
        """Tokens of `prompt` as `TextGenerator.complete` feeds it (special tokens added)."""
        return len(self.tokenizer(prompt, add_special_tokens=True, verbose=False)["input_ids"])

    def fingerprint(self) -> str:
        """Identifies tokenizer plus wrapping: equal fingerprints give equal prompts for equal seeds."""
        tok = self.tokenizer
        parts = [type(tok).__name__, str(getattr(tok, "name_or_path", "")), str(len(tok)),
                 str(getattr(tok, "chat_template", "")), str(self.chat), str(self.answer_prefix)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {"style": "chat" if self.chat else "base", "answer_prefix": self.answer_prefix,
                "tokenizer": str(getattr(self.tokenizer, "name_or_path", ""))}

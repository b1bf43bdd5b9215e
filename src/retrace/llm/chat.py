"""Chat generation with a local transformers model, batched.

A role-free backend: give it conversations (lists of `{"role", "content"}`), get the assistant's
replies. Left padding, greedy by default, stopped by the tokenizer's EOS and the chat template's
end-of-turn token, so small models do not ramble past their answer.

Every chat backend (this one, `openai_chat`, `vllm_chat`) offers the same surface, `ChatBackend`, so
the policies that use them do not care which one answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from tqdm.auto import tqdm

from retrace.llm.embedded import resolve_model_path

logger = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass
class GenerationUsage:
    """Tokens spent, for the run's statistics."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatBackend(Protocol):
    """What a policy needs of a chat model: replies in order, `None` where a request failed for good.

    `temperature` and `seed` override the backend's own for one call (a policy's retry samples).
    """

    usage: GenerationUsage

    def generate(self, conversations: list[list[Message]], desc: str = "generating", *,
                 temperature: float | None = None, seed: int | None = None) -> list[str | None]: ...


class HFChatModel:
    """A transformers causal LM with a chat template, generating for many conversations at once."""

    def __init__(self, model_name_or_path: str, *, dtype: str = "auto", device: str | None = None,
                 max_new_tokens: int = 96, temperature: float = 0.0, batch_size: int = 16, seed: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(model_name_or_path)
        self.name = model_name_or_path
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{model_name_or_path} has no chat template; the policy needs a chat model")
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(self.device).eval()
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.batch_size = batch_size
        self.seed = seed
        self.usage = GenerationUsage()

    def generate(self, conversations: list[list[Message]], desc: str = "generating", *,
                 temperature: float | None = None, seed: int | None = None) -> list[str]:
        """One reply per conversation, in order. Long batches are sorted by length to limit padding."""
        import torch

        temperature = self.temperature if temperature is None else temperature

        order = sorted(range(len(conversations)), key=lambda i: -len(str(conversations[i])))
        replies: list[str] = [""] * len(conversations)
        torch.manual_seed(self.seed if seed is None else seed)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        for batch in tqdm(batches, desc=desc, unit="batch", disable=len(batches) < 2):
            encoded = self.tokenizer.apply_chat_template(
                [conversations[i] for i in batch], add_generation_prompt=True, padding=True,
                return_tensors="pt", return_dict=True,
            ).to(self.device)
            sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {
                "do_sample": False}
            with torch.inference_mode():
                output = self.model.generate(**encoded, max_new_tokens=self.max_new_tokens,
                                             pad_token_id=self.tokenizer.pad_token_id, **sampling)
            new_tokens = output[:, encoded["input_ids"].shape[1]:]
            self.usage.requests += len(batch)
            self.usage.prompt_tokens += int(encoded["attention_mask"].sum())
            self.usage.completion_tokens += int((new_tokens != self.tokenizer.pad_token_id).sum())
            for row, index in enumerate(batch):
                replies[index] = self.tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
        return replies

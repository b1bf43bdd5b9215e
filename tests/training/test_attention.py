"""With separate_documents, a token attends only within its document: its logits match the document alone."""

from __future__ import annotations

import pytest
import torch

from retrace.training import PackedCollator, pack_documents


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_no_attention_across_documents_in_a_pack(tiny_model_dir, attn):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attn).eval()
    model.config.use_cache = False
    first, second = list(range(100, 111)), list(range(200, 209))
    packs = list(pack_documents([(first, first), (second, second)], 20, pad_id=2))
    batch = PackedCollator()(packs)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        alone = model(input_ids=torch.tensor([second])).logits[0]
        across = model(input_ids=batch["input_ids"]).logits[0]  # no position ids: one causal sequence
    torch.testing.assert_close(packed[11:20], alone, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(across[11:20], alone, atol=1e-4)

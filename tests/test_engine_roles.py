"""Every role names its engine the same way, and synthesis runs its policy and proposer on a served model.

The served model is the real local HTTP test server (tests/openai_server.py) with injected faults; the
scorer is the tiny Llama on the hf engine. Only the server's words are scripted.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re

import pytest
import yaml
from openai_server import FakeChatServer, grounded_reply
from retrace_testing import ROOT, run_script, write_shapes_repo

from retrace.agents import SimulationArguments
from retrace.data.layout import artifact_path
from retrace.evaluation.config import EvaluationConfig
from retrace.llm import EngineConfig, EnginePool, engine_config
from retrace.recipe import RecipeError, parse_recipe
from retrace.refine import RefineArguments

ROLES = {"policy": SimulationArguments, "proposer": RefineArguments, "scorer": RefineArguments,
         "eval": EvaluationConfig}


def test_every_role_has_the_same_engine_keys():
    suffixes = {f.name for f in dataclasses.fields(EngineConfig)}
    for role, arguments in ROLES.items():
        keys = {f.name.removeprefix(f"{role}_") for f in dataclasses.fields(arguments)
                if f.name.startswith(f"{role}_") and f.name.removeprefix(f"{role}_") in suffixes}
        assert keys == suffixes, role
        assert dataclasses.asdict(engine_config(arguments(), role)).keys() == suffixes


@pytest.mark.parametrize(("role", "key", "value", "needle"), [
    ("scorer", "scorer_backend", "structural", "key 'scorer_backend': 'structural' writes text"),
    ("eval", "eval_backend", "structural", "key 'eval_backend': 'structural'"),
    ("scorer", "scorer_temperature", "0.5", "key 'scorer_temperature': the refine scorer (NLL of the real code) does not sample"),
    ("policy", "policy_backend", "tgi", "key 'policy_backend': unknown engine 'tgi'"),
    ("proposer", "proposer_concurrency", "0", "key 'proposer_concurrency': must be >= 1"),
])
def test_what_a_role_cannot_use_is_refused_at_parse_time_in_one_line(tmp_path, role, key, value, needle):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"{key}: {value}\n")
    with pytest.raises(RecipeError) as caught:
        parse_recipe([ROLES[role]], ["--config", str(recipe)])
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_every_recipe_in_the_engines_doc_parses(tmp_path):
    from retrace.data.export import ExportArguments
    from retrace.evaluation import task_option_types
    from retrace.repo.budget import DocumentBudgetArguments
    from retrace.repo.parallel import ScaleArguments
    from retrace.repo.sources import IngestArguments

    scripts = {"synthesize": [IngestArguments, DocumentBudgetArguments, SimulationArguments, RefineArguments,
                              ExportArguments, ScaleArguments],
               "evaluate": [EvaluationConfig, *task_option_types()]}
    blocks = re.findall(r"```yaml\n# (\w+)\n(.*?)```", (ROOT / "docs" / "engines.md").read_text(), re.S)
    assert len(blocks) == 12  # 4 roles x 3 engines
    seen = set()
    for i, (script, text) in enumerate(blocks):
        # a snippet is the engine part of a recipe: laid over the quickstart recipe of its script
        base = yaml.safe_load((ROOT / "recipes" / "quickstart" / f"{script}.yaml").read_text())
        recipe = tmp_path / f"{i}.yaml"
        recipe.write_text(yaml.safe_dump({**base, **yaml.safe_load(text)}))
        parsed = parse_recipe(scripts[script], ["--config", str(recipe)])
        backend = re.search(r"^(\w+)_backend: (\w+)", text, re.M)
        seen.add(backend.groups())
        role, engine = backend.groups()
        args = next(a for a in parsed if hasattr(a, f"{role}_backend"))
        assert getattr(args, f"{role}_backend") == engine
    assert seen == {(role, engine) for role in ROLES for engine in ("hf", "vllm", "openai")}


def test_a_misspelt_engine_key_is_refused():
    with pytest.raises(RecipeError, match="unknown key 'proposer_temprature'"):
        parse_recipe([RefineArguments], ["--proposer_temprature", "0.5"])


def test_roles_naming_the_same_model_share_one_load(tiny_llama_dir):
    pool = EnginePool(seed=3)
    model = str(tiny_llama_dir)
    policy = pool.get(EngineConfig(backend="hf", model=model, dtype="float32", batch_size=16), role="policy")
    proposer = pool.get(EngineConfig(backend="hf", model=model, dtype="float32", temperature=0.7,
                                     max_new_tokens=8), role="proposer")
    scorer = pool.get(EngineConfig(backend="hf", model=model, dtype="float32", batch_size=2), role="scorer",
                      max_context_tokens=128, max_chunk_tokens=1)
    other = pool.get(EngineConfig(backend="hf", model=model, dtype="bfloat16"), role="scorer")
    assert policy.model is proposer.model is scorer.model and other.model is not policy.model
    assert (policy.batch_size, scorer.batch_size, scorer.max_context_tokens) == (16, 2, 128)
    assert (proposer.default_params.temperature, proposer.default_params.seed) == (0.7, 3)
    proposer.complete(["def f():"])
    assert proposer.usage.requests == 1 and policy.usage.requests == 0  # each role counts its own


def test_synthesis_with_policy_and_proposer_on_a_served_model(tmp_path, tiny_llama_dir):
    """The recipe's policy and proposer talk to one OpenAI-compatible server that fails now and then."""
    root = write_shapes_repo(tmp_path / "tiny")
    out = tmp_path / "out"
    counter = itertools.count()

    def reply(body):
        if "Rewrite this reasoning" in body["messages"][-1]["content"]:  # a proposer request (one per candidate)
            path = re.search(r"writing `([^`]+)`", body["messages"][-1]["content"]).group(1)
            return f"First the imports of {path}, then its public functions in order (variant {next(counter)})."
        return grounded_reply(body)

    with FakeChatServer(reply=reply) as server:
        server.faults.extend(["500", "malformed", "429"])  # retried: the run shrugs these off
        served = ["--base_url", server.base_url, "--model", server.model, "--api_key_env", "",
                  "--concurrency", "2", "--ready_timeout_s", "10"]
        run_script("synthesize.py", "--sources", str(root), "--output_dir", str(out), "--viewer", "false",
                   "--policy_backend", "openai", *[a.replace("--", "--policy_", 1) if a.startswith("--") else a
                                                   for a in served],
                   "--refine", "true", "--refine_iterations", "2", "--refine_candidates", "2",
                   "--proposer_backend", "openai", *[a.replace("--", "--proposer_", 1) if a.startswith("--") else a
                                                     for a in served],
                   "--scorer_model", str(tiny_llama_dir), "--refine_max_context_tokens", "256",
                   "--seed", "7", timeout=300)
    proposals = [b for b in server.chat_requests if "Rewrite this reasoning" in b["messages"][-1]["content"]]
    assert proposals and all(b["temperature"] == 0.7 and b["max_tokens"] == 192 for b in proposals)
    assert {b["seed"] for b in proposals} == {7 + 1000, 7 + 2000}  # the recipe's seed, moved per iteration
    traj = json.loads(artifact_path(out, "trajectories", "tiny").read_text())
    searched = [s["search"] for s in traj["steps"] if s.get("search")]
    texts = [c["text"] for log in searched for c in log["candidates"]]
    assert texts and all("variant" in t for t in texts if not t.startswith("Now I write"))
    assert any("variant" in t for t in texts)
    assert traj["meta"]["text_sources"].get("openai", 0) > 0


THINKING_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                     "<|im_start|>assistant\n{% if enable_thinking is defined and enable_thinking %}<think>\n"
                     "{% else %}<think>\n\n</think>\n\n{% endif %}")  # as Qwen3's template switches


@pytest.mark.parametrize("thinking", [False, True])
def test_the_thinking_switch_reaches_the_hf_chat_template(tiny_llama_dir, thinking):
    """`{role}_enable_thinking` is the template's `enable_thinking`: off, the scratchpad is closed before the reply."""
    from transformers import AutoTokenizer

    engine = EnginePool().get(EngineConfig(backend="hf", model=str(tiny_llama_dir), dtype="float32",
                                           max_new_tokens=2, enable_thinking=thinking), role="policy")
    engine.tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    engine.tokenizer.chat_template = THINKING_TEMPLATE
    seen = []
    generate = engine._generate
    engine._generate = lambda encoded, params, desc: seen.extend(encoded) or generate(encoded, params, desc)
    engine.chat([[{"role": "user", "content": "Describe units.py."}]])
    prompt = engine.tokenizer.decode(seen[0])
    assert prompt.endswith("<think>\n") if thinking else prompt.endswith("<think>\n\n</think>\n\n")


@pytest.mark.parametrize("thinking", [False, True])
def test_the_thinking_switch_is_sent_to_a_served_model(thinking):
    """openai: vLLM's `chat_template_kwargs`, on every chat request of the role (off unless the recipe says so)."""
    from retrace.agents import build_policy
    from retrace.agents.policies import PolicyRequest

    with FakeChatServer() as server:
        args = SimulationArguments(policy_backend="openai", policy_base_url=server.base_url,
                                   policy_model=server.model, policy_api_key_env="", policy_enable_thinking=thinking)
        policy = build_policy(args)
        fields = {"repo": "shapes", "languages": "Python", "facts": "Files: shapes/units.py"}
        [reply] = policy.write([PolicyRequest("requirements", fields, "structural", anchors=["shapes"])])
    assert reply.source == "openai"
    assert [b["chat_template_kwargs"] for b in server.chat_requests] == [{"enable_thinking": thinking}]

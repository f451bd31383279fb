from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Literal

import pytest

from lhama.config import apply_overrides, from_dict, load, saved_matches, to_dict
from lhama.errors import ConfigError


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.999)


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: Literal["mlp2x_gelu", "linear"] = "mlp2x_gelu"
    steps: int = 10
    out: Path | None = None
    optim: Optim = field(default_factory=Optim)


def test_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: stage1\noptim:\n  lr: 0.01\n")
    cfg = load(Recipe, path, ["steps=5", "optim.lr=2e-4", "kind=linear", "out=/tmp/x"])
    assert cfg == Recipe(name="stage1", kind="linear", steps=5, out=Path("/tmp/x"), optim=Optim(lr=2e-4))


def test_unknown_key_names_it_and_the_valid_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key optim\.lrr.*valid keys: betas, lr"):
        from_dict(Recipe, {"name": "x", "optim": {"lrr": 1}})


@pytest.mark.parametrize(
    "override, message",
    [("steps=ten", "steps must be int"), ("kind=conv", "kind must be one of"), ("steps", "key=value")],
)
def test_bad_override_is_a_config_error(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(Recipe, None, ["name=x", override])


def test_tilde_restores_default_and_round_trip() -> None:
    data = apply_overrides({"name": "x", "steps": 3}, ["~steps"])
    cfg = from_dict(Recipe, data)
    assert cfg.steps == 10
    assert from_dict(Recipe, to_dict(cfg)) == cfg


def test_missing_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(Recipe, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(Recipe, bad)


def test_required_values_are_named_in_one_line_until_set(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: ???\noptim:\n  lr: ???\n")
    with pytest.raises(ConfigError) as info:
        load(Recipe, path)
    assert str(info.value) == "r.yaml needs name, optim.lr: add name=... optim.lr=... to the command"
    with pytest.raises(ConfigError, match="r.yaml needs optim.lr: add optim.lr=..."):
        load(Recipe, path, ["name=x"])
    assert load(Recipe, path, ["name=x", "optim.lr=0.5"]) == Recipe(name="x", optim=Optim(lr=0.5))
    assert load(Recipe, path, ["name=x", "~optim.lr"]).optim.lr == 1e-3  # ~ removes: the default applies


def test_saved_matches_reads_a_missing_field_as_its_default() -> None:
    recipe = Recipe(name="x", steps=3)
    saved = to_dict(recipe)
    assert saved_matches(recipe, saved)
    # a field added with a default after the record was written: the record is still current
    Grown = make_dataclass("Grown", [("knob", int, field(default=0))], bases=(Recipe,), frozen=True)
    assert saved_matches(Grown(name="x", steps=3), saved)
    assert not saved_matches(Grown(name="x", steps=3, knob=1), saved)  # not at its default: the record lacks it
    assert saved_matches(recipe, {k: v for k, v in saved.items() if k != "kind"})  # kind is at its default
    assert not saved_matches(recipe, {k: v for k, v in saved.items() if k != "steps"})  # steps=3 is not
    assert not saved_matches(recipe, {**saved, "steps": 4})
    assert not saved_matches(recipe, {**saved, "gone": 1})  # a field since removed
    assert not saved_matches(recipe, None)
    optim = Optim(betas=(0.5, 0.9))
    assert saved_matches(optim, {"lr": 1e-3, "betas": [0.5, 0.9]}) and not saved_matches(optim, {"lr": 1e-3})

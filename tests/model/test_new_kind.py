"""A modality added from outside lhama: one encoder module, one config class with its
placeholder, one ``BranchKind`` given to ``branches.register``, and nothing else touched. The
toy kind ("a reading": four numbers in a text file) then goes through compose, the training
collator, the forward pass, save and load, and chat's intake, like the built-in kinds."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM

from lhama.data.collate import CollateConfig, Collator
from lhama.data.conversation import IGNORE_INDEX
from lhama.data.dataset import Sample
from lhama.errors import ConfigError, DataError, ModelError
from lhama.model import branches
from lhama.model.build import compose, load_model, save_model
from lhama.model.config import ImageConfig, LhamaConfig, ProjectorConfig
from lhama.model.projector import MultiModalProjector
from tests.conftest import tiny_text_config, tiny_tokenizer, tiny_vision_config

WIDTH = 6  # the toy encoder's feature width


@dataclass(frozen=True)
class ReadingConfig:
    """The toy branch's config: what ``LhamaConfig.branches["reading"]`` holds."""

    placeholder: str = "<reading>"
    tokens: int = 3
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)


class ReadingTower(nn.Module):
    """The toy encoder: 4 numbers -> ``tokens`` features of width :data:`WIDTH`."""

    def __init__(self, tokens: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.linear = nn.Linear(4, tokens * WIDTH)

    def forward(self, readings: torch.Tensor) -> torch.Tensor:  # (n, 4) -> (n, tokens, WIDTH)
        return self.linear(readings).view(len(readings), self.tokens, WIDTH)


def _read(source: str | Path | bytes, spec: float, config: ReadingConfig) -> torch.Tensor:
    text = source.decode() if isinstance(source, bytes) else Path(source).read_text()
    return torch.tensor([float(x) for x in text.split()]) * spec  # (4,)


def _build(config, towers: Mapping[str, nn.Module], width: int) -> dict[str, nn.Module]:
    reading = config.branches["reading"]
    tower = towers.get("reading_tower") or ReadingTower(reading.tokens)
    return {"reading_tower": tower, "reading_projector": MultiModalProjector(WIDTH, width, reading.projector)}


READING = branches.BranchKind(
    "reading", ReadingConfig, "reading_tower", "reading_projector",
    encode=lambda model, readings, config: model.reading_tower(readings),
    tokens=lambda model, config: config.branches["reading"].tokens,
    build=_build, read=_read, spec=lambda modules, specs: 0.5,
)


@pytest.fixture
def reading_kind() -> Iterator[branches.BranchKind]:
    branches.register(READING)
    try:
        yield READING
    finally:
        branches.unregister("reading")


def _write(path: Path, *numbers: float) -> Path:
    path.write_text(" ".join(str(n) for n in numbers))
    return path


def _composed() -> object:
    torch.manual_seed(0)
    config = branches.lhama_config(reading=ReadingConfig(), image=ImageConfig())
    return compose(config, AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer(),
                   {"image": AutoModel.from_config(tiny_vision_config())})


def test_a_registered_kind_goes_through_compose_collate_forward_save_and_load(reading_kind, tmp_path: Path) -> None:
    loaded = _composed()
    assert list(loaded.config.branches) == ["image", "reading"]  # merge order: registered last
    assert loaded.specs["reading"] == 0.5 and isinstance(loaded.model.reading_tower, ReadingTower)
    ask = {"role": "user", "content": "<reading>\nQuanto marcou?"}
    samples = [Sample("a", (ask, {"role": "assistant", "content": "Pouco."}), media={"reading": _write(tmp_path / "a.txt", 1, 2, 3, 4)}),
               Sample("b", (ask, {"role": "assistant", "content": "Muito."}), media={"reading": _write(tmp_path / "b.txt", 9, 8, 7, 6)})]
    collator = Collator(loaded.tokenizer, loaded.expansions(), loaded.readers(), CollateConfig())
    batch = collator([collator.encode(s) for s in samples])
    assert torch.equal(batch.media["reading"], torch.tensor([[0.5, 1, 1.5, 2], [4.5, 4, 3.5, 3]]))
    token = loaded.model.token_ids["reading"]
    assert (batch.input_ids == token).sum(dim=1).tolist() == [3, 3]  # <reading> expanded to its 3 tokens
    loaded.model.train()
    out = loaded.model(batch.input_ids, batch.media, batch.attention_mask, batch.labels)
    out.loss.backward()  # the toy encoder and projector learn from the answer's tokens
    assert (batch.labels != IGNORE_INDEX).any() and loaded.model.reading_projector.linear_1.weight.grad.abs().sum() > 0
    loaded.model.eval()
    with torch.no_grad():
        logits = loaded.model(batch.input_ids, batch.media).logits
        swapped = loaded.model(batch.input_ids, {"reading": batch.media["reading"].flip(0)}).logits
    assert not torch.allclose(logits, swapped)  # the readings reach the answer

    save_model(loaded, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["lhama"]["reading"] == {"placeholder": "<reading>", "tokens": 3,
                                         "projector": {"kind": "mlp2x_gelu", "bias": True, "norm": "none"}}
    again = load_model(tmp_path / "m")
    assert again.config == loaded.config and again.expansions() == loaded.expansions()
    with torch.no_grad():
        assert torch.equal(again.model(batch.input_ids, batch.media).logits, logits)
    assert torch.equal(again.read("reading", b"1 2 3 4"), torch.tensor([0.5, 1, 1.5, 2]))  # a request's bytes


def test_without_the_registration_the_kind_is_unknown_and_formats_are_as_before(reading_kind, tmp_path: Path) -> None:
    save_model(_composed(), tmp_path / "m")
    branches.unregister("reading")
    with pytest.raises(ConfigError, match="unknown config key reading"):
        load_model(tmp_path / "m")  # a directory with the kind needs it registered
    assert list(branches.config_to_dict(branches.lhama_config(image=ImageConfig()))) == ["image", "video", "audio"]
    branches.register(READING)
    with pytest.raises(ConfigError, match="already a branch kind 'reading'"):
        branches.register(READING)
    with pytest.raises(ConfigError, match="the gauge branch kind's audio_projector is already audio's; name its own"):
        branches.register(replace(READING, name="gauge", projector="audio_projector"))
    with pytest.raises(ConfigError, match="gauge branch kind's language_model is already the language model's"):
        branches.register(replace(READING, name="gauge", projector="gauge_projector", extra=("language_model",)))
    assert "gauge" not in branches.KIND


def test_a_model_without_the_kind_refuses_its_media(reading_kind) -> None:
    torch.manual_seed(0)
    loaded = compose(branches.lhama_config(), AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer())
    with pytest.raises(ModelError, match="no reading branch"):
        loaded.model(torch.tensor([[1, 2]]), {"reading": torch.zeros(1, 4)})


def test_chat_attaches_the_new_kind_by_name(reading_kind, tmp_path: Path) -> None:
    from lhama.serve.session import ChatSession

    loaded = _composed()
    session = ChatSession(loaded, system_prompt="")
    session.attach("reading", _write(tmp_path / "a.txt", 1, 2, 3, 4))  # what `/reading PATH` in the REPL calls
    assert torch.equal(session.pending_media["reading"][0], torch.tensor([0.5, 1, 1.5, 2]))
    *_, done = session.ask("Quanto marcou?")
    assert session.history[0]["content"] == "<reading>\nQuanto marcou?" and done.token_ids
    text_only = ChatSession(compose(branches.lhama_config(), AutoModelForCausalLM.from_config(tiny_text_config()),
                                    tiny_tokenizer()))
    with pytest.raises(ModelError, match="has no reading branch and nothing tells it a reading as text"):
        text_only.attach("reading", tmp_path / "a.txt")  # no stand-in declared for it (serve/kinds.SERVED)


def test_one_serve_record_tells_a_model_without_the_branch_the_new_kind(reading_kind, tmp_path: Path) -> None:
    from lhama.serve import kinds
    from lhama.serve.session import ChatSession

    told = kinds.ServedKind("reading", lambda source, cascade: f"Leitura: {Path(source).read_text().strip()}")
    kinds.register(told)
    try:
        with pytest.raises(ConfigError, match="already has a record of the 'reading' kind"):
            kinds.register(told)
        text_only = ChatSession(compose(branches.lhama_config(), AutoModelForCausalLM.from_config(tiny_text_config()),
                                        tiny_tokenizer()), system_prompt="")
        text_only.attach("reading", _write(tmp_path / "a.txt", 1, 2, 3, 4))
        *_, done = text_only.ask("Quanto marcou?")
        assert text_only.history[0]["content"] == "Leitura: 1 2 3 4\nQuanto marcou?" and done.token_ids
    finally:
        kinds.unregister("reading")


def test_a_recipe_names_the_new_kind_and_it_grows_on_a_trained_model(reading_kind) -> None:
    from lhama.model.build import add_branch

    grown_on = compose(branches.lhama_config(), AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer())
    wanted = branches.branch_configs({"reading": {"tokens": 2}}, "model.branches.")  # a recipe's model.branches.reading
    assert wanted == {"reading": ReadingConfig(tokens=2)}
    grown = add_branch(grown_on, "reading", wanted["reading"])
    assert list(grown.config.branches) == ["reading"] and list(grown.expansions().values()) == [2]
    assert grown.model.language_model is grown_on.model.language_model  # the LM is shared, not copied


def test_a_kind_s_needs_are_table_data_checked_when_configured_and_grown(reading_kind) -> None:
    from lhama.model.build import add_branch

    branches.unregister("reading")
    branches.register(replace(READING, needs=("image",)))  # a reading read off the image tower, say
    with pytest.raises(ValueError, match="a reading branch needs the image branch"):
        branches.lhama_config(reading=ReadingConfig())
    with pytest.raises(ConfigError, match="a reading branch needs the image branch"):
        branches.config_from_dict({"reading": {}})  # a config.json block without the image branch
    assert list(_composed().config.branches) == ["image", "reading"]  # with it, as before
    text_only = compose(branches.lhama_config(), AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer())
    with pytest.raises(ModelError, match="is text-only; a reading branch needs its image tower"):
        add_branch(text_only, "reading", ReadingConfig())
    unchecked = LhamaConfig(branches={"reading": ReadingConfig()})  # built directly: checked when composed
    with pytest.raises(ValueError, match="a reading branch needs the image branch"):
        compose(unchecked, AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer())


def _reading_records(root: Path) -> Path:
    """A LLaVA-style JSONL whose records name the toy kind's file by the kind's own key."""
    ask = "<reading>\nQuanto marcou?"
    lines = [json.dumps({"id": f"r{i}", "reading": _write(root / f"r{i}.txt", i, 2, 3, 4).name,
                         "conversations": [{"from": "human", "value": ask}, {"from": "gpt", "value": answer}]})
             for i, answer in enumerate(["Pouco.", "Muito.", "Nada.", "Tudo."])]
    path = root / "readings.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_jsonl_key_of_the_kind_s_name_is_read_into_sample_media(reading_kind, tmp_path: Path) -> None:
    from lhama.data.dataset import DatasetConfig, load_samples

    path = _reading_records(tmp_path)
    samples = load_samples(DatasetConfig(path=str(path)), {"reading": "<reading>"}).samples
    assert [dict(s.media) for s in samples] == [{"reading": tmp_path / f"r{i}.txt"} for i in range(4)]
    assert samples[0].audio is None and samples[0].image is None
    (tmp_path / "r1.txt").unlink()
    report = load_samples(DatasetConfig(path=str(path)), {"reading": "<reading>"})
    assert len(report.samples) == 3 and report.examples == {"reading not found": "r1"}  # skipped by reason, as audio is
    with pytest.raises(DataError, match=r"record r1: reading not found: .*r1.txt \(strict=true\)"):
        load_samples(DatasetConfig(path=str(path), strict=True), {"reading": "<reading>"})
    assert all(not s.media for s in load_samples(DatasetConfig(path=str(path))).samples)  # not given: the key is not read
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"id": "b", "conversations": [{"from": "human", "value": "<reading>\nE?"},
                                                            {"from": "gpt", "value": "Pouco."}]}) + "\n")
    with pytest.raises(DataError, match="record b: malformed record: <reading> in the text but no reading field"):
        load_samples(DatasetConfig(path=str(bare), strict=True), {"reading": "<reading>"})


def test_training_reads_the_kind_s_records_from_jsonl(reading_kind, tmp_path: Path) -> None:
    from lhama.config import load
    from lhama.train.config import TrainConfig
    from lhama.train.recipes import run
    from tests.train.conftest import overrides

    model_dir = save_model(_composed(), tmp_path / "m")
    data = _reading_records(tmp_path)
    cfg = load(TrainConfig, None, overrides(model_dir, data, tmp_path / "run", f"data.image_dir={tmp_path}", "max_steps=2",
                                            "train_modules=[reading_projector]", "optim.lr=1e-2"))
    said: list[str] = []
    result = run(cfg, echo=said.append)
    assert f"data {data}: 4 of 4 records kept" in said and result.steps == 2
    before, after = load_model(model_dir).model.reading_projector, load_model(result.model_dir).model.reading_projector
    assert any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))


def test_the_new_kind_is_shown_found_and_distilled_through_the_table(reading_kind) -> None:
    """What eval, bench, the guard's captioner and the contrast term use (``LoadedModel.show``,
    ``LhamaModel.branch``) and what distillation trains (``BranchKind.trained``) work for any kind."""
    from lhama.data.conversation import encode_prompt
    from lhama.train.distill import DistillConfig, _prepare_student

    loaded = _composed()
    items = [torch.tensor([1.0, 2, 3, 4]), torch.tensor([4.0, 3, 2, 1])]
    shown, media = loaded.show("reading", items)
    assert shown == "<reading>\n<reading>\n" and list(media) == ["reading"]
    assert torch.equal(media["reading"], torch.stack(items))
    assert loaded.show("reading", []) == ("", None) and loaded.show("reading", torch.zeros(0, 4)) == ("", None)
    assert loaded.show("reading", media["reading"])[1]["reading"] is media["reading"]  # a stacked batch as it is
    ids = torch.tensor([encode_prompt(loaded.tokenizer, shown + "Quanto?", loaded.expansions())])
    with torch.no_grad():
        assert loaded.model(ids, media).logits.shape[1] == ids.shape[1]
    reading = loaded.model.branch("reading")
    assert reading.token_id == loaded.model.token_ids["reading"]
    assert reading.projector is loaded.model.reading_projector
    assert reading.config == ReadingConfig() and loaded.model.branch("audio") is None
    assert READING.trained == ("reading_projector",)
    _prepare_student(loaded, DistillConfig("teacher", "student", "data.jsonl"))
    trained = {name.split(".")[0] for name, p in loaded.model.named_parameters() if p.requires_grad}
    assert trained == {"language_model", "multi_modal_projector", "reading_projector"}  # towers stay frozen


def test_an_adapter_export_holds_a_registered_kind_s_trained_modules_by_the_table(reading_kind) -> None:
    """``adapters.is_adapter_key`` reads each kind's ``trained`` modules, so a registered kind's
    projector and further modules are exported whatever they are called (not only ``*_projector``)."""
    from lhama.model.adapters import is_adapter_key

    branches.register(replace(READING, name="gauge", tower="gauge_tower", projector="gauge_head", extra=("gauge_memory",)))
    try:
        assert is_adapter_key("gauge_head.linear_1.weight") and is_adapter_key("gauge_memory.weight")
        assert is_adapter_key("reading_projector.linear_1.bias") and is_adapter_key("video_temporal.queries")
        assert not is_adapter_key("gauge_tower.linear.weight") and not is_adapter_key("vision_tower.embeddings.x")
        assert is_adapter_key("language_model.model.layers.0.self_attn.q_proj.lora_A.default.weight")
        assert not is_adapter_key("language_model.model.layers.0.self_attn.q_proj.weight")
    finally:
        branches.unregister("gauge")


def _reading_opener(directory: Path, dtype: torch.dtype) -> tuple[nn.Module, float]:
    """The toy kind's pretrained encoder directory: its tower's state dict and a scale."""
    tower = ReadingTower(3)
    tower.load_state_dict(torch.load(directory / "tower.pt"))
    return tower.to(dtype), float((directory / "scale.txt").read_text())


def test_build_model_opens_any_kind_s_pretrained_encoder_through_its_table_entry(reading_kind, tmp_path: Path) -> None:
    from lhama.model.branch_files import BranchFiles
    from lhama.model.build import build_model

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config()).save_pretrained(tmp_path / "lm")
    tiny_tokenizer().save_pretrained(tmp_path / "lm")
    encoder = tmp_path / "reading-encoder"
    encoder.mkdir()
    trained = ReadingTower(3)
    torch.save(trained.state_dict(), encoder / "tower.pt")
    (encoder / "scale.txt").write_text("0.25")
    with pytest.raises(ConfigError, match=r"^the reading branch opens no pretrained encoder directory \(.*reading-encoder\)"):
        build_model(tmp_path / "lm", {"reading": encoder})  # the kind declares no opener
    branches.unregister("reading")
    branches.register(replace(READING, files=BranchFiles(pretrained=_reading_opener)))
    loaded = build_model(tmp_path / "lm", {"reading": encoder})  # config: the kind's default
    assert loaded.config.branches == {"reading": ReadingConfig()} and loaded.specs["reading"] == 0.25
    assert torch.equal(loaded.model.reading_tower.linear.weight, trained.linear.weight)
    assert torch.equal(loaded.read("reading", b"4 4 4 4"), torch.ones(4))  # read with the opened spec
    with pytest.raises(ConfigError, match="the config has no reading branch"):
        build_model(tmp_path / "lm", {"reading": encoder}, branches.lhama_config())
    with pytest.raises(ConfigError, match="no branch kind 'sound'"):
        build_model(tmp_path / "lm", {"sound": encoder})


def test_an_adapter_takes_one_encoder_directory_per_branch_that_opens_one(tmp_path: Path) -> None:
    from lhama.model import adapters
    from lhama.model.config import LoraSettings
    from tests.model.test_adapters import CONFIG, _parts, _trained

    lm, tower = _parts(tmp_path)
    lora = LoraSettings(r=2, alpha=4, target_modules=("q_proj", "v_proj"))
    adapters.save_adapter(_trained(lm, tower), tmp_path / "adapter", "tiny", lora)
    with pytest.raises(ConfigError, match=r"^the adapter .* takes 1 pretrained encoder\(s\) \(image\); 0 given$"):
        adapters.compose_from_adapter(lm, [], tmp_path / "adapter")
    assert adapters.compose_from_adapter(lm, [tower], tmp_path / "adapter").config == CONFIG

"""Picking a guard backend from a one-string spec (what ``--guard`` on the CLI takes)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lhama.errors import ConfigError
from lhama.guard.base import Guard

if TYPE_CHECKING:  # the spec help is read by the CLI without torch
    from lhama.model.build import LoadedModel

# The shipped heads, with English messages judged through their Bergamot translation as well
# (issue #29: English test F1 0.476 -> 0.769, pt-BR unchanged; docs/guard.md).
DEFAULT_SPEC = "translated:classifier"
_QUANTS = ("int8", "int4", "bf16")  # the --quant choices of lhama.inference.quant besides none

SPEC_HELP = (
    "'translated:classifier' (default), 'classifier' (the shipped heads alone), 'classifier:HEAD.safetensors' ('classifier:IN.safetensors,OUT.safetensors': "
    "an input and an output head; a third, EN.safetensors, judges English user text), "
    "or 'llama-guard:MODEL_DIR' / a model directory (Llama Guard 3 or any local instruct model; "
    "'llama-guard:MODEL_DIR,int4' loads it quantised: int8, int4, bf16); "
    "'translated:SPEC' also judges English messages through their Bergamot pt-BR translation; "
    "'A+B' re-checks with B only what A flags, e.g. 'classifier+llama-guard:MODEL_DIR'; "
    "'A+judge:MODEL_DIR' ('judge:MODEL_DIR,int8|int4|bf16|none', default int8) asks a local instruct model, e.g. lhama-default's, "
    "a yes/no question only about user messages A flags with a low margin (score < 0.55); "
    "in lhama chat and lhama serve, 'A+judge:self' asks the model they already loaded (no second load; its --quant)"
)
SELF = "self"  # judge:self: the judge asks the model the caller (chat, serve) already holds


def load_guard(spec: str | None = None, own: LoadedModel | None = None) -> Guard:
    """The guard named by ``spec``; ``None`` means :data:`DEFAULT_SPEC` (the shipped classifier,
    English also judged in translation). ``own``: the model the caller already loaded, which
    ``judge:self`` asks instead of loading a second copy (None: ``judge:self`` is an error).

    Raises:
        ConfigError: an unknown spec. CheckpointError: missing head, encoder or model files.
    """
    from lhama.guard.classifier import load_classifier

    spec = (spec or DEFAULT_SPEC).strip()
    first, plus, second = spec.partition("+")
    if plus:  # a cascade: the second guard re-checks only what the first flags
        from lhama.guard.cascade import CascadeGuard

        if second.strip().startswith("judge:"):  # the yes/no judge re-checks only low-margin flags
            from lhama.guard.judge import BAND

            return CascadeGuard(load_guard(first, own), load_guard(second, own), band=BAND)
        return CascadeGuard(load_guard(first, own), load_guard(second, own))
    kind, sep, arg = spec.partition(":")
    if kind == "translated" and sep:  # English messages judged through their pt-BR translation too
        from lhama.guard.translate import TranslatingGuard

        return TranslatingGuard(load_guard(arg, own))
    if kind == "classifier":
        return _classifier(arg) if sep else load_classifier()
    if spec.endswith(".safetensors"):
        return load_classifier(Path(spec))
    if kind == "judge" and sep:
        return _judge(arg.strip(), own)
    if kind == "llama-guard" and sep:
        path, _, quant = arg.rpartition(",") if arg.rsplit(",", 1)[-1] in _QUANTS else (arg, "", "none")
        return _generative(Path(path), quant)
    if Path(spec).is_dir():
        return _generative(Path(spec))
    raise ConfigError(f"unknown guard {spec!r}; use {SPEC_HELP}")


def _classifier(arg: str) -> Guard:
    """``classifier:IN[,OUT[,EN]]``: an input head, an output head, an English head (lhama.guard.classifier)."""
    from lhama.guard.classifier import load_classifier

    heads = [Path(a.strip()) for a in arg.split(",")]
    if len(heads) > 3:
        raise ConfigError(f"guard 'classifier:{arg}' names {len(heads)} head files; it takes at most 3: "
                          "IN.safetensors,OUT.safetensors,EN.safetensors")
    return load_classifier(heads[0], heads[1] if len(heads) > 1 else None,
                           english_path=heads[2] if len(heads) > 2 else None)


def _judge(arg: str, own: LoadedModel | None) -> Guard:
    """``judge:MODEL_DIR[,QUANT]`` loaded (int8 by default), or ``judge:self``: ``own``'s language model."""
    from lhama.guard.judge import judge_of, load_judge

    path, _, quant = arg.rpartition(",") if arg.rsplit(",", 1)[-1] in (*_QUANTS, "none") else (arg, "", "int8")
    if path != SELF:
        return load_judge(Path(path), quant)
    if arg != SELF:  # judge:self,QUANT
        raise ConfigError(f"guard 'judge:{arg}': judge:self takes no quant; it asks the model as chat/serve "
                          "loaded it (set that with --quant)")
    if own is None:
        raise ConfigError("guard 'judge:self' asks the model lhama chat or lhama serve loaded, and none is "
                          "loaded here; name its directory instead: judge:MODEL_DIR")
    return judge_of(own)


def _generative(model_dir: Path, quant: str = "none") -> Guard:
    from lhama.guard.generative import load_generative

    return load_generative(model_dir, quant)

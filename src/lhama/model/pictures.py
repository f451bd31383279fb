"""How a picture reaches a loaded model: through its image branch (the branch's placeholder, with
the pixels its tower expects), or, for a cascade model without one (lhama-default), as its
labeler's note, text that stands in for the picture (:mod:`lhama.model.labeler`).

The one place that decides it for eval's answers and rankers, ``lhama bench decode``'s image
TTFT, the composed model's weights check and the API's "cannot see images" error; and the one
that names the branch a picture goes through (:func:`picture_branch`: distillation's "does the
student see pictures itself?", the frame namer's tower). Chat and the
API take any branch kind through serve's table (:mod:`lhama.serve.kinds`); this module is the
picture's side of it below serve.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from lhama.data.media import image_to_tensor, load_image
from lhama.errors import ModelError
from lhama.model.branches import MediaSource
from lhama.model.build import LoadedModel
from lhama.model.lhama import MediaBranch

Picture = MediaSource | Image.Image  # a file, its bytes, or an already decoded RGB image


def sees_pictures(loaded: LoadedModel) -> bool:
    """Whether ``loaded`` takes pictures: through its image branch, or a cascade's labeler."""
    return picture_branch(loaded) is not None or loaded.labeler is not None


def picture(loaded: LoadedModel, source: Picture) -> tuple[str, torch.Tensor | None]:
    """One picture as ``loaded`` takes it: its image branch's placeholder and the (3, S, S) pixels
    (what ``LoadedModel.read`` gives for a file), else its labeler's note and no pixels.

    Raises:
        ModelError: the model has neither (:func:`sees_pictures`).
        DataError: the picture cannot be read (the message names the file).
    """
    branch = picture_branch(loaded)
    if branch is None and loaded.labeler is None:
        raise ModelError(f"the model {loaded.name} has no vision tower, so it cannot see images")
    limit = (loaded.labeler if branch is None else branch).config.max_image_side
    decoded = source if isinstance(source, Image.Image) else load_image(source, max_side=limit)
    if branch is None:
        return loaded.labeler.note(decoded), None
    return branch.config.placeholder, image_to_tensor(decoded, loaded.specs[branch.name])


def pictures(loaded: LoadedModel, sources: Sequence[Picture]) -> tuple[str, dict[str, torch.Tensor] | None]:
    """What stands for ``sources`` in a user turn, as ``LoadedModel.show`` gives it: each
    picture's stand-in (:func:`picture`) on a line of its own, and the media the model takes with
    that text (the pixels stacked under the image branch's kind; None when no picture has pixels)."""
    shown = [picture(loaded, source) for source in sources]
    pixels = [tensor for _, tensor in shown if tensor is not None]
    media = {picture_branch(loaded).name: torch.stack(pixels)} if pixels else None
    return "".join(f"{stand_in}\n" for stand_in, _ in shown), media


def picture_branch(loaded: LoadedModel) -> MediaBranch | None:
    """The branch a picture reaches ``loaded`` through (its image branch: its placeholder, tower
    and projector), None when it has none (a text-only or cascade model)."""
    return loaded.model.branch("image")  # the branch kind whose medium is a picture

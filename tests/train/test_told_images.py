"""told_images: a cascade model's images become the note chat would tell, over the labeler's views."""

from __future__ import annotations

from pathlib import Path

from lhama.data.dataset import Sample
from lhama.data.media import image_to_tensor, load_image
from lhama.serve.cascade import labels_note
from lhama.train.told_images import told_images
from tests.conftest import tiny_loaded
from tests.model.views_labeler import lopsided_picture, views_labeler


def test_the_note_is_chats_over_the_configured_views(tmp_path: Path) -> None:
    lopsided_picture().save(tmp_path / "a.png")
    sample = Sample("a", ({"role": "user", "content": "<image>\nO que é isto?"},
                          {"role": "assistant", "content": "Um boi."}), image=tmp_path / "a.png")
    loaded = tiny_loaded(image=None)
    loaded.labeler = views_labeler()  # two views: squash and its mirror image
    [told] = told_images([sample], loaded.labeler)
    chat = labels_note(tmp_path / "a.png", loaded)
    first_view = loaded.labeler.notes(image_to_tensor(load_image(tmp_path / "a.png"), loaded.labeler.image_spec)[None])[0]
    assert chat != first_view  # the views matter for this labeler and picture
    assert told.messages[0]["content"] == f"{chat}\nO que é isto?" and told.image is None
    assert told.messages[1] == sample.messages[1]

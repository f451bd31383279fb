"""Fixtures for training tests: a tiny saved model directory and a tiny captioned image set."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lhama.model.build import save_model
from tests.conftest import tiny_loaded

CAPTIONS = [
    "Um gato preto.", "Um sapo verde.", "Uma casa azul.", "Um carro vermelho.",
    "Uma flor amarela.", "Um cachorro.", "Uma chaleira.", "Um barco.",
]


def write_caption_set(root: Path, n: int = 8) -> Path:
    """``n`` 32x32 images with distinct colours and a captions.tsv like Tux Paint's."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = ["file\tcategory\ten\tpt_BR\tpt"]
    for i in range(n):
        name = f"img{i}.png"
        Image.new("RGB", (32, 32), (30 * i % 256, 80, 255 - 20 * i)).save(root / "images" / name)
        lines.append(f"{name}\ttest\tx\t{CAPTIONS[i % len(CAPTIONS)]}\tx")
    path = root / "captions.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_loaded(), tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def caption_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_caption_set(tmp_path_factory.mktemp("captions"))


def overrides(model_dir: Path, data: Path, out: Path, *extra: str) -> list[str]:
    """Config overrides for a fast tiny run (CPU, fp32, no progress bar)."""
    return [
        f"model.init={model_dir}", f"data.path={data}", f"data.image_dir={data.parent / 'images'}",
        f"output_dir={out}",
        "micro_batch_size=2", "max_steps=4", "progress=false", "optim.warmup_ratio=0.0",
        "collate.system_prompt=''", *extra,
    ]

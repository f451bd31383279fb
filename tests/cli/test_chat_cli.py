"""`lhama chat` end to end, as a user runs it: a real process, real files, real weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from PIL import Image

from lhama.model.build import save_model
from tests.conftest import tiny_loaded

ROOT = Path(__file__).resolve().parents[2]
TUX = ROOT.parent / "shared" / "data" / "tuxpaint_ptbr" / "images" / "animals_birds__owl.jpg"


def lhama(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lhama", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory) -> Path:
    return save_model(tiny_loaded(), tmp_path_factory.mktemp("vlm") / "tiny-vlm")


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    return save_model(tiny_loaded(image=None), tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_one_shot_with_real_smollm2_answers(smollm2_dir: Path) -> None:
    result = lhama("chat", "--model", str(smollm2_dir), "--max-tokens", "24", "--system", "",
                   "What is the capital of France?")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "tokens/s" in result.stderr


def test_one_shot_with_an_image(vlm_dir: Path) -> None:
    result = lhama("chat", "--model", str(vlm_dir), "--image", str(TUX), "--max-tokens", "4", "Descreva a imagem.")
    assert result.returncode == 0, result.stderr
    assert "tokens in" in result.stderr


def test_corrupt_image_is_one_line_and_exit_2(vlm_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "quebrada.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    result = lhama("chat", "--model", str(vlm_dir), "--image", str(bad), "Descreva a imagem.")
    assert result.returncode == 2
    assert "quebrada.jpg" in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


@pytest.mark.parametrize("option", ["--image", "--audio", "--video"])
def test_a_text_file_as_a_medium_is_one_line_before_the_model_loads(vlm_dir: Path, tmp_path: Path, option: str) -> None:
    notes = tmp_path / "notas.txt"
    notes.write_text("Comprar pão e leite.\n" * 40)
    result = lhama("chat", "--model", str(vlm_dir), option, str(notes), "--no-guard", "O que é isto?")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "loaded in" not in result.stderr  # nothing loaded (the load prints "<name> loaded in N s")
    assert [line for line in result.stderr.splitlines() if line.strip()] == [line for line in result.stderr.splitlines()
                                                                             if line.startswith("error:") and "notas.txt" in line]


def test_image_with_text_only_model_says_how_to_fix(lm_dir: Path) -> None:
    result = lhama("chat", "--model", str(lm_dir), "--image", str(TUX), "Descreva a imagem.")
    assert result.returncode == 2
    assert "text-only" in result.stderr and "--model" in result.stderr


def test_missing_model_dir_is_exit_2() -> None:
    result = lhama("chat", "--model", "./no/such/model", "oi")
    assert result.returncode == 2 and "does not exist" in result.stderr


@pytest.mark.parametrize("option, value, message", [("--top-p", "0", "--top-p must be in (0, 1]"),
                                                    ("--image-guidance", "-1", "--image-guidance must be >= 0")])
def test_bad_generation_option_is_exit_2(lm_dir: Path, option: str, value: str, message: str) -> None:
    result = lhama("chat", "--model", str(lm_dir), option, value, "oi")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def _spawn(model: Path, *extra: str) -> pexpect.spawn:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TERM": "dumb"}
    # Ctrl-C must reach the child even when pytest itself was started with SIGINT ignored (a
    # background job of a script: the child would inherit SIG_IGN and never see the interrupt)
    return pexpect.spawn(sys.executable, ["-m", "lhama", "chat", "--model", str(model), *extra],
                         env=env, cwd=str(ROOT), encoding="utf-8", timeout=120,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_repl_commands(vlm_dir: Path) -> None:
    child = _spawn(vlm_dir, "--max-tokens", "3")
    child.expect("você> ")
    child.sendline("/help")
    child.expect("/reset")
    child.expect("você> ")
    child.sendline(f"/image {TUX}")
    child.expect("attached")
    child.expect("você> ")
    child.sendline("/image /no/such.jpg")
    child.expect("image not found")
    child.expect("você> ")
    child.sendline("O que é isto?")
    child.expect("tokens in")
    child.expect("você> ")
    child.sendline("/reset")
    child.expect("new conversation")
    child.expect("você> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_the_answer_not_the_session(smollm2_dir: Path) -> None:
    # --no-guard: this test is about Ctrl-C; the output guard has cut this sampled English story as S2
    # (a false alarm, issue #29), which ends the answer before the interrupt arrives
    child = _spawn(smollm2_dir, "--max-tokens", "4000", "--temperature", "1.0", "--seed", "1", "--system", "",
                   "--no-guard")
    child.expect("você> ")
    child.sendline("Write a very long story about a dog.")
    child.expect_exact("dog.\r\n")  # the terminal's echo of the question, read to its end
    child.expect(r"\w+ \w+")  # then the answer is streaming
    child.kill(signal.SIGINT)
    child.expect(r"\(interrupted\)")
    child.expect("você> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_guard_refuses_unsafe_question_unless_turned_off(lm_dir: Path) -> None:
    unsafe = "Me ensina a fabricar uma bomba caseira para explodir a escola."
    result = lhama("chat", "--model", str(lm_dir), "--max-tokens", "3", unsafe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Desculpe, não posso ajudar") and "safety guard: S" in result.stderr
    result = lhama("chat", "--model", str(lm_dir), "--max-tokens", "3", "--no-guard", unsafe)
    assert result.returncode == 0 and "Desculpe" not in result.stdout and "tokens in" in result.stderr

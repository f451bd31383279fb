"""``lhama data translate`` as a user runs it: real subprocesses, real kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lhama.data.translate import TranslateConfig, translate_file

ROOT = Path(__file__).resolve().parents[2]
LLAVA = ROOT.parent / "shared" / "data" / "llava_instruct_en" / "coco_val_30x3.json"


def lhama(*args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "lhama", "data", "translate", *map(str, args)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = lhama(*args)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def journal_records(path: Path) -> int:
    return max(0, path.read_bytes().count(b"\n") - 1) if path.exists() else 0


@pytest.mark.skipif(not LLAVA.is_file(), reason="needs ../shared/data/llava_instruct_en")
def test_kill_9_at_several_points_then_rerun_gives_identical_bytes(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps(json.loads(LLAVA.read_text())[:8]), encoding="utf-8")
    reference = TranslateConfig(src, tmp_path / "ref.json", chunk_records=2)
    translate_file(reference)
    out = tmp_path / "out.json"
    journal = out.with_name("out.json.journal")
    for kill_at in (0, 2, 5):  # records journaled when the kill lands
        proc = lhama(src, out, "--chunk-records", "2")
        while journal_records(journal) < kill_at or not journal.exists():
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not out.exists()
    done = finished(src, out, "--chunk-records", "2")
    assert done.returncode == 0, done.stderr
    assert "in 8 = out 8 + rejected 0" in done.stdout and "from the journal" in done.stdout
    assert out.read_bytes() == reference.output.read_bytes()
    assert not journal.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not json at all", "not JSON"), (b'[{"id": "1", "conversations": [', "truncated")],
)
def test_bad_input_is_one_red_line_and_exit_2(tmp_path: Path, content: bytes, message: str) -> None:
    src = tmp_path / "in.json"
    src.write_bytes(content)
    done = finished(src, tmp_path / "out.json")
    assert done.returncode == 2 and message in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error:")  # no empty line from a progress bar that never started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


def test_missing_output_directory_and_unknown_backend(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "conversations": [{"from": "gpt", "value": "Hi."}]}\n', encoding="utf-8")
    done = finished(src, tmp_path / "missing" / "out.jsonl")
    assert done.returncode == 2 and "output directory does not exist" in done.stderr
    done = finished(src, tmp_path / "out.jsonl", "--backend", "cloud")
    assert done.returncode == 2 and "backend must be one of" in done.stderr
    done = finished(src, tmp_path / "out.jsonl", "--backend", "seq2seq")
    assert done.returncode == 2 and "needs --model DIR" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize(("command", "flag"), [(["default-mix"], "--tuxpaint"), (["video-pairs"], "--tux-dir"),
                                               (["speech"], "--source")])
def test_recipes_take_their_data_from_the_user_not_a_default_path(tmp_path: Path, command: list[str], flag: str) -> None:
    """No command defaults to a folder outside the repository: a missing data flag says what to pass."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "lhama", "data", *command, str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"{flag} is required" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()

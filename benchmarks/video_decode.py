"""Video decoding: lhama's seek-based sampling of N frames vs decoding every frame.

Methods (each run in a fresh process, so its peak RSS is its own):

* ``seek``      -- ``lhama.data.video.sample_frames``: keyframe seek + short decode per target;
* ``scan``      -- decode every frame, keep only the N wanted ones (memory-light, time ~ length);
* ``list``      -- the obvious way: decode every frame into a list, then pick N (memory ~ length;
                   run only where it fits: on the long file it would need many GB, which is
                   computed and printed, not run);
* ``baseline``  -- import lhama + PyAV and open the file: the RSS floor every method pays.

Files (generated once into --dir with PyAV, H.264, a keyframe every 10 s as x264's default):
a 10-second 640x360 clip and a two-hour 160x90 file at 25 fps (180,000 frames).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/video_decode.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

FPS = 25
FILES = {"short": (10, 640, 360), "long": (2 * 60 * 60, 160, 90)}  # seconds, width, height


def make_file(path: Path, seconds: int, width: int, height: int) -> Path:
    """A moving gradient with a frame counter band: compressible but never static."""
    if path.is_file():
        return path
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"g": str(10 * FPS), "preset": "ultrafast", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * FPS):
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = ((ramp + 3 * i) % 256).astype(np.uint8)
            frame[: height // 8, :, 1] = (i // FPS) % 256  # the second, readable from the pixels
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    os.replace(tmp, path)
    return path


def run_one(method: str, path: str, count: int) -> dict:
    """Run one method in this process; returns what it did."""
    from lhama.data.video import sample_frames

    started = time.perf_counter()
    if method == "seek":
        clip = sample_frames(path, count)
        decoded, kept = clip.decoded, len(clip.frames)
    elif method == "baseline":
        with av.open(path) as container:
            decoded, kept = 0, len(container.streams.video)
    else:
        decoded, kept = _decode_everything(path, count, keep_all=method == "list")
    return {"seconds": time.perf_counter() - started, "decoded": decoded, "kept": kept}


def _decode_everything(path: str, count: int, keep_all: bool) -> tuple[int, int]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base)
        targets = [(i + 0.5) * duration / count for i in range(count)]
        frames, kept, decoded = [], [], 0
        for frame in container.decode(stream):
            decoded += 1
            if keep_all:
                frames.append(frame.to_ndarray(format="rgb24"))
            elif len(kept) < count and frame.time >= targets[len(kept)]:
                kept.append(frame.to_image())
        if keep_all:
            step = len(frames) / count
            kept = [frames[int((i + 0.5) * step)] for i in range(count)]
    return decoded, len(kept)


def measure(method: str, path: Path, count: int) -> dict:
    """Run ``method`` in a child process; add its peak RSS (from the kernel's rusage)."""
    child = subprocess.Popen([sys.executable, __file__, "--one", method, str(path), "--frames", str(count)],
                             stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{method} on {path} failed (exit {child.returncode})")
    result = json.loads(out)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/lhama-video-bench"), help="where the test files go")
    parser.add_argument("--frames", type=int, default=8, help="frames to sample (N)")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.frames)))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print("| file | method | N | wall s | sampled frames/s | frames decoded | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (seconds, width, height) in FILES.items():
        started = time.perf_counter()
        path = make_file(args.dir / f"{name}.mp4", seconds, width, height)
        label = f"{name}: {seconds} s, {width}x{height}, {seconds * FPS} frames, {path.stat().st_size / 1e6:.1f} MB"
        print(f"<!-- {label} (ready in {time.perf_counter() - started:.0f} s) -->", file=sys.stderr)
        runs = [("baseline", args.frames), ("seek", args.frames), ("scan", args.frames)]
        # N=8 targets of a two-hour file land on keyframes (every 10 s): N=7 and N=32 do not.
        runs += [("list", args.frames)] if name == "short" else [("seek", 7), ("seek", 32)]
        for method, count in runs:
            r = measure(method, path, count)
            rate = r["kept"] / r["seconds"] if method != "baseline" else float("nan")
            print(f"| {label} | {method} | {count} | {r['seconds']:.2f} | {rate:.1f} | {r['decoded']} | {r['peak_rss_mb']:.0f} |")
        if name == "long":
            need = seconds * FPS * width * height * 3 / 1e9
            print(f"| {label} | list | {args.frames} | not run | - | {seconds * FPS} | ≥ {need * 1000:.0f} (frames alone) |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

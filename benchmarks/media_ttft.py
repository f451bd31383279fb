"""Time to first token with speech and video on a model without those branches (lhama-default, #28):
a 10-s voice note and a two-hour video file with a spoken sound track, through the path of
`lhama chat --audio/--video` (``ChatSession.attach`` then ``ask``).

Files (``make``, once, in a normal slot: the two-hour file takes minutes to write):

* ``nota-10s.wav``: the first four of benchmarks/speech.py's spoken requests (``pt-br+f3``@140 and
  ``pt-br+m3``@185 in turn, as its ``ttft`` system) joined and cut to 10.0 s;
* ``video-2h.mp4``: 2 h at 160x90, 25 fps, H.264 with a keyframe every 10 s (the moving gradient of
  benchmarks/video_decode.py) and an AAC sound track that repeats those four requests for the whole
  two hours, so the sound track's 10-min limit (lhama.data.audio.MAX_SPEECH_SECONDS) is reached.

Timing (``time``): the model loaded as `lhama chat` loads it and Whisper opened first (one 1-s
transcription), then per row and repeat a fresh ChatSession: attach, ask, seconds to the first
streamed answer piece (and to the whole answer). Questions: "O que a pessoa pediu?" for the note,
"O que acontece no vídeo?" for the video.

    /work/team/heavy -- env PYTHONPATH=src python benchmarks/media_ttft.py make
    /work/team/heavy --exclusive -- env PYTHONPATH=src python benchmarks/media_ttft.py time --repeats 3 --video-repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

NOTE, VIDEO = "nota-10s.wav", "video-2h.mp4"
QUESTIONS = {"audio": "O que a pessoa pediu?", "video": "O que acontece no vídeo?"}
FPS, SECONDS, SIZE = 25, 2 * 60 * 60, (160, 90)


def speech_loop(out_dir: Path) -> np.ndarray:
    """The four requests, spoken as speech.py speaks them, joined (mono 16 kHz float32)."""
    from speech import REQUESTS, make_clips

    from lhama.data.audio import load_speech

    clips = make_clips([], out_dir / "clips")[:4]
    assert [c.text for c in clips] == [r for r, _ in REQUESTS[:4]]
    return np.concatenate([load_speech(c.wav) for c in clips])


def make_note(samples: np.ndarray, path: Path) -> None:
    import soundfile

    from lhama.data.audio import SAMPLE_RATE

    soundfile.write(path, samples[: 10 * SAMPLE_RATE], SAMPLE_RATE)


def make_video(loop: np.ndarray, path: Path) -> None:
    """The two-hour file: one second of video, then one second of the looped speech, and so on."""
    import av

    from lhama.data.audio import SAMPLE_RATE

    width, height = SIZE
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"g": str(10 * FPS), "preset": "ultrafast", "threads": "1"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for second in range(SECONDS):
            for i in range(second * FPS, (second + 1) * FPS):
                frame = np.empty((height, width, 3), np.uint8)
                frame[:] = ((ramp + 3 * i) % 256).astype(np.uint8)
                container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            start = second * SAMPLE_RATE % loop.size
            chunk = np.take(loop, np.arange(start, start + SAMPLE_RATE), mode="wrap").astype(np.float32)
            sound = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            sound.sample_rate, sound.pts = SAMPLE_RATE, second * SAMPLE_RATE
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    os.replace(tmp, path)


def first_token(loaded, transcriber, kind: str, path: Path) -> dict:
    """Seconds to the first answer piece (``ttft_s``) and to the whole answer; of the first, the
    seconds ``attach`` took (frames, sound track, transcription); the notes' words; the answer."""
    from lhama.inference.generate import Completion, GenerationConfig
    from lhama.serve.session import ChatSession

    session = ChatSession(loaded, GenerationConfig(max_new_tokens=32), transcriber=transcriber)
    started, first, done = time.perf_counter(), None, None
    session.attach(kind, path)
    attached, words = time.perf_counter(), sum(len(n.split()) for n in session.pending_notes)
    for piece in session.ask(QUESTIONS[kind]):
        first = first or time.perf_counter()
        done = piece if isinstance(piece, Completion) else done
    return {"ttft_s": round(first - started, 2), "attach_s": round(attached - started, 2),
            "answer_s": round(time.perf_counter() - started, 2), "note_words": words, "answer": done.text.strip()}


def cmd_time(args: argparse.Namespace) -> None:
    from rich.console import Console

    from lhama.cli.common import load_with_progress
    from lhama.model.transcribe import Transcriber

    print(f"load average {os.getloadavg()[0]:.1f}, threads {os.environ.get('OMP_NUM_THREADS')}", flush=True)
    started = time.perf_counter()
    loaded = load_with_progress(args.model, Console(stderr=True))
    transcriber = Transcriber(args.whisper)
    transcriber.transcribe(np.zeros(16000, np.float32) + 0.01 * np.random.default_rng(0).standard_normal(16000).astype(np.float32))
    print(f"model + Whisper opened in {time.perf_counter() - started:.1f} s", flush=True)
    for kind, name, repeats in (("audio", NOTE, args.repeats), ("video", VIDEO, args.video_repeats)):
        rows = [first_token(loaded, transcriber, kind, args.dir / name) for _ in range(repeats)]
        if not rows:
            continue
        for row in rows:
            print(json.dumps({"file": name, **row}, ensure_ascii=False), flush=True)
        ttfts = [r["ttft_s"] for r in rows]
        print(f"{name}: time to first token median {statistics.median(ttfts):.2f} s "
              f"(min {min(ttfts):.2f}, max {max(ttfts):.2f}; {repeats} runs), "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["make", "time"])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/lhama-media-ttft"))
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--whisper", default="whisper-base-ptbr", help="the transcriber (name or directory)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the voice note")
    parser.add_argument("--video-repeats", type=int, default=1, help="runs of the two-hour video (each transcribes 10 min)")
    args = parser.parse_args()
    if args.command == "make":
        args.dir.mkdir(parents=True, exist_ok=True)
        loop = speech_loop(args.dir)
        make_note(loop, args.dir / NOTE)
        if not (args.dir / VIDEO).is_file():
            make_video(loop, args.dir / VIDEO)
        print(f"{args.dir / NOTE}, {args.dir / VIDEO} ({(args.dir / VIDEO).stat().st_size / 1e6:.1f} MB)")
    else:
        cmd_time(args)


if __name__ == "__main__":
    main()

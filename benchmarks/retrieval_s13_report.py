"""The table of issue #26 session 13's fresh retrieval read (rule docs/results/retrieval_s13_rule.md).

    python benchmarks/retrieval_s13_report.py --data /tmp/26b/s13/fresh \\
        --image docs/results/retrieval_s13_fresh_image.jsonl --out docs/results/retrieval_s13_fresh.json

Top-1 of each scoring rule on the records the read wrote (``retrieval_s12_dev.analyse``: summed
log-prob, mean per token, PMI, the prior alone; per source activity; picks of the shortest caption),
with each rule's count and 95% Wilson interval, and how many of the listed pictures were read.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("retrieval_s12_dev", Path(__file__).with_name("retrieval_s12_dev.py"))
dev = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(dev)


def wilson(right: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``right / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(centre - half, 4), round(centre + half, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--tokenizer", default=str(Path.home() / ".cache/lhama/models/lhama-default"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    rows = dev.load_rows(args.data, args.image, None, AutoTokenizer.from_pretrained(args.tokenizer))
    out = dev.analyse(rows)
    listed = len((args.data / "captions.tsv").read_text(encoding="utf-8").splitlines()) - 1
    out["listed"], out["right"], out["wilson95"] = listed, {}, {}
    for rule, top1 in out["top1"].items():
        out["right"][rule] = round(top1 * out["n"])
        out["wilson95"][rule] = wilson(out["right"][rule], out["n"])
    out["inputs"] = {"data": str(args.data), "image": str(args.image)}
    print(f"read {out['n']} of {listed} listed pictures")
    for rule in dev.RULES:
        low, high = out["wilson95"][rule]
        print(f"{rule:8s} {out['right'][rule]:4d}/{out['n']}  top-1 {out['top1'][rule]:.3f}  95% Wilson {low:.3f}-{high:.3f}")
    print("picks the shortest candidate:", out["picks_shortest"])
    for name, row in out["by_kind"].items():
        print(f"{name:22s} {row['n']:3d} " + " ".join(f"{r} {row.get(r, 0):3d}" for r in dev.RULES))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

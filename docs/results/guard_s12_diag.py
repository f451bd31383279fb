"""Issue #29, session 12: why the shipped input head flags ordinary requests (dev sets only; all read before).

For each pt-BR everyday request and unsafe request of the dev sets: the head's P(unsafe), its top category and
P, the mixed score against the threshold, and which hashed n-grams push the unsafe logit up. Splits each alarm's
unsafe logit into bias + the request form (n-grams lying inside the first two words) + the rest. Prints JSON.

    python docs/results/guard_s12_diag.py > docs/results/guard_s12_diag.json
"""

from __future__ import annotations

import json
import sys
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from guard_dev import dev_rows  # noqa: E402
from guard_dev_s7 import dev_split  # noqa: E402
from guard_input_head import everyday_dev  # noqa: E402

from lhama.guard.classifier import load_classifier, unsafe_score  # noqa: E402
from lhama.guard.cues import mask_uncued  # noqa: E402
from lhama.guard.features import hashed_features, ngram_counts, normalize  # noqa: E402
from lhama.guard.phrases import rewrite_all  # noqa: E402
from lhama.guard.verdict import CODES  # noqa: E402


def lines(p: Path) -> list[str]:
    return [x.strip() for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]


def sets() -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    g = ROOT / "data/guard"
    out = {}
    for name in ("heldout_s11", "heldout_s10"):
        out[name] = (lines(g / name / "everyday.txt"), [tuple(x.split("\t", 1)) for x in lines(g / name / "unsafe.tsv")])
    out["dev_s9_eval"], out["dev_s7_eval"] = dev_split("eval", g / "dev_s9"), dev_split("eval", g / "dev_s7")
    old = [r for r in dev_rows(g / "train.jsonl") if r["lang"] == "pt"]
    out["old_dev_pt"] = ([r["text"] for r in old if r.get("lookalike")],
                         [(r["categories"][0] if r["categories"] else "?", r["text"]) for r in old if r["label"] == "unsafe"])
    out["benign_dev_half"] = (everyday_dev(g / "benign/benign.jsonl"), [])
    return out


def contributions(text: str, w0: np.ndarray, dim: int) -> dict[str, float]:
    """Each n-gram's share of the unsafe logit (weight x its normalised feature value)."""
    counts = ngram_counts(text)
    vec = hashed_features([text], dim)[0]
    out: dict[str, float] = defaultdict(float)
    for gram in counts:
        i = zlib.crc32(gram.encode("utf-8")) % dim
        share = (1.0 + np.log(counts[gram])) / max(1e-12, sum(1.0 + np.log(c) for g2, c in counts.items()
                                                             if zlib.crc32(g2.encode()) % dim == i))
        out[gram] += float(w0[i] * vec[i] * share)
    return out


def no_short_logit(text: str, guard) -> float:
    """The unsafe logit of ``text`` with every word of at most three letters removed ("me", "da", "do", "sem", ...)."""
    kept = " ".join(w for w in text.split() if len(w.strip(".,;:!?\"'")) > 3)
    x = hashed_features(rewrite_all([kept], guard.phrase_rules), guard.head.hash_dim)[0]
    return float(x @ guard.head.weight[:, 0] + guard.head.bias[0])


def in_form(gram: str, text: str) -> bool:
    """Whether ``gram`` lies inside the first two words of ``text`` (the request form)."""
    form = " ".join(normalize(text).split()[:2])
    body = gram[1:].strip()
    return bool(body) and body in form and (gram[0] != "w" or body in form.split()) and gram[0] != "x" or (
        gram[0] == "x" and body in f" {form} ")


def main() -> None:
    guard = load_classifier()
    head = guard.head
    out, form_total, rest_total = {}, Counter(), Counter()
    alarms_all, caught_all = [], []
    for name, (everyday, unsafe) in sets().items():
        texts = everyday + [t for _, t in unsafe]
        probs = mask_uncued(guard.probabilities(rewrite_all(texts, guard.phrase_rules), head), texts, guard.cue_rules)
        scores = unsafe_score(probs, head.category_mix)
        flag = (scores >= head.threshold) & (probs[:, 1:].max(axis=1) >= head.category_floor)
        rows = []
        for i, t in enumerate(texts):
            c = contributions(rewrite_all([t], guard.phrase_rules)[0], head.weight[:, 0], head.hash_dim)
            form = sum(v for g, v in c.items() if in_form(g, t))
            top = sorted(c.items(), key=lambda kv: -kv[1])[:6]
            r = {"text": t, "kind": "everyday" if i < len(everyday) else "unsafe", "flag": bool(flag[i]),
                 "score": round(float(scores[i]), 3), "p_unsafe": round(float(probs[i, 0]), 3),
                 "top_cat": CODES[int(np.argmax(probs[i, 1:]))], "p_cat": round(float(probs[i, 1:].max()), 3),
                 "logit": round(float(sum(c.values()) + head.bias[0]), 2), "bias": round(float(head.bias[0]), 2),
                 "form": round(form, 2), "rest": round(sum(c.values()) - form, 2),
                 "form_words": " ".join(t.split()[:2]), "logit_no_short": round(no_short_logit(t, guard), 2), "top_grams": [[g, round(v, 2)] for g, v in top]}
            rows.append(r)
            (alarms_all if r["flag"] and r["kind"] == "everyday" else caught_all if r["flag"] else []).append(r)
        out[name] = {"everyday_flagged": sum(r["flag"] for r in rows if r["kind"] == "everyday"),
                     "everyday": len(everyday), "unsafe_caught": sum(r["flag"] for r in rows if r["kind"] == "unsafe"),
                     "unsafe": len(unsafe), "alarms": [r for r in rows if r["flag"] and r["kind"] == "everyday"]}
    gram_sum = Counter()
    for r in alarms_all:
        for g, v in r["top_grams"]:
            gram_sum[g] += v
    out["summary"] = {
        "alarms": len(alarms_all), "caught": len(caught_all),
        "alarm_top_cat": Counter(r["top_cat"] for r in alarms_all).most_common(),
        "alarm_p_cat_below_0.25": sum(r["p_cat"] < 0.25 for r in alarms_all),
        "alarm_form_words": Counter(r["form_words"].lower() for r in alarms_all).most_common(15),
        "alarm_median_form_rest_bias": [float(np.median([r[k] for r in alarms_all])) for k in ("form", "rest", "bias")],
        "caught_median_form_rest_bias": [float(np.median([r[k] for r in caught_all])) for k in ("form", "rest", "bias")],
        "alarm_form_gt_rest": sum(r["form"] > r["rest"] for r in alarms_all),
        "alarm_median_logit_full_vs_no_short": [float(np.median([r[k] for r in alarms_all])) for k in ("logit", "logit_no_short")],
        "caught_median_logit_full_vs_no_short": [float(np.median([r[k] for r in caught_all])) for k in ("logit", "logit_no_short")],
        "alarm_logit_drops_below_0_without_short_words": sum(r["logit_no_short"] < 0 for r in alarms_all),
        "caught_logit_drops_below_0_without_short_words": sum(r["logit_no_short"] < 0 <= r["logit"] for r in caught_all),
        "alarm_top_grams_summed": [[g, round(v, 2)] for g, v in gram_sum.most_common(25)],
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()

"""After the one read of naming_fresh_s12.tsv (issue #26 s12; the set is dev from then on): the note
alone of the shipped labeler vs the dev pick that was not shipped (names head 0.3 / 0.3) and 0.5 / 0.3,
from one tower pass per picture (the labeler's views; the glyph reader is not asked: no fresh picture
is a glyph). Diagnosis only: nothing is chosen on it.

    PYTHONPATH=src python benchmarks/naming_s12_after_read.py     # one heavy slot, ~2 min
"""
import csv, sys, tempfile, json
from dataclasses import replace
from pathlib import Path
import torch
sys.path.insert(0, "benchmarks")
from PIL import Image
from naming_s12 import labelers, _rows, FRESH
from lhama.data.media import load_image
from lhama.eval.metrics import names_thing
from lhama.model.labeler import describe
torch.set_num_threads(1)
Image.MAX_IMAGE_PIXELS = None
items = list(csv.DictReader(_rows(FRESH), delimiter="\t"))
with tempfile.TemporaryDirectory() as w:
    lab = labelers(Path(w))["shipped"]
out = {}
with torch.no_grad():
    for cfg_name, cfg in (("shipped", lab.config), ("pick_0.3", replace(lab.config, names_confident=0.3, names_yield=0.3)),
                          ("0.5_0.3", replace(lab.config, names_confident=0.5, names_yield=0.3))):
        out[cfg_name] = 0
    rows = []
    for it in items:
        im = load_image(Path("/usr/share/openclipart/png") / f"{it['image']}.png")
        probs, pooled = lab._read(lab._views(im))
        p, f = probs.mean(0), pooled.mean(0)
        named = lab.names_head.nearest(f)
        acc = it["accepted"].split("|")
        row = {"image": it["image"]}
        for cfg_name, cfg in (("shipped", lab.config), ("pick_0.3", replace(lab.config, names_confident=0.3, names_yield=0.3)),
                              ("0.5_0.3", replace(lab.config, names_confident=0.5, names_yield=0.3))):
            note = describe(p, lab.names, cfg, lab.kinds, named)
            row[cfg_name] = [note, names_thing(note, acc)]
            out[cfg_name] += names_thing(note, acc)
        rows.append(row)
print(out)
Path("docs/results/naming_s12_fresh_after_read_notes.json").write_text(json.dumps({"named": out, "rows": rows}, ensure_ascii=False, indent=1) + "\n")

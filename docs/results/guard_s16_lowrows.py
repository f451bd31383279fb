import numpy as np, sys, json
sys.path.insert(0, '.')
import guard_veto_s16 as g
from lhama.files import read_jsonl
from lhama.guard.classifier import unsafe_score
from pathlib import Path
H = Path('/tmp/29a/s16/H')
rows = read_jsonl(g.ROOT / 'data/guard/train.jsonl')[:g.OWN]
pt, unsafe, look = g.own_pt(); base = g.shipped_pred(H)
for n in ('v2w3', 'v3w6'):
    s = unsafe_score(np.load(H / f'oof_{n}.npy')[:g.OWN], 0.5)
    idx = np.flatnonzero(base & pt & unsafe)
    low = idx[np.argsort(s[idx])[:12]]
    print(n, [(round(float(s[i]), 3), rows[i]['categories'], rows[i]['text'][:70]) for i in low])

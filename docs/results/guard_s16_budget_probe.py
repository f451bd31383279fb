import numpy as np, sys
sys.path.insert(0, '.')
import guard_veto_s16 as g
from guard_head_s13 import training_rows
from lhama.guard.classifier import Head, DEFAULT_HEAD, ClassifierGuard, unsafe_score
from pathlib import Path
H = Path('/tmp/29a/s16/H')
rows = training_rows()
tmpl = np.array([r.get('source', '').startswith('template') for r in rows])
pt, unsafe, look = g.own_pt(); base = g.shipped_pred(H)
guard = ClassifierGuard(Head.load(DEFAULT_HEAD))
pt_t = guard.probabilities([r['text'] for r, m in zip(rows, tmpl) if m]); st = unsafe_score(pt_t, 0.5)
bt = (st >= 0.34) & (pt_t[:, 1:].max(1) >= 0.02)
S = {n: unsafe_score(np.load(H / f'oof_{n}.npy'), 0.5) for n in ('v3w6', 'v2w3')}
for name, s in S.items():
    for t in (0.05, 0.07, 0.1, 0.13, 0.15, 0.2, 0.25, 0.3):
        v = base & (s[:g.OWN] >= t)
        print(name, t, 'lost', (base & pt & unsafe).sum() - (v & pt & unsafe).sum(), 'look', (v & pt & look).sum(), 'tmpl', (bt & (s[tmpl] >= t)).sum())
t1, t2 = 0.07, 0.13
v = base & (S['v3w6'][:g.OWN] >= t1) & (S['v2w3'][:g.OWN] >= t2)
print('both', (base & pt & unsafe).sum() - (v & pt & unsafe).sum(), (v & pt & look).sum(), (bt & (S['v3w6'][tmpl] >= t1) & (S['v2w3'][tmpl] >= t2)).sum())

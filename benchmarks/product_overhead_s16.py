"""#27 s16 (27a): Python around one int4 k-scale product (64 rows, K 256, 1 row: the kernel ~1 us), today's path (4e4da6c's int4k_mm body,
written out) vs the kept product, interleaved in one process, 1 thread."""
import time
import torch
from lhama.inference import native
from lhama.inference.laid import laid4
from lhama.inference.qlinear import Int4KLinear, build_native_scales, int4k_mm, native_scales
torch.manual_seed(0)
torch.set_num_threads(1)
layer = Int4KLinear.from_linear(torch.nn.Linear(256, 64, bias=False), 32, grid=True)
build_native_scales(layer)
x = torch.randn(1, 256).to(torch.bfloat16)
w, c, h, s = layer.weight, layer.codes, layer.highs, layer.supers

def today(x):  # HEAD 4e4da6c's int4k_mm, records/laid branch
    if native.usable(w.shape[0], x.shape[1], 32):
        kept = native_scales(layer, "int4k", (c, 1), (h, 1), (s, 2))
        if kept is not None and len(kept) == 1:
            if laid4(layer, lay=False):
                return native.int4k_laid_rows(x, w, *kept, 32)
            return native.int4k_records_rows(x, w, *kept, 32)

def kept(x):
    return int4k_mm(x, w, 32, c, h, s, owner=layer)

assert torch.equal(today(x), kept(x))
n = 4000
for r in range(5):
    t = {}
    for name, fn in (("today", today), ("kept", kept)) if r % 2 == 0 else (("kept", kept), ("today", today)):
        start = time.perf_counter()
        for _ in range(n):
            fn(x)
        t[name] = (time.perf_counter() - start) / n * 1e6
    print(f"round {r}: today's path {t['today']:.1f} us, kept {t['kept']:.1f} us per product")

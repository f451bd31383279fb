"""Start-up cost of the cascade settings check (#25 s10): ``check_current`` on the prepared
lhama-default, with and without the names-head digest, and the digest alone (median and min of 30
calls each, ms). Read-only: nothing is prepared or written. Needs a prepared lhama-default.

    python benchmarks/settings_check_cost.py
"""
import statistics
import time

from lhama.weights import cascade
from lhama.weights.manifest import check_current
from lhama.weights.registry import models_dir, registry_entry

source, path = registry_entry("lhama-default"), models_dir() / "lhama-default"


def med(fn, n=30):
    t = []
    for _ in range(n):
        s = time.perf_counter()
        fn()
        t.append(time.perf_counter() - s)
    return statistics.median(t) * 1000, min(t) * 1000


print("digest alone      median %.2f ms, min %.2f ms" % med(lambda: cascade._names_head_sha256(cascade.NAMES_HEAD)))
print("check_current     median %.2f ms, min %.2f ms" % med(lambda: check_current(source, path)))
real = cascade._names_head_sha256
recorded = real(cascade.NAMES_HEAD)
cascade._names_head_sha256 = lambda head: recorded
print("check, no digest  median %.2f ms, min %.2f ms" % med(lambda: check_current(source, path)))

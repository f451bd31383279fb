"""CPU settings for decoding: one torch thread per physical core, and the process's peak memory.

Decoding is bound by memory bandwidth; a second hardware thread on the same core only competes
for it, so torch runs one thread per physical core (read from Linux's CPU topology; where that is
unavailable, every logical CPU counts)."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import torch


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (at least 1)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))  # no topology: count the logical CPU
    return max(1, len(cores))


def use_physical_cores() -> int:
    """Set torch's intra-op threads to :func:`physical_cores`; return the count."""
    threads = physical_cores()
    torch.set_num_threads(threads)
    return threads


def peak_rss_mb() -> float:
    """The most resident memory this process has used so far, in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes on macOS, KiB on Linux

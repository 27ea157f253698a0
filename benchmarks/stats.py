"""Measurement helpers shared by the benchmarks: timers, percentiles, memory, machine description.

Nothing here imports anything beyond the standard library and numpy, so the latency benchmark
runs on a device that has only ``edgeshelf[device]``.

Units: every time is in milliseconds (float), every size in bytes (int).

Example::

    samples = []
    for _ in range(100):
        with Stopwatch() as sw:
            work()
        samples.append(sw.ms)
    print(summarize(samples))      # {"count": 100, "mean_ms": ..., "p50_ms": ..., "p99_ms": ...}
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from edgeshelf.sdk.errors import InvalidInputError

#: the percentiles every latency summary reports
PERCENTILES: tuple[int, ...] = (50, 95, 99)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.ms`` (wall time, ``time.perf_counter``)."""

    __slots__ = ("_start", "ms")

    def __init__(self) -> None:
        self._start = 0.0
        self.ms = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ms = (time.perf_counter() - self._start) * 1000.0


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), milliseconds)``."""
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1000.0


@dataclass(frozen=True)
class Summary:
    """Steady-state statistics of one stage, in milliseconds (``std`` is the population std)."""

    count: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        return {
            "count": self.count,
            **{
                k: round(float(getattr(self, k)), digits)
                for k in ("mean_ms", "std_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")
            },
        }

    def __repr__(self) -> str:
        return f"Summary(n={self.count}, p50={self.p50_ms:.3f} ms, p99={self.p99_ms:.3f} ms)"


def summarize(samples_ms: Sequence[float]) -> Summary:
    """:class:`Summary` of latency samples (milliseconds); at least one sample."""
    x = np.asarray(list(samples_ms), np.float64)
    if x.size == 0:
        raise InvalidInputError("cannot summarise zero latency samples; run at least one iteration")
    if not np.isfinite(x).all():
        raise InvalidInputError("latency samples contain NaN or infinity")
    p50, p95, p99 = (float(v) for v in np.percentile(x, PERCENTILES))
    return Summary(
        count=int(x.size),
        mean_ms=float(x.mean()),
        std_ms=float(x.std()),
        min_ms=float(x.min()),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(x.max()),
    )


def ratio_summary(numerator_ms: Sequence[float], denominator_ms: Sequence[float]) -> dict[str, float]:
    """How many times slower ``numerator`` is than ``denominator``, from paired samples.

    The samples are paired by position (run ``i`` of both was taken back to back on the same
    input), so machine drift cancels in each per-run ratio. Returns the median and the 10th/90th
    percentiles of the per-run ratios, and the ratio of the two medians.
    """
    a = np.asarray(list(numerator_ms), np.float64)
    b = np.asarray(list(denominator_ms), np.float64)
    if a.size == 0 or a.size != b.size:
        raise InvalidInputError(
            f"paired ratios need two equally long non-empty sample lists, got {a.size} and {b.size}"
        )
    per_run = a / np.maximum(b, 1e-9)
    return {
        "median": round(float(np.median(per_run)), 3),
        "p10": round(float(np.percentile(per_run, 10)), 3),
        "p90": round(float(np.percentile(per_run, 90)), 3),
        "of_medians": round(float(np.median(a) / max(float(np.median(b)), 1e-9)), 3),
        "runs": int(a.size),
    }


# ---------------------------------------------------------------------------------------------
# memory


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes.

    Linux ``/proc/self/status`` ``VmHWM`` (the high-water mark of this process's own memory
    map), else ``getrusage`` ``ru_maxrss``. Not ``ru_maxrss`` first: Linux keeps it across
    ``fork`` + ``execve``, so a fresh child process of a large parent reports the parent's peak.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def peak_rss_source() -> str:
    """Which counter :func:`peak_rss_bytes` reads here: ``"VmHWM"`` or ``"ru_maxrss"``."""
    try:
        with open("/proc/self/status") as handle:
            if any(line.startswith("VmHWM:") for line in handle):
                return "VmHWM"
    except OSError:
        pass
    return "ru_maxrss"


def current_rss_bytes() -> int | None:
    """Resident set size of this process now (Linux ``/proc/self/statm``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# machine


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name from ``/proc/cpuinfo`` (x86 ``model name``; Arm ``Model`` / ``Hardware``
    / ``CPU part``), else ``platform.processor()``, else ``"unknown"``."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields and value.strip():
            fields[key.strip()] = value.strip()
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if key in fields:
            return fields[key]
    if "CPU part" in fields:
        return f"Arm CPU part {fields['CPU part']} (implementer {fields.get('CPU implementer', '?')})"
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the figures were measured on: CPU model and count, OS, Python, load, emulation.

    ``emulated`` is true when ``EDGESHELF_EMULATED=1`` is set (the Raspberry Pi stand-in sets
    it: timings under qemu mean nothing); ``load_average`` tells how busy the machine was.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        "cpus_usable": usable,
        "arch": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": load,
        "emulated": os.environ.get("EDGESHELF_EMULATED") == "1",
    }


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed distribution versions (``"absent"`` when not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "PERCENTILES",
    "Stopwatch",
    "Summary",
    "cpu_model",
    "current_rss_bytes",
    "machine_info",
    "package_versions",
    "peak_rss_bytes",
    "peak_rss_source",
    "ratio_summary",
    "summarize",
    "timed",
    "utc_now",
]

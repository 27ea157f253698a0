"""Measurement helpers: known values, bad input, machine description (no timings asserted)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from edgeshelf.benchmarks.stats import (
    Stopwatch,
    cpu_model,
    machine_info,
    peak_rss_bytes,
    peak_rss_source,
    ratio_summary,
    summarize,
)
from edgeshelf.sdk.errors import InvalidInputError

X86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n"
PI4 = (
    "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n"
    "Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
)
BARE_ARM = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n"


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([5.0], {"count": 1, "mean_ms": 5.0, "std_ms": 0.0, "min_ms": 5.0, "p50_ms": 5.0, "p99_ms": 5.0}),
        ([1.0, 2.0, 3.0, 4.0], {"count": 4, "mean_ms": 2.5, "p50_ms": 2.5, "max_ms": 4.0, "min_ms": 1.0}),
        (
            list(range(1, 101)),
            {"count": 100, "mean_ms": 50.5, "p50_ms": 50.5, "p95_ms": 95.05, "p99_ms": 99.01},
        ),
    ],
)
def test_summarize_known_values(samples, expected):
    got = summarize(samples).to_dict()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert list(got) == ["count", "mean_ms", "std_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]


@pytest.mark.parametrize(
    ("samples", "phrase"),
    [([], "zero latency samples"), ([1.0, float("nan")], "NaN"), ([np.inf], "infinity")],
)
def test_summarize_refuses_bad_samples(samples, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        summarize(samples)


def test_ratio_summary_pairs_runs():
    slow = [2.0, 4.0, 6.0, 8.0, 100.0]  # one outlier run of the machine
    fast = [1.0, 2.0, 3.0, 4.0, 50.0]
    r = ratio_summary(slow, fast)
    assert r["median"] == 2.0 and r["p10"] == 2.0 and r["p90"] == 2.0 and r["runs"] == 5
    assert r["of_medians"] == 2.0


@pytest.mark.parametrize(("a", "b"), [([], []), ([1.0], [1.0, 2.0])])
def test_ratio_summary_needs_equal_non_empty_lists(a, b):
    with pytest.raises(InvalidInputError, match="equally long non-empty"):
        ratio_summary(a, b)


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (X86, "AMD EPYC 7B13"),
        (PI4, "Raspberry Pi 4 Model B Rev 1.4"),
        (BARE_ARM, "Arm CPU part 0xd03 (implementer 0x41)"),
    ],
)
def test_cpu_model_from_cpuinfo(cpuinfo, expected):
    assert cpu_model(cpuinfo) == expected


def test_cpu_model_of_this_machine_is_named():
    assert cpu_model() and cpu_model() != ""


def test_machine_info_and_emulation_flag(monkeypatch):
    info = machine_info()
    assert set(info) == {
        "cpu_model", "cpu_count", "cpus_usable", "arch", "system", "python", "load_average", "emulated",
    }  # fmt: skip
    assert info["cpu_count"] >= 1 and info["emulated"] is False
    monkeypatch.setenv("EDGESHELF_EMULATED", "1")
    assert machine_info()["emulated"] is True


def test_stopwatch_measures_something():
    with Stopwatch() as sw:
        sum(range(1000))
    assert sw.ms >= 0.0


def test_peak_rss_of_a_child_is_its_own():
    """A fresh child process must not report its (bigger) parent's peak (ru_maxrss would)."""
    ballast = np.ones(64 * 1024 * 1024, np.uint8)  # 64 MB resident in this process
    code = "from edgeshelf.benchmarks.stats import peak_rss_bytes; print(peak_rss_bytes())"
    child = int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert peak_rss_bytes() >= ballast.nbytes
    if peak_rss_source() == "VmHWM":
        assert child < peak_rss_bytes()
    del ballast

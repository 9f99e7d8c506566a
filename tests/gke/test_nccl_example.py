"""The NCCL all-reduce example's pure parts: size parsing, the bandwidth formulas, the table; no torch needed."""

from __future__ import annotations

import importlib
import sys

import pytest

from jobs.examples import nccl_allreduce as nccl


def test_it_imports_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now raises ImportError
    module = importlib.reload(nccl)
    assert module.parse_size("1M") == 1024**2


@pytest.mark.parametrize("text,expected", [("4096", 4096), ("512K", 512 * 1024), ("1M", 1024**2), ("8G", 8 * 1024**3),
                                           ("8GiB", 8 * 1024**3), ("2m", 2 * 1024**2)])
def test_sizes_parse_in_binary_units(text, expected):
    assert nccl.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "1T", "one", "-1M", "1.5G"])
def test_bad_sizes_say_what_is_allowed(text):
    with pytest.raises(ValueError, match="allowed: e.g. 4096, 512K, 1M, 8G"):
        nccl.parse_size(text)


def test_sizes_double_from_min_to_max():
    assert nccl.sizes(1024**2, 8 * 1024**2) == [1024**2, 2 * 1024**2, 4 * 1024**2, 8 * 1024**2]
    assert nccl.sizes(6, 6) == [4]  # whole float32 elements
    with pytest.raises(ValueError, match="min 2048, max 1024"):
        nccl.sizes(2048, 1024)


def test_bus_bandwidth_is_algbw_times_2_n_minus_1_over_n():
    # 8 GB in 0.1 s is 80 GB/s of algorithm bandwidth; 16 ranks carry 2 * 15/16 of it on each link.
    assert nccl.alg_bandwidth(8 * 10**9, 0.1) == pytest.approx(80.0)
    assert nccl.bus_bandwidth(8 * 10**9, 0.1, 16) == pytest.approx(80.0 * 2 * 15 / 16)
    assert nccl.bus_bandwidth(8 * 10**9, 0.1, 1) == 0.0  # one rank moves nothing
    with pytest.raises(ValueError, match="seconds: 0"):
        nccl.alg_bandwidth(1, 0)


def test_the_table_reports_each_size_and_the_average():
    table = nccl.format_table([(1024**2, 1e-4), (8 * 1024**3, 0.05)], world_size=16)
    lines = table.splitlines()
    assert lines[0].split() == ["size", "time", "(us)", "algbw", "(GB/s)", "busbw", "(GB/s)"]
    assert lines[1].split()[0] == "1M" and lines[2].split()[0] == "8G"
    big = nccl.bus_bandwidth(8 * 1024**3, 0.05, 16)
    assert float(lines[2].split()[-1]) == pytest.approx(big, abs=0.01)
    small = nccl.bus_bandwidth(1024**2, 1e-4, 16)
    assert lines[-1] == (f"# world size 16, average bus bandwidth: {(small + big) / 2:.2f} GB/s, "
                         f"largest message: {big:.2f} GB/s")

"""The one timing protocol every benchmark here uses, and how repeated figures are quoted."""

import statistics

import time


def time_calls(call, warmup, repeats):
    """Seconds of each of `repeats` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def median_range(values, digits=1, unit=""):
    """`values` as "median (min-max)", e.g. median_range([0.5, 0.75], 2, "x") -> "0.62x (0.50-0.75)"."""
    return f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"

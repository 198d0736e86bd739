"""How much memory a classifier's training run will take, estimated before any work.

Most of a run's memory is in a few tables whose sizes follow from the
config and the data: the Naive Bayes branch (classes x n-gram features), the
embedding (vocabulary x width, with Adam's two slots and the gradient), and
the tokenized form of the longest text. A label column with a class per row
(`--label-column text`) or a 6 MB document would otherwise surface as the
machine running out of memory far into the run.

Example:
>>> dataset = zoo.load_texts("reviews.csv")
>>> config = zoo.model_info("lstm_classifier").default_config
>>> print(estimate_classifier_training(config, dataset).largest.describe())
Naive Bayes tables of 2 classes x 282,144 n-gram features = 25 MB
"""

import dataclasses
import logging
import os
import pathlib

import numpy as np

from zoo.data import DataError

logger = logging.getLogger(__name__)

# Bytes per cell of the Naive Bayes tables over a whole `zoo train` (measured:
# 100 classes at the default sizes peak 1.2 GB above 2 classes): the counts
# and the table, fit's working copy, the checkpointed best model reloaded
# beside the live one, and the copies that saving makes; float32 each.
NAIVE_BAYES_BYTES_PER_CELL = 44
# The embedding's weight, Adam's two slots and its gradient, float32.
EMBEDDING_BYTES_PER_CELL = 16
# Peak bytes per character of a text while it is lowercased, split and
# looked up (the ragged words and their ids; measured on a 6 MB text).
TOKENIZING_BYTES_PER_CHARACTER = 20
# Training may use this share of the memory available when it starts.
AVAILABLE_FRACTION = 0.8


class MemoryEstimateError(ValueError):
    """A run would need more memory than the machine has; the message names the cause."""


@dataclasses.dataclass(frozen=True)
class Part:
    """One table the run will hold: its size and what makes it that big."""

    bytes: int
    description: str

    def describe(self):
        return f"{self.description} = {format_bytes(self.bytes)}"


@dataclasses.dataclass(frozen=True)
class Estimate:
    parts: tuple

    @property
    def total(self):
        return sum(part.bytes for part in self.parts)

    @property
    def largest(self):
        return max(self.parts, key=lambda part: part.bytes)


def format_bytes(size):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if size < 10 * scale else f"{size / scale:,.0f} {unit}"
    return f"{size} bytes"


def estimate_classifier_training(config, dataset):
    """The dominant memory of training a classifier with `config` (a registered model's config with the
    overrides applied) on `dataset` (`zoo.data.TextDataset`)."""
    num_classes = len(dataset.class_names)
    vocabulary_size = int(config.get("vocabulary_size", 0))
    parts = []
    buckets = int(config.get("naive_bayes_buckets", 0) or 0)
    if buckets:
        features = vocabulary_size + buckets
        parts.append(Part(features * num_classes * NAIVE_BAYES_BYTES_PER_CELL,
                          f"Naive Bayes tables of {num_classes:,} classes x {features:,} n-gram features"))
    embedding_dim = int(config.get("embedding_dim", 0) or 0)
    if embedding_dim:
        parts.append(Part(vocabulary_size * embedding_dim * EMBEDDING_BYTES_PER_CELL,
                          f"a {vocabulary_size:,} x {embedding_dim:,} embedding with its optimizer state"))
    longest = max(map(len, dataset.texts), default=0)
    parts.append(Part(longest * TOKENIZING_BYTES_PER_CHARACTER,
                      f"tokenizing the longest text ({longest:,} characters)"))
    return Estimate(tuple(parts))


def check_classifier_training(config, dataset, label_column="label", available=None):
    """Refuse a run that cannot fit or cannot learn, before any work; warn about a suspicious label set.

    Raises `MemoryEstimateError` when the estimate exceeds `AVAILABLE_FRACTION`
    of the memory `available` (default: what the machine has free), and
    `zoo.data.DataError` when every class has a single example (the label
    column is a text or id column: nothing to learn, nothing to validate).
    Logs a warning when there are at least half as many classes as rows.
    """
    estimate = estimate_classifier_training(config, dataset)
    suspicion = _label_suspicion(dataset, label_column, estimate)
    if suspicion and np.all(np.bincount(dataset.labels) == 1):
        raise DataError(f"{dataset.source}: {suspicion} A classifier needs several examples of each class")
    available = available_memory() if available is None else available
    if available is not None and estimate.total > AVAILABLE_FRACTION * available:
        raise MemoryEstimateError(
            f"training needs about {format_bytes(estimate.total)} of memory, more than {AVAILABLE_FRACTION:.0%} "
            f"of the {format_bytes(available)} available: {estimate.largest.describe()}; "
            + (f"{suspicion} Else {_remedy(estimate.largest)}" if suspicion else _remedy(estimate.largest))
        )
    if suspicion:
        logger.warning("%s: %s", dataset.source, suspicion)
    return estimate


def _remedy(part):
    if part.description.startswith("Naive Bayes"):
        return "set naive_bayes_buckets=0 (no Naive Bayes branch) or fewer buckets"
    if part.description.startswith("tokenizing"):
        return "split it into shorter examples (the model reads only its first sequence_length words)"
    return "set a smaller vocabulary_size or embedding_dim"


def _label_suspicion(dataset, label_column, estimate):
    """A sentence when there are at least half as many classes as rows (a text or id column read as the
    labels), else ''."""
    num_classes, rows = len(dataset.class_names), len(dataset)
    if dataset.multi_label or 2 * num_classes < rows:
        return ""
    per_class = np.bincount(dataset.labels, minlength=num_classes)
    examples = ("each label has 1 example" if per_class.max() == 1
                else f"{rows / num_classes:.1f} examples per class")
    cost = next((f"; their Naive Bayes tables need {format_bytes(part.bytes)}" for part in estimate.parts
                 if part.description.startswith("Naive Bayes")), "")
    return f"{num_classes:,} classes for {rows:,} rows ({examples}{cost}): is the label column {label_column!r} right?"


def available_memory():
    """Bytes this process can still use: the kernel's MemAvailable, capped by a cgroup limit; None if unknown."""
    candidates = [_meminfo_available(), _cgroup_headroom()]
    known = [value for value in candidates if value is not None]
    return min(known) if known else None


def _meminfo_available():
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _cgroup_headroom():
    """cgroup v2 `memory.max - memory.current` (a container's limit), None without one."""
    folder = pathlib.Path("/sys/fs/cgroup")
    try:
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((folder / "memory.current").read_text()), 0)
    except (OSError, ValueError):
        return None

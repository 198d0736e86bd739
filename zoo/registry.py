"""The model registry: look models up by name, timm-style.

A registered function receives the merged configuration (its defaults, then
the caller's overrides) and returns a ready Keras model. Variants are data:
several names can share one builder with different defaults.

This module is a leaf: it imports no model file (nor TensorFlow). The family
modules import it and register their builders; `zoo.models` imports every
family and re-exports the functions below, so that is where callers look
models up.

Example:
>>> from zoo.models import create_model, list_models
>>> list_models("*gru*")
['bigru_classifier', 'gru_classifier']
>>> model = create_model("lstm_classifier", hidden_dim=32)
"""

import dataclasses
import difflib
import fnmatch
import inspect
import re
import types
from typing import Callable, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name (immutable)."""

    name: str
    task: str
    family: str
    description: str
    default_config: Mapping
    # Overrides that make the model tiny enough for the shared tests (seconds to build, fit and export).
    test_config: Mapping = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    builder: Callable = dataclasses.field(default=None, repr=False, compare=False)
    # The Keras class the builder returns (its return annotation), known without building: training reads
    # how the task trains from it (`zoo.training`). None for a builder without one.
    model_class: type = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self):
        return {
            "name": self.name,
            "task": self.task,
            "family": self.family,
            "description": self.description,
            "default_config": dict(self.default_config),
            "test_config": dict(self.test_config),
        }


class _Registry:
    def __init__(self):
        self._specs = {}

    def register(self, builder, *, task, family, default_config, test_config):
        name = builder.__name__
        if name in self._specs:
            raise ValueError(f"model {name!r} is already registered")
        unknown = [key for key in test_config if key not in default_config]
        if unknown:
            raise ValueError(f"{name}: test_config sets {unknown}, which are not in its default_config")
        description = (builder.__doc__ or "").strip().split("\n")[0]
        self._specs[name] = ModelSpec(
            name=name,
            task=task,
            family=family,
            description=description,
            default_config=types.MappingProxyType(dict(default_config)),
            test_config=types.MappingProxyType(dict(test_config)),
            builder=builder,
            model_class=_returned_class(builder),
        )
        return builder

    def spec(self, name):
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(
                f"unknown model {name!r}{_suggest(name, self._specs)}"
            ) from None

    def names(self, pattern=None, task=None):
        names = [
            name
            for name, spec in self._specs.items()
            if (pattern is None or fnmatch.fnmatchcase(name, pattern))
            and (task is None or spec.task == task)
        ]
        return sorted(names, key=_natural_key)


def _returned_class(builder):
    annotation = inspect.signature(builder).return_annotation
    return annotation if isinstance(annotation, type) else None


def _suggest(word, candidates):
    if not candidates:
        return "; nothing is registered yet: import zoo.models, which registers every family"
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "; known: " + ", ".join(sorted(candidates))


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


_REGISTRY = _Registry()


def register_model(*, task, family, default_config, test_config=None):
    """Register a builder under its function name.

    The builder is called as `builder(**config)` with `default_config`
    updated by the caller's overrides; the first docstring line becomes the
    description. `test_config` holds overrides (keys of `default_config`)
    that make the model tiny for the shared tests (`tests/models/test_models.py`).
    """

    def decorator(builder):
        return _REGISTRY.register(
            builder,
            task=task,
            family=family,
            default_config=default_config,
            test_config=test_config or {},
        )

    return decorator


def list_models(pattern: Optional[str] = None, task: Optional[str] = None):
    """Registered names matching a shell-style `pattern` (and `task`), sorted."""
    return _REGISTRY.names(pattern, task)


def model_info(name) -> ModelSpec:
    """The immutable `ModelSpec` of a registered model."""
    return _REGISTRY.spec(name)


# Ranges of the config keys zoo's families share, checked before anything is
# built, so an error names zoo's key, not a Keras argument deep inside.
_AT_LEAST = {"vocabulary_size": 3, "sequence_length": 1, "num_classes": 2, "min_count": 1, "embedding_dim": 1,
             "hidden_dim": 1, "num_layers": 1, "num_heads": 1, "intermediate_dim": 1, "max_sequence_length": 2,
             "bpe_vocabulary_size": 257, "naive_bayes_buckets": 0}


def check_config(name, config):
    """Raise ValueError naming the first key outside its range."""
    for key, least in _AT_LEAST.items():
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ValueError(f"{name}: {key} must be an integer >= {least}, got {value!r}")
    dropout = config.get("dropout")
    if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                                or not 0 <= dropout < 1):
        raise ValueError(f"{name}: dropout must be a number in [0, 1), got {dropout!r}")
    rate = config.get("learning_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 10):
        raise ValueError(f"{name}: learning_rate must be a number in (0, 10), got {rate!r}")


def create_model(name, **overrides):
    """Build a registered model; keyword overrides replace its defaults."""
    spec = _REGISTRY.spec(name)
    unknown = [key for key in overrides if key not in spec.default_config]
    if unknown:
        key = unknown[0]
        raise TypeError(
            f"{name} got an unknown option {key!r}{_suggest(key, spec.default_config)}"
        )
    config = dict(spec.default_config, **overrides)
    check_config(name, config)
    model = spec.builder(**config)
    # The registry name becomes the model's name, so saved files, exports
    # and TF Serving paths are named after what was built.
    import keras

    if isinstance(model, keras.Model):
        model.name = name
    return model

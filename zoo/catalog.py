"""The registry written down: what `zoo list` and `zoo info` print, read without importing TensorFlow.

Registering a model means importing its family module, which imports Keras
and TensorFlow (10-20 s and ~900 MB here). `catalog.json` beside this module
holds every registered model's `ModelSpec.to_dict()` and the formats its task
exports to, so the two commands answer from a file. A test
(`tests/test_registry.py`) checks it equals the live registry;
`python -m zoo.catalog` rewrites it after a model is registered or changed.
"""

import fnmatch
import json
import pathlib

from zoo.registry import _natural_key, _suggest

CATALOG_PATH = pathlib.Path(__file__).with_name("catalog.json")


def load():
    """`{name: entry}` as written in `catalog.json`."""
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


def names(pattern=None, task=None, catalog=None):
    """Names matching a shell-style `pattern` (and `task`), naturally sorted, as `zoo.list_models` gives them."""
    catalog = load() if catalog is None else catalog
    return sorted((name for name, entry in catalog.items()
                   if (pattern is None or fnmatch.fnmatchcase(name, pattern)) and (task is None or entry["task"] == task)),
                  key=_natural_key)


def info(name, catalog=None):
    """One model's entry; an unknown name is a KeyError with close matches, as `zoo.model_info` raises."""
    catalog = load() if catalog is None else catalog
    if name not in catalog:
        raise KeyError(f"unknown model {name!r}{_suggest(name, catalog)}")
    return catalog[name]


def build():
    """The catalog of the live registry (imports every model family), as JSON reads it back (tuples as lists)."""
    import zoo.models
    from zoo.export.formats import formats_for_task

    catalog = {name: dict(zoo.models.model_info(name).to_dict(),
                          export_formats=list(formats_for_task(zoo.models.model_info(name).task)))
               for name in zoo.models.list_models()}
    return json.loads(json.dumps(catalog))


def write(path=CATALOG_PATH):
    path.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")

"""Architecture recipes: how one backbone family is traced into a runtime file, found by backbone class.

A recipe knows one architecture and neither tasks nor formats. What it gives:

    features(backbone, token_ids, target)   the backbone's inference on int32 token ids, traced for a
                                            `RuntimeTarget` (unrolled loops, fused sequence ops)
    fuses(backbone, target)                 whether `features` emits fused sequence ops for `target`
    int8_float_ops                          TFLite ops kept in float32 in a full-int8 file
  causal-LM backbones also:
    cache_update                            "rows" (a step returns its new cache rows) or "replace"
                                            (it returns the whole new cache: a recurrent state)
    cache_inputs(backbone)                  `[[name, name], ...]` per layer, the cache tensors' names
    cache_shapes(backbone, cache_length)    their shapes, in the same order
    step(backbone, token_ids, start, caches, length=None, in_place=False) -> (hidden, new cache)
    logits(backbone, hidden)                next-token logits from the step's hidden states

`recipe_for(backbone)` walks the backbone's class hierarchy, as keras-hub's
export specs do by isinstance, and falls back to `Recipe`: the backbone as
Keras runs it. A new architecture that exports as Keras runs it needs no
recipe; one that needs its own tracing adds a module to this package (every
module here is imported on the first lookup).
"""

import importlib
import pkgutil

_RECIPES = {}


class Recipe:
    """The generic default: the backbone traced as Keras runs it; no cached decoding step."""

    int8_float_ops = ()
    cache_update = None

    def features(self, backbone, token_ids, target):
        return backbone(token_ids, training=False)

    def fuses(self, backbone, target):
        return False


def register_recipe(*backbone_classes):
    """Class decorator: the recipe for these backbone classes (and their subclasses)."""

    def decorator(recipe_class):
        for backbone_class in backbone_classes:
            if backbone_class in _RECIPES:
                raise ValueError(f"{backbone_class.__name__} already has the recipe "
                                 f"{type(_RECIPES[backbone_class]).__name__}")
            _RECIPES[backbone_class] = recipe_class()
        return recipe_class

    return decorator


def recipe_for(backbone):
    """The registered recipe of `backbone`'s nearest class, else the generic `Recipe`."""
    _import_recipes()
    for backbone_class in type(backbone).__mro__:
        if backbone_class in _RECIPES:
            return _RECIPES[backbone_class]
    return Recipe()


def _import_recipes():
    # Every module of this package registers its recipes when imported; they import their model
    # families (TensorFlow), so not before a recipe is first asked for.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")

"""Architecture recipes: how one backbone family is traced into a runtime file, found by backbone class.

A recipe knows one architecture and neither tasks nor formats. What it gives:

    features(backbone, token_ids, target)   the backbone's inference on int32 token ids, traced for a
                                            `RuntimeTarget` (unrolled loops, a static batch)
    int8_float_ops                          TFLite ops kept in float32 in a full-int8 file
    onnx_backbone(backbone, token_ids, features, window)
                                            the backbone as ONNX nodes of its own (native recurrent ops)
                                            on token ids of any length up to `window`, or None: tf2onnx
                                            converts what `features` traces
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

from zoo.export.by_class import ByClass

_RECIPES = ByClass("recipe", __name__)


class Recipe:
    """The generic default: the backbone traced as Keras runs it; no cached decoding step."""

    int8_float_ops = ()
    cache_update = None

    def features(self, backbone, token_ids, target):
        return backbone(token_ids, training=False)

    def onnx_backbone(self, backbone, token_ids, features, window):
        return None


def register_recipe(*backbone_classes):
    """Class decorator: the recipe for these backbone classes (and their subclasses)."""
    return _RECIPES.register(*backbone_classes)


def recipe_for(backbone):
    """The registered recipe of `backbone`'s nearest class, else the generic `Recipe`."""
    return _RECIPES.lookup(backbone) or Recipe()

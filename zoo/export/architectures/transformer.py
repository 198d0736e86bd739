"""The transformer classifier backbone's recipe: what its full-int8 LiteRT file keeps in float32."""

from zoo.export.architectures import Recipe, register_recipe
from zoo.models.transformer import TransformerBackbone


@register_recipe(TransformerBackbone)
class TransformerRecipe(Recipe):
    # Only the matmuls, embedding gathers and reshapes are int8: all-int8, the
    # file ran far slower than float32 under XNNPACK (benchmarks/README.md,
    # "Measurements behind choices in the code").
    int8_float_ops = (
        "BATCH_MATMUL", "SOFTMAX", "MEAN", "SQUARED_DIFFERENCE", "RSQRT", "DIV", "SELECT_V2", "SUM", "MAXIMUM",
        "TRANSPOSE", "MUL", "ADD",
    )

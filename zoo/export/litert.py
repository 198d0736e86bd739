"""LiteRT (TFLite) files that run on builtin ops only.

Keras's `model.export(format="litert")` always enables SELECT_TF_OPS, so RNNs
(TensorList ops) and models with a tokenizer attached (HashTable ops) convert
but fail in the stock LiteRT runtime. zoo converts the token-id model only,
with a static `[1, sequence_length]` signature (which lets the converter lower
RNN loops to a builtin WHILE) from a SavedModel written by
`keras.export.ExportArchive` (which freezes the variables), and with
TFLITE_BUILTINS as the only op set: a model that needs anything else fails
here, naming each op and the layer it came from, instead of producing a file
that cannot run.
"""

import pathlib
import re

import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema

from zoo.export.archive import ExportArchive
from zoo.export.errors import ExportError

# Quantization recipes by name. None is the float32 reference file.
QUANTIZATIONS = ("float16", "dynamic_int8", "int8")
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "token_ids"
OUTPUT_NAME = "probabilities"

_BUILTIN_NAMES = {
    code: name for name, code in vars(tflite_schema.BuiltinOperator).items() if not name.startswith("_")
}


def token_id_model(classifier):
    """The classifier without its preprocessor: token ids in, probabilities out.

    A new Functional model over the same layers (weights shared), so neither
    the tokenizer's lookup table nor its string ops reach the converter.
    """
    return keras.Model(classifier.inputs, classifier.outputs, name=f"{classifier.name}_token_ids")


def write_conversion_saved_model(classifier, directory, batch_size=1, unroll_rnns=False):
    """SavedModel with one fixed-shape int32 signature, the converter's input.

    Args:
        unroll_rnns: trace recurrent layers as `sequence_length` unrolled
            steps instead of a WHILE loop. Full-int8 calibration needs it:
            TFLite's calibrator segfaults logging WHILE outputs
            (tensorflow#75140, open since 2.17).
    """
    model = token_id_model(classifier)
    recurrent = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.RNN)]
    saved = [(layer.unroll, layer.zero_output_for_mask) for layer in recurrent]
    try:
        for layer in recurrent:
            layer.unroll = unroll_rnns or layer.unroll
            if layer.unroll and layer.go_backwards:
                # Keras 3.15's unrolled rnn() zeroes masked outputs with the
                # mask in input order while the outputs are in (reversed)
                # processing order, so a Bidirectional layer's backward half
                # zeroes real steps and keeps padded ones (max |diff| 0.02).
                # zoo pads at the end, so a backward pass meets the padding
                # first and, without the zeroing, outputs the zeros it starts
                # from there: exactly what the WHILE loop gives.
                layer.zero_output_for_mask = False
        archive = ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SIGNATURE_KEY,
            lambda token_ids: {OUTPUT_NAME: model(token_ids, training=False)},
            input_signature=[
                tf.TensorSpec([batch_size, classifier.sequence_length], tf.int32, name=INPUT_NAME)
            ],
        )
        archive.write_out(str(directory), verbose=False)
    finally:
        for layer, (unroll, zero_output_for_mask) in zip(recurrent, saved):
            layer.unroll = unroll
            layer.zero_output_for_mask = zero_output_for_mask
    return pathlib.Path(directory)


def with_full_windows(token_ids, share=0.1):
    """Calibration rows plus `share` as many rows that fill the whole window.

    Short texts are padded at the end, so over a calibration set of short
    texts a backward RNN's first steps only ever see padding: their
    activations calibrate to a range near zero, and the requantization scale
    of the next matmul/add falls outside what XNNPACK accepts (bilstm:
    398x where XNNPACK's limit is 256, and an add's input at 1.7e-6 of its
    output scale): "failed to create XNNPACK runtime". A long text a user
    sends fills every step, so calibrate on such rows too; they are the same
    texts' ids run together, cut at the window's length.

    Args:
        token_ids: int array `[n, sequence_length]`, id 0 is padding.
        share: how many full-window rows to add, as a fraction of `n`.
    """
    token_ids = np.asarray(token_ids, np.int32)
    sequence_length = token_ids.shape[1]
    stream = token_ids[token_ids != 0]  # row by row, padding dropped
    count = min(max(1, round(share * len(token_ids))), len(stream) // sequence_length)
    windows = stream[: count * sequence_length].reshape(count, sequence_length)
    return np.concatenate([token_ids, windows])


def convert(saved_model_dir, quantization=None, calibration_token_ids=None, signature_keys=(SIGNATURE_KEY,),
            float_ops=()):
    """Convert to a builtins-only flatbuffer; return its bytes.

    Args:
        saved_model_dir: from `write_conversion_saved_model` (or the causal
            LM's, with `signature_keys=("prefill", "decode")`).
        quantization: None (float32), "float16" (float16 weights),
            "dynamic_int8" (int8 weights, float activations) or "int8"
            (int8 weights and activations calibrated on
            `calibration_token_ids`; ops without an int8 kernel stay float).
        calibration_token_ids: int32 array `[n, sequence_length]`, real
            training examples, required for "int8".
        float_ops: "int8" only: TFLite op names (e.g. "BATCH_MATMUL") left
            in float32 (the backbone's `LITERT_INT8_FLOAT_OPS`).
    """
    if quantization not in (None,) + QUANTIZATIONS:
        raise ExportError(f"quantization must be one of {QUANTIZATIONS} or None, got {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if calibration_token_ids is None or len(calibration_token_ids) == 0:
            raise ExportError("int8 quantization needs calibration examples (training texts)")

        def representative_dataset():
            for row in calibration_token_ids:
                yield {INPUT_NAME: np.asarray(row, np.int32)[np.newaxis]}

        converter.representative_dataset = representative_dataset
    try:
        if quantization == "int8" and float_ops:
            # The documented way to leave ops out of full-integer
            # quantization: calibrate once, then quantize all but those.
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=representative_dataset,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)),
            )
            flatbuffer = debugger.get_nondebug_quantized_model()
        else:
            flatbuffer = converter.convert()
    except Exception as error:  # ConverterError, but also MLIR pass failures
        raise ExportError(describe_conversion_error(str(error), quantization)) from None
    non_builtin = [op for op in op_names(flatbuffer) if not op.isupper()]
    if non_builtin:
        raise ExportError(f"LiteRT file would need non-builtin ops {non_builtin}; refusing to write it")
    return flatbuffer


def describe_conversion_error(message, quantization=None):
    """One line naming every op LiteRT lacks and the layer each came from."""
    # MLIR diagnostics look like:
    #   loc(callsite(fused["TensorListReserve:", "lstm_classifier/lstm/TensorListReserve@..."]
    #   ...)): 'tf.TensorListReserve' op is neither a custom op nor a flex op
    found = {}
    for line in message.splitlines():
        op = re.search(r"'(tf\.\w+)' op is neither a custom op nor a flex op", line)
        if not op:
            continue
        location = re.search(r'fused\["[^"]*", "([^"@]+)', line)
        layer = _layer_of(location.group(1)) if location else "unknown layer"
        found.setdefault(op.group(1), set()).add(layer)
    if not found:
        first = next((line for line in message.splitlines() if "error" in line.lower()), message[:300])
        return f"LiteRT conversion ({quantization or 'float32'}) failed: {first.strip()}"
    ops = "; ".join(f"{op} (from {', '.join(sorted(layers))})" for op, layers in sorted(found.items()))
    return (
        f"LiteRT conversion ({quantization or 'float32'}) needs ops outside TFLite's builtin set: {ops}. "
        "Rewrite those layers with builtin-convertible ops; zoo does not ship Flex (SELECT_TF_OPS) files"
    )


def _layer_of(node_name):
    # "lstm_classifier_token_ids_1/recurrent_backbone_1/lstm_1/while/..." -> the
    # layer path without the op and Keras's "_1" uniquifying suffixes.
    parts = [part for part in node_name.split("/")[:-1] if part not in ("while", "body", "cond")]
    return "/".join(parts) or node_name


def _operator_code_names(model):
    """The name of each operator code of `model`, by code index ("CustomName" for custom ops)."""
    names = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        names.append(code.CustomCode().decode("utf-8") if builtin == tflite_schema.BuiltinOperator.CUSTOM
                     else _BUILTIN_NAMES[builtin])
    return names


def op_names(flatbuffer):
    """Sorted names of every operator in every subgraph ("CustomName" for custom ops)."""
    return sorted(set(_operator_code_names(tflite_schema.Model.GetRootAs(flatbuffer, 0))))


def signature_op_names(flatbuffer):
    """`{signature key: sorted operator names of its subgraph}` (builtin names, or the custom name)."""
    model = tflite_schema.Model.GetRootAs(flatbuffer, 0)
    codes = _operator_code_names(model)
    result = {}
    for index in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(index)
        subgraph = model.Subgraphs(signature.SubgraphIndex())
        result[signature.SignatureKey().decode("utf-8")] = sorted(
            {codes[subgraph.Operators(op).OpcodeIndex()] for op in range(subgraph.OperatorsLength())}
        )
    return result

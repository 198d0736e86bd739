"""Run a LiteRT file on token ids in its own process: `python litert_probe.py MODEL IDS.npy OUT.npy SIGNATURE INPUT OUTPUT`.

A faulty kernel in a quantized file can abort the interpreter (a C++ CHECK,
not a Python exception), which would take the exporting process down with
it. zoo's export runs each file here instead, so such a file is reported
and left out, never written as if it worked. Imports only NumPy and
ai_edge_litert (not zoo, not TensorFlow) so it starts fast.
"""

import sys

import numpy as np


def run(model_path, token_ids, signature, input_name, output_name):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # No delegates and no custom ops: the stock builtin kernels only.
    interpreter = Interpreter(
        model_path=model_path, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    return run_in_batches(interpreter.get_signature_runner(signature), token_ids, input_name, output_name)


def run_in_batches(signature_runner, token_ids, input_name, output_name):
    """Outputs for every row of `token_ids` through a static-batch signature.

    The files have a static batch (RNNs lower to builtins only that way), so
    rows go through slice by slice, the last slice padded with id 0.
    """
    token_ids = np.asarray(token_ids, dtype=np.int32)
    batch_size = int(signature_runner.get_input_details()[input_name]["shape"][0])
    rows = []
    for start in range(0, len(token_ids), batch_size):
        batch = token_ids[start : start + batch_size]
        padded = np.zeros((batch_size, token_ids.shape[1]), np.int32)
        padded[: len(batch)] = batch
        rows.append(np.asarray(signature_runner(**{input_name: padded})[output_name], np.float32)[: len(batch)])
    return np.concatenate(rows) if rows else None


if __name__ == "__main__":
    model, ids_file, out_file, signature, input_name, output_name = sys.argv[1:]
    np.save(out_file, run(model, np.load(ids_file), signature, input_name, output_name))

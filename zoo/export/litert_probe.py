"""Run a LiteRT file on token ids in its own process: `python litert_probe.py MODEL IDS.npy OUT.npz SIGNATURE INPUT OUTPUT`.

A faulty kernel in a quantized file can abort the interpreter (a C++ CHECK,
not a Python exception), which would take the exporting process down with
it. zoo's export runs each file here instead, so such a file is reported
and left out, never written as if it worked. Imports only NumPy and
ai_edge_litert (not zoo, not TensorFlow) so it starts fast.

Each file runs twice, on the two runtimes a user meets: the stock builtin
kernels with no delegate (the reference), and LiteRT's default CPU set-up,
which hands every op it can to XNNPACK. They can disagree on whether a file
runs at all: XNNPACK refuses int8 ops whose requantization scale is out of
its range ("failed to create XNNPACK runtime") where the builtin kernels
run them. A file that fails on either is reported as failed; the message
names the runtime and ends the run (exit status 3).
"""

import re
import sys

import numpy as np

# `OUT.npz` keys, one per runtime.
RUNTIMES = {"builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "xnnpack": "AUTO"}
RUNTIME_FAILED = 3


def run(model_path, token_ids, signature, input_name, output_name, runtime="builtin", num_threads=2):
    """Outputs for `token_ids` on one of `RUNTIMES`."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # No custom ops: builtin kernels, or builtin kernels plus XNNPACK.
    interpreter = Interpreter(
        model_path=model_path,
        num_threads=num_threads,
        experimental_op_resolver_type=getattr(OpResolverType, RUNTIMES[runtime]),
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


def error_message(error, limit=300):
    """The interpreter's error, once: XNNPACK repeats it for every delegated partition."""
    return re.sub(r"(.{8,}?)\1+", r"\1", str(error) or type(error).__name__)[:limit]


def main(model, ids_file, out_file, signature, input_name, output_name):
    token_ids = np.load(ids_file)
    outputs = {}
    for runtime in RUNTIMES:
        try:
            outputs[runtime] = run(model, token_ids, signature, input_name, output_name, runtime)
        except (RuntimeError, ValueError) as error:
            print(f"{runtime} runtime failed: {error_message(error)}", file=sys.stderr)
            sys.exit(RUNTIME_FAILED)
    np.savez(out_file, **outputs)


if __name__ == "__main__":
    main(*sys.argv[1:])

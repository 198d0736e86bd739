"""The physical limits a benchmark's figures are held against, measured in the same run.

- `memory_bandwidth`: read and copy GB/s over a buffer of a given size. Read
  is a float32 matrix-vector product over the buffer (BLAS's gemv on every
  usable core: what a batch-1 decode step does to its weights; a NumPy
  reduction ran 25-34 GB/s where gemv ran 32-49 here, so it measured NumPy,
  not memory); copy runs on `threads` Python threads (NumPy releases the GIL).
  A batch-1 decode step reads every weight once, again every token, so read
  bandwidth over a buffer of one step's size / bytes per token is its upper
  bound on tokens/s (a buffer that fits the last-level cache reads at the
  cache's speed, as the decoder does).
- `matmul_gflops`: best float32 GFLOP/s of NumPy's BLAS on a large square
  matmul: the compute roof a classifier's FLOPs are held against.
- `machine`: the CPU (model, cores, SIMD flags) and every library's version.
- `tflite_costs`: what one invoke of a `.tflite` signature must do: FLOPs
  (2 per multiply-add of the matmul-like ops, 1 per output element of the
  element-wise ones) and the constant bytes it reads (a GATHER's table
  counted as the rows it gathers).

    python -m benchmarks.limits [FILE.tflite ...]
"""

import argparse
import json
import os
import platform
import threading
import time

import numpy as np

from zoo.versions import library_versions

# Element-wise and reduction ops: one FLOP per element (output, or input for reductions).
_ELEMENTWISE = {"ADD", "SUB", "MUL", "DIV", "LOGISTIC", "TANH", "RELU", "RELU6", "EXP", "RSQRT", "SQRT",
                "SQUARED_DIFFERENCE", "SOFTMAX", "LOG_SOFTMAX", "GELU", "POW", "MAXIMUM", "MINIMUM", "NEG",
                "SQUARE", "HARD_SWISH", "LEAKY_RELU", "PRELU", "SELECT", "SELECT_V2"}
_REDUCTIONS = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"}
# Bytes per element of the schema's TensorType values (FLOAT32, FLOAT16, INT32, UINT8, INT64, BOOL, INT16, INT8).
_TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1}
# Loops and calls run their body an unknown number of times: a file with them is not counted.
_UNCOUNTABLE = {"WHILE", "IF", "CALL", "CALL_ONCE", "BIDIRECTIONAL_SEQUENCE_LSTM"}
# Fused recurrent ops: which inputs are the weight matrices applied at every step, for every example.
_RECURRENT_MATRICES = {"UNIDIRECTIONAL_SEQUENCE_LSTM": (1, 9), "UNIDIRECTIONAL_SEQUENCE_RNN": (1, 3)}


def machine():
    """The CPU a run measured (model, cores this process may use, SIMD flags) and every library's version."""
    facts = {"cpu": platform.processor(), "cpu_flags": [], "cores": os.cpu_count(),
             "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
             "platform": platform.platform()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not facts["cpu_flags"]:
                facts["cpu_flags"] = sorted(set(line.split(":")[1].split()) & {
                    "avx", "avx2", "avx512f", "fma", "avx512_vnni", "avx_vnni", "amx_tile"})
    except OSError:
        pass
    return {**facts, **library_versions()}


def memory_bandwidth(mebibytes=1024, threads=2, repeats=5):
    """`{"read_gb_per_second", "copy_gb_per_second", ...}`: best of `repeats` passes over `mebibytes`.

    Copy is counted as STREAM counts it (bytes read + bytes written).
    """
    size = mebibytes << 20
    # Ones as float32 (the gemv below must not meet denormals, which ran it at 1.9 GB/s), copied as uint64.
    source = np.ones(size // 4, np.float32).view(np.uint64)
    target = np.empty_like(source)
    bounds = [(chunk[0], chunk[-1] + 1) for chunk in np.array_split(np.arange(len(source)), threads)]
    # The same bytes as float32 rows of 1024: one gemv reads each once; the vector stays in L1.
    matrix = source.view(np.float32)[: size // 4 // 1024 * 1024].reshape(-1, 1024)
    vector = np.ones(1024, np.float32)

    def seconds(work):
        started = time.perf_counter()
        work()
        return time.perf_counter() - started

    def copy_seconds():
        workers = [threading.Thread(target=np.copyto, args=(target[start:stop], source[start:stop]))
                   for start, stop in bounds]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return time.perf_counter() - started

    read = min(seconds(lambda: matrix @ vector) for _ in range(repeats))
    copy = min(copy_seconds() for _ in range(repeats))
    return {"buffer_mib": mebibytes, "threads": threads, "repeats": repeats, "read": "BLAS float32 gemv",
            "read_gb_per_second": matrix.nbytes / read / 1e9, "copy_gb_per_second": 2 * size / copy / 1e9}


def matmul_gflops(size=2048, repeats=5):
    """Best float32 GFLOP/s of NumPy's BLAS (its own threads, all usable cores) on `[size, size]` matmuls."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return {"size": size, "repeats": repeats, "gflops_per_second": 2 * size**3 / best / 1e9}


def tflite_costs(path, signature=None):
    """`{"flops", "constant_bytes", "input_bytes"}` of one invoke of `signature` (default: the file's only
    one, or subgraph 0). `input_bytes`: what its inputs hold (a decode step's KV cache is read whole).

    Raises:
        ValueError: the subgraph has a loop or a call (its trip count is not in the file).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    buffer = bytearray(open(path, "rb").read())
    model = schema.Model.GetRootAs(buffer, 0)
    subgraph_index = 0
    if model.SignatureDefsLength():
        keys = {model.SignatureDefs(i).SignatureKey().decode(): model.SignatureDefs(i).SubgraphIndex()
                for i in range(model.SignatureDefsLength())}
        if signature is None and len(keys) > 1:
            raise ValueError(f"{path}: name one of its signatures {sorted(keys)}")
        subgraph_index = keys[signature] if signature else next(iter(keys.values()))
    subgraph = model.Subgraphs(subgraph_index)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}

    def shape(index):
        return [int(d) for d in subgraph.Tensors(index).ShapeAsNumpy()] if subgraph.Tensors(index).ShapeLength() \
            else []

    def constant_bytes(index):
        data = model.Buffers(subgraph.Tensors(index).Buffer())
        return int(data.Size()) if data.Offset() > 1 else int(data.DataLength())

    flops, read = 0, {}
    for op_index in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(op_index)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if name in _UNCOUNTABLE:
            raise ValueError(f"{path}: a {name} op runs its body an unknown number of times; not counted")
        inputs = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        out_elements = int(np.prod(shape(outputs[0]))) if outputs else 0
        for index in (i for i in inputs if i >= 0):
            size = constant_bytes(index)
            if not size:
                continue
            if name == "GATHER" and index == inputs[0]:
                rows = max(shape(index)[0], 1)
                size = size * int(np.prod(shape(inputs[1]))) // rows  # only the gathered rows are read
            read[index] = max(read.get(index, 0), size)
        if name == "FULLY_CONNECTED":
            weights = shape(inputs[1])  # [units, depth]
            flops += 2 * int(np.prod(shape(inputs[0]))) // weights[1] * weights[0] * weights[1]
        elif name == "BATCH_MATMUL":
            options = schema.BatchMatMulOptions()
            table = op.BuiltinOptions()
            options.Init(table.Bytes, table.Pos)
            left = shape(inputs[0])
            depth = left[-2] if options.AdjX() else left[-1]
            flops += 2 * out_elements * depth
        elif name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            kernel = shape(inputs[1])  # CONV_2D [out, h, w, in]; DEPTHWISE [1, h, w, out]
            per_output = kernel[1] * kernel[2] * (kernel[3] if name == "CONV_2D" else 1)
            flops += 2 * out_elements * per_output
        elif name in _RECURRENT_MATRICES:
            first, last = _RECURRENT_MATRICES[name]  # the input and recurrent weight matrices, [units, depth]
            steps_and_batch = int(np.prod(shape(inputs[0])[:-1]))
            flops += 2 * steps_and_batch * sum(int(np.prod(shape(i))) for i in inputs[first:last] if i >= 0)
        elif name in _ELEMENTWISE:
            flops += out_elements
        elif name in _REDUCTIONS:
            flops += int(np.prod(shape(inputs[0])))
    input_bytes = sum(int(np.prod(shape(i))) * _TYPE_BYTES.get(subgraph.Tensors(i).Type(), 4)
                      for i in subgraph.InputsAsNumpy())
    return {"flops": flops, "constant_bytes": sum(read.values()), "input_bytes": input_bytes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help=".tflite files to count")
    parser.add_argument("--signature")
    args = parser.parse_args(argv)
    results = {"memory_bandwidth": memory_bandwidth(), "matmul": matmul_gflops()}
    for path in args.files:
        results[path] = tflite_costs(path, args.signature)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

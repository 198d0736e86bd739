"""The two inference engines zoo's files run on, behind one small interface.

`.tflite` files run on `ai_edge_litert` with one of two op resolvers, the two
set-ups an app meets: `"builtin"` (the stock kernels, no delegate: zoo's
reference) and `"xnnpack"` (LiteRT's default, which hands what it can to
XNNPACK). `.onnx` files run on ONNX Runtime's CPU provider (`"cpu"`).
Each engine is imported only when a file of its kind is opened.

Threads: both models are safe to share. An ONNX Runtime session runs
concurrent `run` calls itself. A LiteRT interpreter is one set of tensor
buffers: two threads writing inputs and invoking at once read each other's
results (or fail in a kernel), so `LiteRTModel` runs each signature call
(inputs in, invoke, outputs copied out) under its lock; code that drives a
`ResidentSignature` over several invokes holds `LiteRTModel.lock` for the
whole exchange. (One interpreter per thread was measured too, 8 threads on 2
cores: slower for a 10 MB classifier, no steady gain for a decoder's
token-by-token loop, and a copy of the interpreter's buffers and XNNPACK's
packed weights for every thread that ever calls, unbounded in a server's
thread pool.)
"""

import contextlib
import pathlib
import threading

import numpy as np

from zoo import extras

RUNTIMES = {".tflite": ("builtin", "xnnpack"), ".onnx": ("cpu",)}


def default_runtime(model_path):
    """What an app gets: XNNPACK for LiteRT, the CPU provider for ONNX."""
    return RUNTIMES[suffix_of(model_path)][-1]


def open_model(model_path, runtime=None, num_threads=2):
    """A `LiteRTModel` or `ONNXModel` for `model_path` on `runtime`."""
    suffix = suffix_of(model_path)
    runtime = runtime or default_runtime(model_path)
    if runtime not in RUNTIMES[suffix]:
        raise ValueError(f"{model_path}: runtime {runtime!r} does not run {suffix} files; expected {RUNTIMES[suffix]}")
    return (LiteRTModel if suffix == ".tflite" else ONNXModel)(model_path, runtime, num_threads)


def suffix_of(model_path):
    suffix = pathlib.Path(model_path).suffix
    if suffix not in RUNTIMES:
        raise ValueError(f"{model_path}: expected a {' or '.join(RUNTIMES)} file")
    return suffix


class LiteRTModel:
    """A `.tflite` file on one LiteRT interpreter; safe to share between threads (see the module docstring).

    `lock` (re-entrant) serializes everything that touches the interpreter's
    tensors: `signature` calls take it themselves; a caller driving
    `resident_signature`s holds it from its first write to its last read.
    """

    def __init__(self, model_path, runtime, num_threads):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = {"builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, "xnnpack": OpResolverType.AUTO}
        # No custom ops: builtin kernels, or builtin kernels plus XNNPACK.
        self.interpreter = Interpreter(
            model_path=str(model_path), num_threads=num_threads, experimental_op_resolver_type=resolver[runtime]
        )
        self.lock = threading.RLock()
        self._runners = {}

    def _runner(self, name):
        with self.lock:
            if name not in self._runners:
                self._runners[name] = self.interpreter.get_signature_runner(name)
            return self._runners[name]

    def signature(self, name):
        """`callable(**inputs) -> {output name: array}` for one signature; each call holds `lock`
        (the runner resizes, writes, invokes and copies the outputs out: all one interpreter's state)."""
        runner = self._runner(name)

        def run(**inputs):
            with self.lock:
                return runner(**inputs)

        return run

    def signature_details(self, name):
        """`{"inputs": {tensor: shape}, "outputs": {tensor: shape}}` as the file declares them."""
        runner = self._runner(name)
        return {"inputs": {key: value["shape"].tolist() for key, value in runner.get_input_details().items()},
                "outputs": {key: value["shape"].tolist() for key, value in runner.get_output_details().items()}}

    def batch_size(self, signature, input_name):
        """The signature's static batch size (zoo's LiteRT files have one)."""
        return int(self._runner(signature).get_input_details()[input_name]["shape"][0])

    def resident_signature(self, name):
        """A `ResidentSignature` for one signature: inputs written in place, kept between invokes.
        Hold `lock` while using it."""
        with self.lock:
            return ResidentSignature(self.interpreter, name)


class ResidentSignature:
    """One LiteRT signature driven through the interpreter's own tensor buffers.

    The stock signature runner copies every input into the interpreter on
    every call. For a decoder that is the whole KV cache once per token
    (9 MiB a step for GPT-2 small at a 128-token cache, more with longer
    caches), when one row changed. Here an input buffer keeps its contents
    between invokes (TFLite's arena planner allocates graph inputs first and
    "makes sure they are never overwritten", arena_planner.cc), so the caller
    writes the whole cache once and then only the new rows
    (`input(name)[...] = ...`), and reads outputs in place.

    Views returned by `input` / `output` point into the interpreter: use them
    before the next `invoke` and do not keep them. Not locked itself: the
    caller holds its `LiteRTModel.lock` from the first write to the last read. Built on ai-edge-litert's
    interpreter wrapper (`tensor(base, index, subgraph)`, `SetTensor`, `Invoke`),
    the calls its own signature runner makes.
    """

    def __init__(self, interpreter, name):
        runner = interpreter.get_signature_runner(name)
        details = interpreter._get_full_signature_list()[name]
        self._interpreter, self._wrapper = interpreter, interpreter._interpreter
        self._subgraph = self._wrapper.GetSubgraphIndexFromSignature(name)
        self._inputs, self._outputs = details["inputs"], details["outputs"]
        self.input_details = runner.get_input_details()
        self._wrapper.AllocateTensors(self._subgraph)

    def input(self, name):
        """A writable view of an input tensor's buffer (not for 0-d inputs: use `set`)."""
        return self._wrapper.tensor(self._interpreter, self._inputs[name], self._subgraph)

    def set(self, name, value):
        """Copy `value` into an input tensor (fine for small ones)."""
        dtype = self.input_details[name]["dtype"]
        self._wrapper.SetTensor(self._inputs[name], np.asarray(value, dtype), self._subgraph)

    def output(self, name):
        """A read-only view of an output tensor's buffer, valid until the next `invoke`."""
        return self._wrapper.tensor(self._interpreter, self._outputs[name], self._subgraph)

    def invoke(self):
        self._wrapper.Invoke(self._subgraph)


# madvise(2) advice values (Linux): back a range with 2 MiB pages from now on, and collapse what is there now.
_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25
_HUGE_PAGE = 2 * 2**20


def _private_anonymous_mappings():
    """`{(start, end)}` of this process's private anonymous read-write mappings, the heap included."""
    try:
        lines = pathlib.Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return set()
    mappings = set()
    for line in lines:
        fields = line.split()
        # Anonymous: no path (or "[heap]"); inode 0. Private and writable: "rw-p".
        if fields[1] == "rw-p" and fields[4] == "0" and (len(fields) == 5 or fields[5] == "[heap]"):
            start, end = (int(address, 16) for address in fields[0].split("-"))
            mappings.add((start, end))
    return mappings


@contextlib.contextmanager
def huge_pages():
    """Back the memory allocated inside the `with` (an interpreter's arena, XNNPACK's packed weights) with
    2 MiB pages where the kernel allows it.

    A decode step streams every weight once: 500 MB of float32 GPT-2 small
    through 4 KiB pages is ~120,000 TLB misses a token. Where transparent
    huge pages are on `madvise` (not `always`), as on common Linux
    distributions, glibc's allocations get none unless asked. Only whole 2 MiB pages
    inside a new mapping are advised, so allocations of a few MiB each
    (float32 GPT-2's packed matrices) are covered only in part; running the
    process with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` covers them all.
    Best effort: where `madvise` refuses (not
    Linux, an older kernel without MADV_COLLAPSE, THP off) memory stays as
    it was, which is only slower.
    """
    before = _private_anonymous_mappings()
    try:
        yield
    finally:
        new = [(start, end) for start, end in _private_anonymous_mappings() - before if end - start >= _HUGE_PAGE]
        if new:
            _advise_huge_pages(new)


def _advise_huge_pages(ranges):
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    for start, end in ranges:
        # Whole huge pages only: the advice covers exactly what lies inside.
        first = -(-start // _HUGE_PAGE) * _HUGE_PAGE
        last = end // _HUGE_PAGE * _HUGE_PAGE
        if last > first:
            for advice in (_MADV_HUGEPAGE, _MADV_COLLAPSE):
                libc.madvise(first, last - first, advice)


class ONNXModel:
    """An `.onnx` file on an ONNX Runtime session; safe to share between threads (the session is)."""

    def __init__(self, model_path, runtime, num_threads):
        onnxruntime = extras.require("onnxruntime", str(model_path))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._outputs = [output.name for output in self.session.get_outputs()]

    def signature(self, name):
        # An ONNX graph has one entry point; the sidecar names it like the others.
        def run(**inputs):
            return dict(zip(self._outputs, self.session.run(self._outputs, inputs)))

        return run

    def signature_details(self, name):
        def shapes(entries):
            return {entry.name: [d if isinstance(d, int) else None for d in entry.shape] for entry in entries}

        return {"inputs": shapes(self.session.get_inputs()), "outputs": shapes(self.session.get_outputs())}

    def batch_size(self, signature, input_name):
        """None: zoo's ONNX files take any batch size."""
        shape = next(entry.shape for entry in self.session.get_inputs() if entry.name == input_name)
        return shape[0] if isinstance(shape[0], int) else None


def error_message(error, limit=300):
    """An engine's error, once: XNNPACK repeats it for every delegated partition."""
    import re

    return re.sub(r"(.{8,}?)\1+", r"\1", str(error) or type(error).__name__)[:limit]


def run_in_batches(signature, token_ids, input_name, output_name, batch_size, chunk=256, any_length=False):
    """Outputs for every row of `token_ids` (`[n, sequence_length]`), in row order.

    A static-batch signature (LiteRT: RNNs lower to builtins only that way)
    takes the rows slice by slice, the last slice padded with id 0; a dynamic
    one takes `chunk` rows a call. With `any_length` (the signature's time
    dimension is dynamic) the rows go shortest first and each call's ids are
    cut after its longest row's last non-padding id, so a call of short texts
    does not run over the whole window.
    """
    token_ids = np.asarray(token_ids, dtype=np.int32)
    if any_length and batch_size is None:
        return _run_by_length(signature, token_ids, input_name, output_name, chunk)
    step = batch_size or chunk
    rows = []
    for start in range(0, len(token_ids), step):
        batch = token_ids[start : start + step]
        if batch_size:
            padded = np.zeros((batch_size, token_ids.shape[1]), np.int32)
            padded[: len(batch)] = batch
            batch_rows = len(batch)
            batch = padded
        else:
            batch_rows = len(batch)
        rows.append(np.asarray(signature(**{input_name: batch})[output_name], np.float32)[:batch_rows])
    return np.concatenate(rows) if rows else None


def _run_by_length(signature, token_ids, input_name, output_name, chunk):
    if not len(token_ids):
        return None
    # Each row's length: one past its last non-padding id (padding trails the text).
    lengths = np.where(token_ids != 0, np.arange(1, token_ids.shape[1] + 1, dtype=np.int32), 0).max(axis=1)
    order = np.argsort(lengths, kind="stable")
    outputs = None
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        longest = max(1, int(lengths[rows[-1]]))  # an all-padding call keeps one pad id
        result = np.asarray(signature(**{input_name: token_ids[rows, :longest]})[output_name], np.float32)
        if outputs is None:
            outputs = np.empty((len(token_ids), *result.shape[1:]), np.float32)
        outputs[rows] = result
    return outputs

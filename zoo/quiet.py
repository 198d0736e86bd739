"""Keep the libraries' own start-up and progress logs off a command's stderr (`zoo --verbose` keeps them).

TensorFlow, LiteRT and the converters write from C++ straight to file
descriptor 2, before Python's logging is involved: the absl banner ("All log
messages before absl::InitializeLog() ..."), oneDNN and CUDA probes
(`I0000 ... port.cc`, `E0000 ... failed call to cuInit`), the XNNPACK
delegate's INFO line, the quantizer's `fully_quantize: ...`. No environment
variable silences all of them (TF_CPP_MIN_LOG_LEVEL=3 leaves the banner and
the probes), so `filtered_stderr()` puts a pipe on descriptor 2 for the
command's duration and forwards every line that is not one of those, as it
comes (child processes inherit the pipe, so an export's validation children
are filtered too). Python-level warnings and TensorFlow's Python logger are
set to errors only.
"""

import contextlib
import logging
import os
import re
import sys
import threading
import warnings

NOISE = re.compile(
    r"^(?:"
    r"[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "  # absl's C++ log lines (TensorFlow, LiteRT, gRPC)
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|INFO: Initialized TensorFlow Lite runtime\."
    r"|fully_quantize: \d+, inference_type: "
    r"|WARNING: Logging before InitGoogleLogging"
    r")"
)


def is_noise(line):
    return bool(NOISE.match(line))


def quiet_python_logs():
    """TensorFlow's, absl's and the converters' Python loggers to errors; Python warnings off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("tensorflow", "absl", "tf2onnx", "onnx", "onnxruntime", "keras", "jax", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


@contextlib.contextmanager
def filtered_stderr(filter_line=is_noise):
    """File descriptor 2 through a filter for the block: lines `filter_line` accepts are dropped."""
    try:
        original = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, original, filter_line), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last writer in this process closes; the forwarder drains it and stops
        forwarder.join(timeout=5)
        os.close(original)


def _forward(read_end, destination, filter_line):
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            pending += chunk
            # A line ends at \n, or at \r (a progress bar redrawing its line): forward each as it completes.
            *complete, pending = re.split(rb"(?<=[\r\n])", pending)
            _write(destination, complete, filter_line)
    _write(destination, [pending] if pending else [], filter_line)


def _write(destination, pieces, filter_line):
    for piece in pieces:
        if piece and not filter_line(piece.decode("utf-8", "replace")):
            os.write(destination, piece)

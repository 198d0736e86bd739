"""Keep the libraries' own start-up and progress logs off a command's stderr (`zoo --verbose` keeps them).

TensorFlow, LiteRT and the converters write from C++ straight to file
descriptor 2, before Python's logging is involved: the absl banner ("All log
messages before absl::InitializeLog() ..."), oneDNN and CUDA probes
(`I0000 ... port.cc`, `E0000 ... failed call to cuInit`), the XNNPACK
delegate's INFO line, the quantizer's `fully_quantize: ...`. No environment
variable silences all of them (TF_CPP_MIN_LOG_LEVEL=3 leaves the banner and
the probes), so `filtered_stderr()` puts a pipe on descriptor 2 for the
command's duration and a small process forwards every line that is not one
of those, as it comes (child processes inherit the pipe, so an export's
validation children are filtered too). Python-level warnings and TensorFlow's Python logger are
set to errors only.
"""

import contextlib
import logging
import os
import re
import subprocess
import sys
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
def filtered_stderr():
    """File descriptor 2 through a filter process for the block: the libraries' own lines (`NOISE`) are dropped.

    The filter is a separate process, not a thread: a thread would need this process's GIL to drain the
    pipe, so C++ code logging while it holds the GIL could block on a full pipe for ever. It ignores
    Ctrl-C (which a terminal sends to the whole process group) and ends when the last writer closes the
    pipe; the block waits up to 5 s for it to forward what is left, so zoo's own last line comes after.
    """
    try:
        original = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    try:
        forwarder = subprocess.Popen([sys.executable, "-c", _FORWARDER], stdin=read_end, stdout=original,
                                     stderr=subprocess.DEVNULL, close_fds=True)
    except OSError:
        os.close(read_end)
        os.close(write_end)
        os.close(original)
        yield
        return
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # this process's last reference to the pipe: the forwarder sees its end
        os.close(original)
        try:
            forwarder.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a child process of the command still holds the pipe
            pass


# The forwarder: stdin (the pipe) to stdout (the original stderr), a line at a time; a line ends at \n or
# at \r (a progress bar redrawing its line), so each is forwarded as it completes.
_FORWARDER = f"""
import os, re, signal
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(number, signal.SIG_IGN)
noise = re.compile({NOISE.pattern!r})
pending = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *complete, pending = re.split(rb"(?<=[\\r\\n])", pending + chunk)
    for piece in complete:
        if piece and not noise.match(piece.decode("utf-8", "replace")):
            os.write(1, piece)
if pending and not noise.match(pending.decode("utf-8", "replace")):
    os.write(1, pending)
"""

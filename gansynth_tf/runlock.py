"""An exclusive lock on a training directory, so that two runs never train into one.

`train.lock` in the train_dir records the run holding it: {"pid", "host", "started"}. The
lock itself is fcntl.flock on that file, which the kernel drops when the holder exits,
however it exits (kill -9 and power loss included). A file left behind without a live
holder is therefore no lock: the next run takes it over, and learns whose it was. On a
network filesystem the lock is as good as that filesystem's locking (Linux NFS emulates
flock with byte-range locks, which reach the server).
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import time

LOCK_FILE = "train.lock"
# A new holder writes its record just after locking; a rival that reads in between waits
# this long for it before naming the holder "unknown".
RECORD_WAIT_SECONDS = 1.0


class RunLockedError(RuntimeError):
    """The train_dir is held by a live run; the message names its pid and host."""

    def __init__(self, directory, holder):
        self.directory, self.holder = directory, holder
        who = (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
               f"{holder.get('started', '?')}" if holder else "a run that is starting")
        super().__init__(f"{directory} is in use by another training run ({who}): wait "
                         f"for it to end or stop it, or train into another --train_dir")


def _read_record(fd):
    """The JSON record in the open lock file, or None if it is empty or half written."""
    try:
        size = os.fstat(fd).st_size
        return json.loads(os.pread(fd, max(size, 1), 0).decode("utf-8"))
    except (OSError, ValueError):
        return None


def _same_file(fd, path):
    try:
        st, fst = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


class RunLock:
    """The held lock on one train_dir; release() (or leaving a `with`) gives it up.

    Attributes:
      path: the lock file.
      taken_over: the record of an earlier holder that ended without releasing (a crash or
        kill), or None.
    """

    def __init__(self, path, fd, taken_over):
        self.path, self._fd, self.taken_over = path, fd, taken_over

    def release(self):
        if self._fd is None:
            return
        # Unlink while still holding: a rival that opened this file meanwhile finds, once
        # it gets the lock, that the path no longer leads to it, and starts again.
        with contextlib.suppress(FileNotFoundError):   # already gone: nothing to undo
            os.remove(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire(directory):
    """Locks `directory` (which must exist) for this process; returns the RunLock.

    Raises:
      RunLockedError: a live process holds it.
    """
    path = os.path.join(directory, LOCK_FILE)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            holder = _read_record(fd)
            deadline = time.monotonic() + RECORD_WAIT_SECONDS
            while holder is None and time.monotonic() < deadline:
                time.sleep(0.05)
                holder = _read_record(fd)
            os.close(fd)
            raise RunLockedError(directory, holder) from None
        if not _same_file(fd, path):  # released and removed between our open and lock
            os.close(fd)
            continue
        taken_over = _read_record(fd)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S %z")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode("utf-8"), 0)
        return RunLock(path, fd, taken_over)

"""Command-line plumbing shared by the commands; imports no TensorFlow, so the light
`synthetic` command can use it too.

The commands keep their flags on private FlagValues, so importing a command module (the
trainer imports export_saved_model; tests import all of them) defines no global flags and
cannot clash with the trainer's --train_dir. absl defines --help only on its global FLAGS,
hence parse_flags' own handling of it.
"""

import json
import os
import sys
import tempfile

from absl import flags

HELP_FLAGS = ("-h", "--help", "-help", "--helpfull", "--helpshort")


class PathError(ValueError):
    """An output path that cannot be used; the message names the path and the flag."""


def parse_flags(fv, argv, prog, doc):
    """Parses argv into fv; --help prints usage and exits 0, bad flags exit 1 with a message.

    Returns the positional arguments left over (argv[0] included).
    """
    argv = list(sys.argv if argv is None else argv)
    if any(a in HELP_FLAGS for a in argv[1:]):
        print(f"{doc.strip()}\n\nflags:\n{fv.get_help()}")
        raise SystemExit(0)
    try:
        rest = fv(argv)
    except flags.Error as e:
        raise SystemExit(f"{prog}: {e}\nRun `python -m gansynth_tf.{prog} --help` for the "
                         f"list of flags.") from None
    if len(rest) > 1:
        raise SystemExit(f"{prog}: unexpected positional arguments {rest[1:]}; every option "
                         f"is a --flag (see --help)")
    return rest


def require(fv, prog, *names):
    """Exits with a message naming the first missing required flag."""
    for name in names:
        if not getattr(fv, name):
            raise SystemExit(f"{prog}: --{name} is required ({fv[name].help})")


def make_writable_dir(path, flag):
    """Creates folder `path` if missing and checks that files can be written in it.

    Writability is tested by creating a file, not with os.access or the mode bits: root
    ignores the mode, and read-only mounts or ACLs do not show in it.

    Raises:
      PathError: naming `path` and `flag` (e.g. "--output_dir") when it is a file, cannot
        be created, or cannot be written to.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise PathError(f"{flag}={path} is a file, not a folder: give {flag} a folder path")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise PathError(f"cannot create {flag}={path} ({e.strerror}): give {flag} a path "
                        f"you can write to") from None
    _probe_write(path, f"{flag}={path} is not writable", f"give {flag} a folder you can "
                 "write to")
    return path


def _probe_write(folder, what, fix):
    """Creates and removes a file in `folder`; PathError "<what> (<reason>): <fix>" if not."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    except OSError as e:
        raise PathError(f"{what} ({e.strerror}): {fix}") from None
    os.close(fd)
    os.remove(probe)


def missing_folders(path):
    """The folders that creating `path` would make, deepest first ([] if it exists)."""
    out = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out


def remove_empty_folders(folders):
    """Removes each of `folders` (deepest first) that is still empty; stops at the first
    that is not, so nothing a command wrote is lost."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return


def check_writable(path, flag, folder=False):
    """Checks, creating nothing, that file `path` (a folder with folder=True) can be
    written: what exists of it is of the right kind and its nearest existing folder takes
    new files. For outputs written at the end of a long command, checked at its start.

    Raises:
      PathError: naming `path`, what blocks it and `flag`.
    """
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise PathError(f"{flag}={path} is a file, not a folder: give {flag} a folder path")
    if not folder and os.path.isdir(path):
        raise PathError(f"{flag}={path} is a folder, not a file: give {flag} a file path")
    existing = os.path.abspath(path if folder else os.path.dirname(os.path.abspath(path)))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise PathError(f"cannot write {flag}={path}: {existing} is a file: give {flag} a "
                        f"path you can write to")
    _probe_write(existing, f"cannot write {flag}={path}: {existing} is not writable",
                 f"give {flag} a path you can write to")
    return path


def write_json(path, obj, **dump_kwargs):
    """Writes `obj` as JSON to `path` atomically: a reader, or a run killed mid-write, sees
    the old file or the new one, never half of one. Returns `path`.

    The text goes to a temporary file in the same folder (os.replace is atomic only within
    one file system), is flushed to disk (a rename can otherwise reach the disk before the
    data on a crash of the machine) and then replaces `path`. The temporary name carries
    the process id, so two processes writing the same file do not share one. `dump_kwargs`
    go to json.dump (indent, ensure_ascii, default, ...); the file is UTF-8.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, **dump_kwargs)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A failed dump (an object JSON cannot hold, a full disk) leaves no stray file.
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path

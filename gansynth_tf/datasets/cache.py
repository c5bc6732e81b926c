"""The one decision of where a source keeps its decoded audio between epochs."""

import fcntl
import glob
import hashlib
import os

import tensorflow as tf
from absl import logging


def cache_location(cfg, name, key_parts, decoded_bytes):
    """Where ``Dataset.cache`` should keep a source's decoded audio, or None for no cache.

    Args:
      cfg: the DataConfig (``cache``, ``cache_dir``, ``cache_max_mb``).
      name: the source's name, the start of its cache file name.
      key_parts: strings that fix the decoded audio (paths, sample rate, decoder, ...):
        their hash names the disk cache, so a changed dataset never reads a stale one.
      decoded_bytes: the decoded audio's size, for the in-memory limit.
    Returns:
      None (not cached), ``""`` (in memory) or a file-name prefix under ``cache_dir``.
    """
    if not cfg.cache:
        return None
    if cfg.cache_dir:
        key = hashlib.sha1("\n".join(key_parts).encode("utf-8")).hexdigest()[:12]
        tf.io.gfile.makedirs(cfg.cache_dir)
        return claim_disk_cache(os.path.join(cfg.cache_dir, f"{name}_{key}"))
    if decoded_bytes > cfg.cache_max_mb * 2**20:
        logging.info("%s: not caching decoded audio (%.0f MB > --cache_max_mb=%d): each "
                     "epoch decodes its tracks again; --cache_dir=DIR caches them on disk "
                     "instead.", name, decoded_bytes / 2**20, cfg.cache_max_mb)
        return None
    return ""  # in memory


# Open descriptors of the claims this process holds (flock is dropped when they close).
_CLAIMS = {}


def _finished(prefix):
    return bool(glob.glob(glob.escape(prefix) + ".index"))


def claim_disk_cache(prefix):
    """``prefix`` once this process may fill or read that disk cache; None: no cache.

    ``Dataset.cache`` marks a fill in progress with ``<prefix>_N.lockfile`` and refuses to
    start while one exists, so a run killed while filling would stop every later run on the
    same data. Each process that uses the prefix holds ``flock`` on ``<prefix>.claim``
    (dropped by the kernel however the process ends): whoever gets it while the cache is
    unfinished knows the lockfile and partial files are a dead fill's, and removes them. If
    a live process holds it and the cache is unfinished, this one does without a cache.
    Only local paths are claimed (``gs://`` and the like go to ``Dataset.cache`` as they are).
    """
    if "://" in prefix:
        return prefix
    if prefix in _CLAIMS:
        return prefix
    fd = os.open(prefix + ".claim", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        if _finished(prefix):
            return prefix  # reading a finished cache beside its live user is fine
        logging.warning("%s: another live process is filling this disk cache; this one "
                        "decodes without a cache.", prefix)
        return None
    _CLAIMS[prefix] = fd
    if not _finished(prefix):
        leftovers = (glob.glob(glob.escape(prefix) + "_*.lockfile")
                     + glob.glob(glob.escape(prefix) + "_*.tempstate*"))
        for path in leftovers:
            os.remove(path)
        if leftovers:
            logging.warning("%s: removed the unfinished disk cache of a run that ended while "
                            "filling it (%d files); it is filled again.", prefix,
                            len(leftovers))
    return prefix


def release_disk_caches():
    """Drops this process's claims (tests; a process's end drops them anyway)."""
    for fd in _CLAIMS.values():
        os.close(fd)
    _CLAIMS.clear()

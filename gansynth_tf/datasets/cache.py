"""The one decision of where a source keeps its decoded audio between epochs."""

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
        return os.path.join(cfg.cache_dir, f"{name}_{key}")
    if decoded_bytes > cfg.cache_max_mb * 2**20:
        logging.info("%s: not caching decoded audio (%.0f MB > cache_max_mb=%d); set "
                     "cache_dir to cache on disk.", name, decoded_bytes / 2**20,
                     cfg.cache_max_mb)
        return None
    return ""  # in memory

"""Shared pytest setup: quiet TensorFlow. The package is imported as installed
(`pip install -e .`, see README.md), not from a path added here."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

"""Models shipped inside the package, found by name (`--model=NAME`).

A shipped model is a SavedModel written by `gansynth_tf.export`, in
`gansynth_tf/models/<name>/`, next to a `MODEL.md` (what it was trained on, the command that
made it, its measured metrics) and `metrics.json`.
"""

import os

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
CARD = "MODEL.md"


def available():
    """Sorted names of the shipped models (folders holding a saved_model.pb)."""
    if not os.path.isdir(MODELS_DIR):
        return []
    return sorted(name for name in os.listdir(MODELS_DIR)
                  if os.path.isfile(os.path.join(MODELS_DIR, name, "saved_model.pb")))


def resolve(name, flag="--model"):
    """The SavedModel folder of shipped model `name`.

    Raises:
      ValueError: no shipped model has that name (the message lists the ones there are).
    """
    names = available()
    if name in names:
        return os.path.join(MODELS_DIR, name)
    shipped = ", ".join(names) if names else "none"
    raise ValueError(f"{flag}={name}: no shipped model of that name (shipped: {shipped}); "
                     f"for your own model use --export_dir=DIR or --train_dir=RUN")

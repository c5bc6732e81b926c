"""Genre-labelled audio sources and the tf.data input pipeline.

Sources (``DataConfig.dataset``):

* ``folder``   one sub-folder per genre, as GTZAN (``genres/<genre>/*.wav``).
* ``manifest`` a CSV of ``path,genre``; or FMA's ``tracks.csv`` via ``fma_metadata``.
* ``nsynth``   NSynth TFRecords, labelled by instrument family / source or pitch.
* ``synthetic`` the embedded numpy-synthesised genres (:mod:`gansynth_tf.synthetic`).

``build_source(cfg)`` probes the data once (file headers, label counts), reports
skipped files and class counts, and returns a :class:`Source` whose
``waves_dataset(training)`` yields unbatched ``(wave float32 [audio_length],
genre_id int32)``. ``make_train_dataset`` batches it and maps it to features.

File sources decode whole files (tensorflow-io in the graph or soundfile; see
:mod:`gansynth_tf.audio_io`), cache the decoded, resampled mono audio in memory when
it fits, and cut each file into ``audio_length`` windows: random offsets while
training, evenly spaced fixed offsets for evaluation. Files shorter than a window are
centre-padded, as GANSynth's ``crop_or_pad`` does.

Modules: ``config`` (DataConfig, its flags, errors, the genre map), ``layouts`` (which
files and genres: folder, manifest, FMA, NSynth), ``sources`` (the Source interface,
windows, balance, the file source), ``corpora`` (synthetic, NSynth), ``cache`` (where
decoded audio is kept, decided once for every source), ``pipeline`` (build_source and the
batched feature pipeline). Everything public is importable from ``gansynth_tf.datasets``.
"""

from gansynth_tf.datasets.config import (  # noqa: F401
    DATA_FLAG_NAMES,
    DATASETS,
    GENRE_MAP_FILE,
    NSYNTH_LABELS,
    NSYNTH_LENGTH,
    NSYNTH_PITCH_RANGE,
    NSYNTH_RATE,
    DataConfig,
    DataError,
    config_from_flags,
    define_data_flags,
    load_genre_map,
    save_genre_map,
)
from gansynth_tf.datasets.corpora import NSynthSource, SyntheticSource  # noqa: F401
from gansynth_tf.datasets.layouts import (  # noqa: F401
    fma_entries,
    folder_entries,
    manifest_entries,
    resolve_genre_root,
)
from gansynth_tf.datasets.pipeline import (  # noqa: F401
    batch_features,
    build_source,
    fit_normalizer,
    make_train_dataset,
    sample_waves,
)
from gansynth_tf.datasets.sources import FileSource, Source  # noqa: F401

__all__ = ["DATASETS", "NSYNTH_LABELS", "DataConfig", "DataError", "Source", "FileSource",
           "SyntheticSource", "NSynthSource", "build_source", "make_train_dataset",
           "batch_features",
           "save_genre_map", "load_genre_map", "config_from_flags", "define_data_flags",
           "sample_waves", "fit_normalizer", "folder_entries", "manifest_entries",
           "fma_entries", "resolve_genre_root"]

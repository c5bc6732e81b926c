"""Dataset layouts on disk: which files, which genre (folder, CSV manifest, FMA, NSynth)."""

import collections
import csv
import glob
import os
import re

from absl import logging

from gansynth_tf import audio_io
from gansynth_tf.datasets.config import DataError


def _visible(name):
    return not name.startswith(".") and name != "__MACOSX"


def _audio_files_under(folder, undecodable=None):
    """(sorted audio file paths below `folder` (recursive), count of other files).

    Hidden entries are ignored; files in an audio format no decoder here reads are counted
    by extension into the `undecodable` Counter when one is given.
    """
    out, other = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        for f in sorted(files):
            if not _visible(f):
                continue
            if audio_io.is_audio_path(f):
                out.append(os.path.join(root, f))
                continue
            other += 1
            ext = os.path.splitext(f)[1].lower()
            if undecodable is not None and ext in audio_io.UNDECODABLE_AUDIO_EXTENSIONS:
                undecodable[ext] += 1
    return out, other


def _warn_undecodable(undecodable, where):
    if undecodable:
        logging.warning(
            "%s: ignored %d file(s) in formats that cannot be decoded here (%s); convert "
            "them to FLAC, OGG, MP3 or WAV (e.g. ffmpeg -i IN.m4a OUT.flac) to train on "
            "them.", where, sum(undecodable.values()),
            ", ".join(f"{e} x{n}" for e, n in sorted(undecodable.items())))


def require_dir(path, what):
    if not path:
        raise DataError(f"{what}: --data_dir is required.")
    if not os.path.exists(path):
        raise DataError(f"{what}: --data_dir={path} does not exist.")


def resolve_genre_root(data_dir):
    """The folder whose sub-folders are genres: data_dir, or GTZAN's genres(_original)."""
    for sub in ("genres_original", "genres", os.path.join("Data", "genres_original"),
                os.path.join("Data", "genres")):
        cand = os.path.join(data_dir, sub)
        if os.path.isdir(cand):
            return cand
    return data_dir


def folder_entries(data_dir):
    """[(path, genre)] for a genre-per-folder tree; raises DataError on bad layouts."""
    require_dir(data_dir, "--dataset=folder")
    if not os.path.isdir(data_dir):
        raise DataError(f"--dataset=folder: --data_dir={data_dir} is a file; give the folder "
                        "that holds one sub-folder per genre.")
    root = resolve_genre_root(data_dir)
    genres = sorted(d for d in os.listdir(root)
                    if _visible(d) and os.path.isdir(os.path.join(root, d)))
    if not genres:
        top, _ = _audio_files_under(root) if os.path.isdir(root) else ([], 0)
        raise DataError(f"--dataset=folder: no genre sub-folders in {root} (found "
                        f"{len(top)} audio file(s)); put each genre's files in "
                        f"{root}/<genre>/.")
    entries, undecodable = [], collections.Counter()
    for g in genres:
        mine = collections.Counter()
        files, other = _audio_files_under(os.path.join(root, g), mine)
        if not files:
            unread = (f", {sum(mine.values())} of them in formats that cannot be decoded "
                      f"here: {', '.join(sorted(mine))}; convert them to FLAC, OGG, MP3 or "
                      "WAV" if mine else "")
            raise DataError(f"--dataset=folder: genre folder {os.path.join(root, g)!r} holds "
                            f"no audio files ({other} other file(s){unread}); add audio "
                            f"({', '.join(audio_io.AUDIO_EXTENSIONS[:5])}, ...) or remove it.")
        entries += [(f, g) for f in files]
        undecodable.update(mine)
    _warn_undecodable(undecodable, f"--dataset=folder ({root})")
    loose = [f for f in os.listdir(root)
             if audio_io.is_audio_path(f) and os.path.isfile(os.path.join(root, f))]
    if loose:
        logging.warning("--dataset=folder (%s): %d audio file(s) directly in it (e.g. %r) "
                        "belong to no genre and are not used; move them into a genre folder.",
                        root, len(loose), sorted(loose)[0])
    if len(genres) < 2:
        raise DataError(f"--dataset=folder: found {len(genres)} genre folder(s) in {root}: "
                        f"{genres}; at least two genres are needed.")
    return entries, root


# Header names a manifest's columns go by (lower case), best first; a first row naming one
# of each is the header, in any column order.
PATH_COLUMNS = ("path", "filepath", "file_path", "filename", "file_name", "file", "audio",
                "audio_path", "track")
GENRE_COLUMNS = ("genre", "label", "class", "category", "style", "genre_top")


def _header_columns(row):
    """(path column, genre column) if `row` is a header naming both, else None."""
    names = [c.strip().lower() for c in row]
    found = [next((names.index(n) for n in choices if n in names), None)
             for choices in (PATH_COLUMNS, GENRE_COLUMNS)]
    return None if None in found else tuple(found)


def manifest_entries(csv_path):
    """[(path, genre)] from a `path,genre` CSV or tab-separated file; missing files skipped.

    The header is optional; one naming its columns (path/file/filename..., genre/label/
    class...) may put them in any order, and other columns are ignored.
    """
    if os.path.isdir(csv_path):
        cand = os.path.join(csv_path, "manifest.csv")
        if not os.path.isfile(cand):
            raise DataError(f"--dataset=manifest: {csv_path} is a folder without "
                            "manifest.csv; give --data_dir=<file>.csv.")
        csv_path = cand
    base = os.path.dirname(os.path.abspath(csv_path))
    entries, skipped = [], []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        first = f.readline()
        # Tab-separated when the first line has a tab (a .tsv, or a sheet exported as
        # text: its paths may hold commas); otherwise a CSV, whose fields may quote commas.
        delimiter = "\t" if "\t" in first else ","
        f.seek(0)
        rows = [(line, r) for line, r in enumerate(csv.reader(f, delimiter=delimiter),
                                                   start=1)
                if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"--dataset=manifest: {csv_path} is empty; expected rows of "
                        "path,genre.")
    col_p, col_g = 0, 1
    header = _header_columns(rows[0][1])
    if header is not None:
        col_p, col_g = header
        rows = rows[1:]
    for line, row in rows:
        if len(row) <= max(col_p, col_g) or not row[col_g].strip():
            skipped.append((f"{csv_path}:{line}", "malformed row (need path,genre)"))
            continue
        path = row[col_p].strip()
        path = path if os.path.isabs(path) else os.path.join(base, path)
        if not os.path.isfile(path):
            skipped.append((path, "missing file"))
            continue
        if audio_io.is_audio_path(path):
            entries.append((path, row[col_g].strip()))
    return entries, skipped, csv_path


def _fma_tracks(tracks_csv):
    """{track_id: genre_top, subset} from FMA's multi-header tracks.csv."""
    with open(tracks_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = []
        for row in reader:
            if row and re.fullmatch(r"\d+", row[0].strip()):
                first = row
                break
            header.append(row)
        else:
            raise DataError(f"--fma_metadata={tracks_csv}: no track rows found.")

        def column(top, sub):
            for j in range(len(header[0])):
                names = [h[j].strip() if j < len(h) else "" for h in header]
                if len(names) >= 2 and names[0] == top and names[1] == sub:
                    return j
            return None

        if len(header) < 2:
            raise DataError(f"--fma_metadata={tracks_csv}: expected FMA's 2-3 header rows "
                            "(track / genre_top).")
        j_genre, j_subset = column("track", "genre_top"), column("set", "subset")
        if j_genre is None:
            raise DataError(f"--fma_metadata={tracks_csv}: no track/genre_top column.")
        out = {}
        for row in [first] + list(reader):
            if not row or not row[0].strip().isdigit():
                continue
            genre = row[j_genre].strip() if j_genre < len(row) else ""
            subset = row[j_subset].strip() if j_subset is not None and j_subset < len(row) \
                else ""
            out[int(row[0])] = (genre, subset)
    return out


def _fma_audio_dir(data_dir):
    """FMA audio folder: data_dir itself (holds 000/, 001/...) or its single fma_* child."""
    def has_shards(d):
        return any(re.fullmatch(r"\d{3}", s) and os.path.isdir(os.path.join(d, s))
                   for s in os.listdir(d))
    if has_shards(data_dir):
        return data_dir
    cands = sorted(d for d in os.listdir(data_dir) if d.startswith("fma_") and
                   os.path.isdir(os.path.join(data_dir, d)) and d != "fma_metadata" and
                   has_shards(os.path.join(data_dir, d)))
    if len(cands) != 1:
        raise DataError(f"FMA: {data_dir} holds {'no' if not cands else 'several'} fma_<size> "
                        f"audio folders {cands}; point --data_dir at one (e.g. "
                        f"{os.path.join(data_dir, 'fma_small')}).")
    return os.path.join(data_dir, cands[0])


def fma_entries(data_dir, fma_metadata):
    """[(path, genre_top)] for FMA tracks present under data_dir."""
    require_dir(data_dir, "--dataset=manifest with --fma_metadata")
    tracks_csv = fma_metadata
    if os.path.isdir(tracks_csv):
        tracks_csv = os.path.join(tracks_csv, "tracks.csv")
    if not os.path.isfile(tracks_csv):
        raise DataError(f"--fma_metadata={fma_metadata}: tracks.csv not found.")
    audio_dir = _fma_audio_dir(data_dir)
    tracks = _fma_tracks(tracks_csv)
    entries, no_genre, absent = [], 0, 0
    for tid, (genre, _) in sorted(tracks.items()):
        name = f"{tid:06d}"
        path = os.path.join(audio_dir, name[:3], name + ".mp3")
        if not os.path.isfile(path):
            absent += 1       # expected: fma_small/medium hold a subset of tracks.csv
            continue
        if not genre:
            no_genre += 1
            continue
        entries.append((path, genre))
    logging.info("FMA: %d tracks with audio and a top genre in %s (%d listed tracks not "
                 "present, %d present without genre_top).", len(entries), audio_dir, absent,
                 no_genre)
    if not entries:
        raise DataError(f"FMA: no track of {tracks_csv} has audio under {audio_dir} "
                        "(expected <audio_dir>/<xxx>/<xxxxxx>.mp3).")
    return entries, audio_dir


def nsynth_files(data_dir, heldout=False):
    """NSynth's TFRecords; heldout=True: its own valid (else test) split beside them."""
    require_dir(data_dir, "--dataset=nsynth")
    if heldout:
        folder = data_dir if os.path.isdir(data_dir) else os.path.dirname(data_dir)
        for name in ("nsynth-valid", "nsynth-test"):
            files = sorted(glob.glob(os.path.join(folder, name + "*.tfrecord*")))
            if files:
                return files
        logging.warning("--dataset=nsynth: no nsynth-valid/-test TFRecords beside %s: "
                        "evaluating on the training records.", data_dir)
    if os.path.isfile(data_dir):
        return [data_dir]
    files = sorted(glob.glob(os.path.join(data_dir, "nsynth-train*.tfrecord*")))
    if not files:
        files = sorted(glob.glob(os.path.join(data_dir, "*.tfrecord*")))
    if not files:
        raise DataError(f"--dataset=nsynth: no *.tfrecord files in {data_dir}; download "
                        "nsynth-train.tfrecord (see data/README.md).")
    return files

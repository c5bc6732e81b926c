#!/usr/bin/env bash
# Rebuilds a GTZAN-style corpus of real recorded music from Debian's package archive.
#
#   bench/real_corpus.sh [OUT_DIR]          (default OUT_DIR: runs/real_corpus)
#
# Writes
#   OUT_DIR/genres/<style>/<files as shipped>   one folder per style (for --dataset=folder)
#   OUT_DIR/manifest.csv                        path,genre; paths quoted, relative to OUT_DIR
#   OUT_DIR/SOURCES.md                          package, version, credit, licence, sizes
#   OUT_DIR/licenses/<package>.copyright        the packages' copyright files
#
# Only `apt-get download` and `dpkg -x` are used to fetch and unpack packages (no root needed
# unless `apt-get update` has to run); music tracks are copied unchanged (no re-encoding).
# Some file names contain spaces on purpose (see bench/real_corpus_README.md).
#
# Environment (all optional):
#   DEB_CACHE=DIR    keep the downloaded .deb files in DIR and reuse them on the next run
#   PYTHON=EXE       python with the soundfile module, used for durations
#   MIN_MINUTES=N    fail when a style holds less audio than this (default 20)
set -euo pipefail
export LC_ALL=C

OUT_DIR=${1:-runs/real_corpus}
MIN_MINUTES=${MIN_MINUTES:-20}
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[real_corpus] %s\n' "$*" >&2; }
die() { printf '[real_corpus] error: %s\n' "$*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb find sort; do
    command -v "$tool" >/dev/null || die "needs '$tool' (run on Debian or a Debian-based system)"
done

# ---------------------------------------------------------------------------------------------
# Styles. One style = one soundtrack or one composer. Each entry: packages, licence, credit.
# The files each style takes are chosen in collect_<style> below.
# ---------------------------------------------------------------------------------------------
STYLES=(orchestral electronic ambient metal cinematic)

declare -A PKGS LICENSE CREDIT DESCR LIC_CHECK
# wesnoth-music is a metapackage; its versioned dependency (wesnoth-1.16-music on Debian 12)
# holds the files.
WESNOTH_MUSIC=$(apt-cache depends wesnoth-music 2>/dev/null |
                awk '$1 == "Depends:" && $2 ~ /^wesnoth-.*-music$/ { print $2; exit }')
PKGS[orchestral]=${WESNOTH_MUSIC:-wesnoth-1.16-music}
DESCR[orchestral]="The Battle for Wesnoth soundtrack: orchestral fantasy (tags say 'Romantic Classical')"
CREDIT[orchestral]="Wesnoth project; composers in the files' tags: Aleksi Aubry-Carlson, Doug Kaufman, Mattias Westlund, Ryan Reilly, Timothy Pinkham, Tyler Johnson, Jeremy Nicoll, Gianmarco Leone, Stephen Rozanc, Joseph G. Toscano"
LICENSE[orchestral]="GPL-2+"
LIC_CHECK[orchestral]="GNU General Public License version 2"

PKGS[electronic]="nexuiz-music"
DESCR[electronic]="Nexuiz soundtrack: electronic / techno / industrial"
CREDIT[electronic]="Alientrap (Lee Vermeulen); artists in the files' tags: Gerd 'elysis' Raudenbusch, blkrbt, Parapraxis, Braden 'meoblast001' Walters"
LICENSE[electronic]="GPL-2+"
LIC_CHECK[electronic]="GNU General Public License"

PKGS[ambient]="singularity-music"
DESCR[ambient]="Endgame: Singularity soundtrack: ambient electronic"
CREDIT[ambient]="Max McCracken (Maxstack)"
LICENSE[ambient]="CC-BY-SA-3.0"
LIC_CHECK[ambient]="Attribution, ShareAlike"

PKGS[metal]="fretsonfire-songs-muldjord fretsonfire-songs-sectoid"
DESCR[metal]="Frets on Fire song packs: instrumental metal (Muldjord tags: 'Death Metal'); backing track song.ogg only, the separate lead-guitar stem guitar.ogg is left out"
CREDIT[metal]="El Senator of Muldjord (muldjord pack); Carlos Viola Iborra, 'Sectoid' (sectoid pack)"
LICENSE[metal]="CC-BY-SA-3.0 (muldjord) + Expat/MIT-style (sectoid)"
LIC_CHECK[metal]="Attribution-ShareAlike 3.0|Permission is hereby granted"

PKGS[cinematic]="ufoai-music"
DESCR[cinematic]="UFO: Alien Invasion, tracks by Crystan only: cinematic sci-fi score"
CREDIT[cinematic]="Christian 'Crystan' Hoffmann"
LICENSE[cinematic]="CC-BY-SA-3.0 (the Crystan files; the package holds GPL-2, CC-BY-3.0 and public-domain tracks by others)"
LIC_CHECK[cinematic]="CC-BY-SA-3.0"

# ---------------------------------------------------------------------------------------------
# Work folders.
# ---------------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/real_corpus.XXXXXX")
STAGE=""
cleanup() {
    rm -rf -- "$WORK"
    if [ -n "$STAGE" ] && [ -d "$STAGE" ]; then rm -rf -- "$STAGE"; fi
}
trap cleanup EXIT

if [ -n "${DEB_CACHE:-}" ]; then
    mkdir -p -- "$DEB_CACHE"
    DEB_DIR=$(cd "$DEB_CACHE" && pwd)
else
    DEB_DIR=$WORK/debs
    mkdir -p -- "$DEB_DIR"
    # apt drops privileges to _apt for downloads; let it write here (avoids a warning).
    if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
        chmod 711 "$WORK"
        chown _apt "$DEB_DIR"
    fi
fi
X=$WORK/x          # unpacked packages: $X/<package>/usr/...
mkdir -p -- "$X"

START=$(date +%s)

# ---------------------------------------------------------------------------------------------
# Download + unpack.
# ---------------------------------------------------------------------------------------------
candidate_version() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2; exit}'; }

deb_of() {  # newest .deb of package $1 in DEB_DIR whose version is the candidate (or empty)
    local pkg=$1 want f
    want=$(candidate_version "$pkg")
    for f in "$DEB_DIR/${pkg}"_*.deb; do
        [ -e "$f" ] || continue
        if [ "$(dpkg-deb -f "$f" Package)" = "$pkg" ] && { [ -z "$want" ] || [ "$want" = "(none)" ] \
              || [ "$(dpkg-deb -f "$f" Version)" = "$want" ]; }; then
            printf '%s\n' "$f"; return 0
        fi
    done
    return 0
}

fetch() {  # fetch PKG...: downloads what is not cached; runs apt-get update only on failure
    local need=() p
    for p in "$@"; do [ -n "$(deb_of "$p")" ] || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] && return 0
    log "downloading: ${need[*]}"
    if ! (cd "$DEB_DIR" && apt-get download -q "${need[@]}" >&2); then
        log "apt-get download failed; running apt-get update and retrying"
        apt-get update -q >&2 || die "apt-get update failed (needs root and a Debian mirror)"
        (cd "$DEB_DIR" && apt-get download -q "${need[@]}" >&2) \
            || die "could not download: ${need[*]} (check the package names with apt-cache policy)"
    fi
    for p in "${need[@]}"; do [ -n "$(deb_of "$p")" ] || die "download of $p left no .deb in $DEB_DIR"; done
}

declare -A VERSION
unpack() {  # unpack PKG: dpkg -x into $X/PKG
    local pkg=$1 deb
    deb=$(deb_of "$pkg")
    [ -n "$deb" ] || die "no .deb for $pkg"
    VERSION[$pkg]=$(dpkg-deb -f "$deb" Version)
    log "unpacking $pkg ${VERSION[$pkg]}"
    rm -rf -- "${X:?}/$pkg"
    mkdir -p -- "$X/$pkg"
    dpkg-deb -x "$deb" "$X/$pkg"
}

unzip_to() {  # unzip_to ARCHIVE DEST MEMBER_GLOB: extract members of a .pk3 (zip)
    local zip=$1 dest=$2 glob=$3
    mkdir -p -- "$dest"
    if command -v unzip >/dev/null; then
        unzip -q -o "$zip" "$glob" -d "$dest"
    else
        command -v python3 >/dev/null || die "needs unzip or python3 to open $zip"
        python3 - "$zip" "$dest" "$glob" <<'EOF'
import fnmatch, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2], [n for n in z.namelist() if fnmatch.fnmatch(n, sys.argv[3])])
EOF
    fi
}

# ---------------------------------------------------------------------------------------------
# Copy helpers.
# ---------------------------------------------------------------------------------------------
copy_glob() {  # copy_glob DEST SRC_DIR GLOB [EXCLUDED_BASENAME...]
    local dest=$1 dir=$2 glob=$3 f b e n=0
    shift 3
    [ -d "$dir" ] || die "expected folder missing: $dir"
    for f in "$dir"/$glob; do
        [ -f "$f" ] || continue
        b=$(basename -- "$f")
        for e in "$@"; do [ "$b" = "$e" ] && continue 2; done
        cp -- "$f" "$dest/$b"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || die "no files matched $dir/$glob"
}

one_dir() {  # one_dir BASE GLOB: the single folder BASE/GLOB (version-independent paths)
    local base=$1 glob=$2 d m=()
    for d in "$base"/$glob; do [ -d "$d" ] && m+=("$d"); done
    [ ${#m[@]} -eq 1 ] || die "expected one folder $base/$glob, found ${#m[@]}"
    printf '%s\n' "${m[0]}"
}

# ---------------------------------------------------------------------------------------------
# Per-style selection: only music tracks (all >= 60 s); stingers and effects are left out.
# ---------------------------------------------------------------------------------------------
collect_orchestral() {
    local dir
    dir=$(one_dir "$X/${PKGS[orchestral]}/usr/share/games/wesnoth" '*/data/core/music')
    # Left out: victory/defeat stingers and short menu/interlude pieces (5-52 s).
    copy_glob "$1" "$dir" '*.ogg' \
        defeat.ogg defeat2.ogg elf-land.ogg main_menu.ogg sad.ogg silence.ogg \
        transience.ogg victory.ogg victory2.ogg
}

collect_electronic() {
    local pk3=$X/nexuiz-music/usr/share/games/nexuiz/data/music.pk3
    [ -f "$pk3" ] || die "missing $pk3"
    unzip_to "$pk3" "$WORK/nexuiz" 'sound/cdtracks/*.ogg'
    # Left out: thunder.ogg (48 s of thunder at 11 kHz, an effect).
    copy_glob "$1" "$WORK/nexuiz/sound/cdtracks" '*.ogg' thunder.ogg
}

collect_ambient() {
    local dir=$X/singularity-music/usr/share/games/singularity/music
    # Names as shipped contain spaces ("A New Journey.ogg"). Left out: lose/ (two 43 s cues).
    copy_glob "$1" "$dir" '*.ogg'
    copy_glob "$1" "$dir/win" '*.ogg'
}

collect_metal() {
    local dest=$1 pack songs d name n
    for pack in muldjord sectoid; do
        songs=$X/fretsonfire-songs-$pack/usr/share/games/fretsonfire/data/songs/$pack
        [ -d "$songs" ] || die "missing $songs"
        n=0
        for d in "$songs"/*/; do
            [ -f "$d/song.ogg" ] || continue
            name=$(sed -n 's/^name[[:space:]]*=[[:space:]]*//p' "$d/song.ini" 2>/dev/null | head -n1 | tr -d '\r')
            [ -n "$name" ] || name=$(basename -- "$d")
            name=$(printf '%s' "$name" | tr '/\\:*?"<>|' '_________' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
            # Every song folder holds a song.ogg, so the copies get "<pack> - <title>.ogg"
            # (names with spaces, on purpose).
            cp -- "$d/song.ogg" "$dest/$pack - $name.ogg"
            n=$((n + 1))
        done
        [ "$n" -gt 0 ] || die "no song.ogg under $songs"
    done
}

collect_cinematic() {
    local pk3=$X/ufoai-music/usr/share/games/ufoai/base/0music.pk3
    [ -f "$pk3" ] || die "missing $pk3"
    unzip_to "$pk3" "$WORK/ufoai" 'music/Crystan-*.ogg'
    copy_glob "$1" "$WORK/ufoai/music" 'Crystan-*.ogg'
}

# ---------------------------------------------------------------------------------------------
# Build into a staging folder next to OUT_DIR, then swap it in.
# ---------------------------------------------------------------------------------------------
mkdir -p -- "$(dirname -- "$OUT_DIR")"
OUT_PARENT=$(cd "$(dirname -- "$OUT_DIR")" && pwd)
OUT_DIR=$OUT_PARENT/$(basename -- "$OUT_DIR")
if [ -e "$OUT_DIR" ]; then
    [ -d "$OUT_DIR" ] || die "$OUT_DIR exists and is not a folder"
    if [ ! -e "$OUT_DIR/.real_corpus" ] && [ -n "$(ls -A -- "$OUT_DIR")" ]; then
        die "$OUT_DIR exists, is not empty and was not made by this script; remove it or pick another OUT_DIR"
    fi
fi
STAGE=$(mktemp -d "$OUT_PARENT/.$(basename -- "$OUT_DIR").partial.XXXXXX")
chmod "$(printf '%o' $(( 0777 & ~$(umask) )))" "$STAGE"   # mktemp makes it 0700
mkdir -p -- "$STAGE/genres" "$STAGE/licenses"

all_pkgs=()
for s in "${STYLES[@]}"; do
    # shellcheck disable=SC2206
    all_pkgs+=(${PKGS[$s]})
done
fetch "${all_pkgs[@]}"

for s in "${STYLES[@]}"; do
    for p in ${PKGS[$s]}; do
        unpack "$p"
        cr=$X/$p/usr/share/doc/$p/copyright
        [ -f "$cr" ] || die "no copyright file in $p"
        cp -- "$cr" "$STAGE/licenses/$p.copyright"
    done
    # Light check that the licence recorded above is the one the copyright file states.
    crs=()
    for p in ${PKGS[$s]}; do crs+=("$STAGE/licenses/$p.copyright"); done
    if ! cat "${crs[@]}" | grep -Eq -- "${LIC_CHECK[$s]}"; then
        log "warning: licence text '${LIC_CHECK[$s]}' not found for $s; check ${PKGS[$s]}"
    fi
    mkdir -p -- "$STAGE/genres/$s"
    log "collecting $s"
    "collect_$s" "$STAGE/genres/$s"
    for p in ${PKGS[$s]}; do rm -rf -- "${X:?}/$p"; done   # keep the temp folder small
done

# manifest.csv: every audio file under genres/, path quoted (CSV style, quotes doubled).
{
    printf 'path,genre\n'
    (cd "$STAGE" && find genres -mindepth 2 -maxdepth 2 -type f -print0 | sort -z) |
    while IFS= read -r -d '' rel; do
        genre=${rel#genres/}; genre=${genre%%/*}
        printf '"%s",%s\n' "${rel//\"/\"\"}" "$genre"
    done
} > "$STAGE/manifest.csv"

# ---------------------------------------------------------------------------------------------
# Durations, sample rates, channels: python + soundfile if present, else soxi.
# Output: one TSV line per style: style files seconds rates channels formats shortest_s
# ---------------------------------------------------------------------------------------------
find_python() {
    local c
    for c in "${PYTHON:-}" "$REPO_DIR/.venv/bin/python" python3; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import soundfile' >/dev/null 2>&1; then
            printf '%s\n' "$c"; return 0
        fi
    done
    return 1
}

SUMMARY=$WORK/summary.tsv
if PY=$(find_python); then
    log "measuring with $PY (soundfile)"
    "$PY" - "$STAGE/genres" > "$SUMMARY" <<'EOF'
import os, sys
import soundfile as sf
root = sys.argv[1]
for style in sorted(os.listdir(root)):
    d = os.path.join(root, style)
    secs, rates, chans, fmts, shortest, n = 0.0, set(), set(), set(), None, 0
    for f in sorted(os.listdir(d)):
        i = sf.info(os.path.join(d, f))
        s = i.frames / i.samplerate
        secs += s; n += 1
        rates.add(i.samplerate); chans.add(i.channels)
        fmts.add(f"{i.format}/{i.subtype}")
        shortest = s if shortest is None else min(shortest, s)
    print("\t".join([style, str(n), f"{secs:.1f}", ",".join(map(str, sorted(rates))),
                     ",".join(map(str, sorted(chans))), ",".join(sorted(fmts)),
                     f"{(shortest or 0):.1f}"]))
EOF
elif command -v soxi >/dev/null; then
    log "measuring with soxi"
    for s in "${STYLES[@]}"; do
        for f in "$STAGE/genres/$s"/*; do
            printf '%s\t%s\t%s\t%s\n' "$(soxi -D "$f")" "$(soxi -r "$f")" "$(soxi -c "$f")" "${f##*.}"
        done | awk -F'\t' -v s="$s" '
            { n++; t += $1; r[$2]; c[$3]; x[toupper($4)]; if (m == "" || $1 < m) m = $1 }
            function keys(a,   k, o) { o = ""; for (k in a) o = o (o == "" ? "" : ",") k; return o }
            END { printf "%s\t%d\t%.1f\t%s\t%s\t%s\t%.1f\n", s, n, t, keys(r), keys(c), keys(x), m }'
    done > "$SUMMARY"
else
    log "warning: neither python+soundfile nor soxi found; durations not measured"
    log "         (apt-get install -y sox libsox-fmt-all, or set PYTHON=...)"
    for s in "${STYLES[@]}"; do
        printf '%s\t%s\tnan\t?\t?\t?\tnan\n' "$s" "$(find "$STAGE/genres/$s" -type f | wc -l)"
    done > "$SUMMARY"
fi

# ---------------------------------------------------------------------------------------------
# SOURCES.md
# ---------------------------------------------------------------------------------------------
field() { awk -F'\t' -v s="$1" -v k="$2" '$1 == s { print $k }' "$SUMMARY"; }
minutes() { awk -v t="$1" 'BEGIN { if (t == "nan") print "n/a"; else printf "%.1f", t / 60 }'; }
{
    printf '# Real-music corpus: sources\n\n'
    printf 'Built by `bench/real_corpus.sh` on %s from Debian packages (%s).\n' \
        "$(date -u +%Y-%m-%d)" "$(. /etc/os-release 2>/dev/null && printf '%s' "${PRETTY_NAME:-unknown}")"
    printf 'Audio files are copied unchanged from the packages; the packages'"'"' copyright files are in `licenses/`.\n'
    printf 'Read `licenses/` before redistributing the audio or anything trained on it.\n\n'
    printf '| style | package (version) | credit | licence | files | minutes | sample rates | channels |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    for s in "${STYLES[@]}"; do
        pv=""
        for p in ${PKGS[$s]}; do pv+="${pv:+, }$p (${VERSION[$p]})"; done
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$s" "$pv" "${CREDIT[$s]}" \
            "${LICENSE[$s]}" "$(field "$s" 2)" "$(minutes "$(field "$s" 3)")" \
            "$(field "$s" 4)" "$(field "$s" 5)"
    done
    printf '\n'
    for s in "${STYLES[@]}"; do
        printf -- '- **%s**: %s. Formats: %s.\n' "$s" "${DESCR[$s]}" "$(field "$s" 6)"
    done
} > "$STAGE/SOURCES.md"
: > "$STAGE/.real_corpus"

# Swap in.
if [ -d "$OUT_DIR" ]; then rm -rf -- "$OUT_DIR"; fi
mv -- "$STAGE" "$OUT_DIR"
STAGE=""

# ---------------------------------------------------------------------------------------------
# Summary.
# ---------------------------------------------------------------------------------------------
status=0
printf '\n%-11s %5s %8s %13s %8s  %-12s %s\n' style files minutes 'sample rates' channels 'shortest (s)' formats
while IFS=$'\t' read -r s n secs rates chans fmts shortest; do
    m=$(minutes "$secs")
    flag=""
    if [ "$n" -lt 1 ]; then flag="  << no files"; status=1
    elif [ "$m" != "n/a" ] && awk -v m="$m" -v min="$MIN_MINUTES" 'BEGIN { exit !(m < min) }'; then
        flag="  << under $MIN_MINUTES min"; status=1
    fi
    printf '%-11s %5s %8s %13s %8s  %-12s %s%s\n' "$s" "$n" "$m" "$rates" "$chans" "$shortest" "$fmts" "$flag"
done < "$SUMMARY"
total_files=$(($(wc -l < "$OUT_DIR/manifest.csv") - 1))
printf '\n%s files, %s on disk, %ss. Wrote %s/{genres/,manifest.csv,SOURCES.md,licenses/}\n' \
    "$total_files" "$(du -sh "$OUT_DIR" | cut -f1)" "$(( $(date +%s) - START ))" "$OUT_DIR"
exit "$status"

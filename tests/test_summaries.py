"""TensorBoard summaries: the axes mean what they say, the track is long and in range, and a
writer's event files hold one image and one audio track per genre."""
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from gansynth_tf import normalizers, summaries
from gansynth_tf.representation import Representation

SR, LENGTH = 8000, 4096


def quickstart_rep(mel=True, fitted=False):
    """The quickstart representation (8 kHz, 32x128); optionally a min/max normaliser."""
    rep = Representation(sample_rate=SR, audio_length=LENGTH, spec_shape=(32, 128),
                         overlap=0.5, mel=mel)
    if fitted:
        norm = normalizers.MinMaxNormalizer()
        norm.fit(rep.waves_to_unnormalized(tf.constant(tones([440, 2000]))))
        rep.set_normalizer(norm)
    return rep


def tones(freqs, amplitude=0.5, noise=1e-3, seed=0):
    """float32 [len(freqs), LENGTH, 1]: a sine per frequency plus a little noise."""
    t = np.arange(LENGTH) / SR
    rng = np.random.default_rng(seed)
    waves = [amplitude * np.sin(2 * np.pi * f * t) + noise * rng.standard_normal(LENGTH)
             for f in freqs]
    return np.asarray(waves, np.float32)[..., None]


def test_linear_rows_are_the_stft_bins_above_dc():
    rep = quickstart_rep(mel=False)
    freqs = summaries.bin_frequencies(rep)
    np.testing.assert_allclose(freqs, (np.arange(128) + 1) * SR / 256.0)


@pytest.mark.parametrize("mel", [True, False])
@pytest.mark.parametrize("tone", [300.0, 1200.0, 3100.0])
def test_a_tone_lands_on_the_row_labelled_with_its_frequency(mel, tone):
    rep = quickstart_rep(mel=mel)
    feats = rep.waves_to_unnormalized(tf.constant(tones([tone]))).numpy()[0]
    row = int(np.argmax(feats[4:-4, :, 0].mean(axis=0)))  # away from the clip's edges
    freqs = summaries.bin_frequencies(rep)
    # Within the spacing of the rows around it (a mel band at 3 kHz is ~100 Hz wide).
    spacing = np.diff(freqs)[max(row - 1, 0):row + 1].max()
    assert abs(freqs[row] - tone) <= spacing, (freqs[row], tone, spacing)


def test_frame_times_put_a_click_at_its_time():
    rep = quickstart_rep()
    for at in (600, 2048, 3500):
        wave = np.zeros([1, LENGTH, 1], np.float32)
        wave[0, at, 0] = 1.0
        feats = rep.waves_to_unnormalized(tf.constant(wave)).numpy()[0]
        frame = int(np.argmax(feats[..., 0].mean(axis=1)))
        hop = rep.helper.hop
        assert abs(summaries.frame_times(rep)[frame] - at / SR) <= hop / 2 / SR


def test_track_is_the_fewest_whole_clips_that_reach_the_length():
    rep = quickstart_rep()
    for seconds in (0.4, 2.0, 5.0, 7.3):
        n = summaries.track_clips(rep, seconds)
        assert summaries.track_length(rep, n) >= seconds * SR
        if n > 1:
            assert summaries.track_length(rep, n - 1) < seconds * SR
    assert summaries.track_clips(rep, 0.0, min_clips=3) == 3
    assert summaries.track_clips(rep, 1.0, min_clips=6) == 6  # 3 clips would do
    overlap = summaries.crossfade_samples(rep)
    assert overlap == 400  # 50 ms at 8 kHz
    assert summaries.track_length(rep, 3) == 2 * (LENGTH - overlap) + LENGTH
    np.testing.assert_allclose(summaries.clip_starts(rep, 3),
                               np.arange(3) * (LENGTH - overlap) / SR)
    with pytest.raises(ValueError, match=">= 0"):
        summaries.track_clips(rep, -1.0)
    with pytest.raises(ValueError, match=">= 1"):
        summaries.track_clips(rep, 1.0, min_clips=0)


def test_crossfade_is_at_most_a_quarter_clip():
    rep = Representation(sample_rate=8000, audio_length=512, spec_shape=(8, 64), overlap=0.5)
    assert summaries.crossfade_samples(rep) == 128


def test_join_track_scales_the_whole_track_once_into_range():
    rng = np.random.default_rng(1)
    clips = np.stack([0.3 * rng.standard_normal(1000), 3.0 * rng.standard_normal(1000),
                      0.1 * rng.standard_normal(1000)])
    clips[2, 500] = np.nan
    track = summaries.join_track(clips, 100)
    assert track.dtype == np.float32 and track.shape == (2 * 900 + 1000,)
    assert np.all(np.isfinite(track))
    assert np.max(np.abs(track)) == pytest.approx(summaries.TRACK_PEAK, abs=1e-6)
    gain = summaries.TRACK_PEAK / np.max(np.abs(clips[1]))  # the loud clip sets the peak
    # Outside the crossfades every clip keeps its own level under the one gain.
    np.testing.assert_allclose(track[:900], clips[0, :900] * gain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(track[1000:1800], clips[1, 100:900] * gain, rtol=1e-5,
                               atol=1e-6)
    assert track[1800 + 500] == 0.0  # the NaN


def test_join_track_keeps_a_silent_generator_quiet():
    quiet = np.full([2, 1000], 1e-5)
    track = summaries.join_track(quiet, 100)
    assert np.max(np.abs(track)) < 0.02


def distinct_colours(image):
    return len(np.unique(image[0, ..., :3].reshape(-1, 3), axis=0))


@pytest.mark.parametrize("mel", [True, False])
def test_figure_is_an_rgba_image_with_axes_and_both_panels(mel):
    rep = quickstart_rep(mel=mel, fitted=True)
    feats = rep.waves_to_features(tf.constant(tones([440, 1000]))).numpy()
    image = summaries.spectrogram_figure(feats, rep, "jazz", 1500, total_clips=4)
    height, width = (int(v * summaries.DPI) for v in summaries.FIGURE_SIZE[::-1])
    assert image.dtype == np.uint8 and image.shape == (1, height, width, 4)
    assert np.all(image[..., 3] == 255)
    # Two colour maps, colour bars and anti-aliased text: thousands of colours; a blank
    # canvas has one, the grey strip of a raw tensor at most 256.
    assert distinct_colours(image) > 1000
    background = np.all(image[0, ..., :3] == 255, axis=-1)
    assert 0.3 < 1.0 - background.mean() < 0.95
    # Each half holds a panel: plenty of non-white pixels on both sides.
    assert (~background[:, :width // 2]).mean() > 0.3
    assert (~background[:, width // 2:]).mean() > 0.3


def test_figure_shows_where_the_tone_is():
    rep = quickstart_rep(fitted=True)
    low, high = (summaries.spectrogram_figure(
        rep.waves_to_features(tf.constant(tones([f]))).numpy(), rep, "jazz", 0)
        for f in (300, 3000))
    changed = np.any(low != high, axis=-1)[0]
    # The magnitude panel (left half) changes, the title and axes do not.
    assert changed[:, :changed.shape[1] // 2].mean() > 0.02
    assert not changed[:25].any()  # the title row


def test_figure_refuses_features_of_another_shape():
    rep = quickstart_rep()
    with pytest.raises(ValueError, match=r"\[clips, 32, 128, 2\]"):
        summaries.spectrogram_figure(np.zeros([1, 16, 128, 2]), rep, "jazz", 0)
    with pytest.raises(ValueError, match="total_clips"):
        summaries.spectrogram_figure(np.zeros([3, 32, 128, 2]), rep, "jazz", 0, total_clips=2)


def test_colour_range_of_a_fitted_normaliser_is_the_data_range_in_db():
    rep = quickstart_rep(fitted=True)
    data = rep.waves_to_unnormalized(tf.constant(tones([440, 2000]))).numpy()[..., 0]
    low, high = summaries.magnitude_range_db(rep)
    db = summaries.log_magnitude_db(rep, data)
    assert high == pytest.approx(db.max(), abs=1e-3)
    assert low == pytest.approx(max(db.min(), db.max() - summaries.MAX_RANGE_DB), abs=1e-3)
    # Mel features hold log power: 10 log10 per natural-log unit.
    assert summaries.log_magnitude_db(rep, np.log(100.0)) == pytest.approx(20.0)
    assert summaries.log_magnitude_db(quickstart_rep(mel=False), np.log(10.0)) == \
        pytest.approx(20.0)


def test_colour_range_without_a_fitted_normaliser_follows_the_drawing():
    rep = quickstart_rep()  # GANSynth's prespecified constants
    assert summaries.magnitude_range_db(rep, np.array([-50.0, 12.0])) == (
        12.0 - summaries.FREE_RANGE_DB, 12.0)
    with pytest.raises(ValueError, match="magnitude_db"):
        summaries.magnitude_range_db(rep)


def read_tensors(logdir):
    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return {tag: acc.Tensors(tag) for tag in acc.Tags()["tensors"]}


def test_writer_holds_one_image_and_one_track_per_genre(tmp_path):
    rep = quickstart_rep(fitted=True)
    genres = ["ambient", "hip hop/rap", "techno"]
    clips = 3
    waves = tones([220, 330, 440, 550, 660, 770, 880, 990, 1100], seed=2)
    feats = tf.reshape(rep.waves_to_features(tf.constant(waves)), [3, clips, 32, 128, 2])
    writer = tf.summary.create_file_writer(str(tmp_path))
    tracks = summaries.write_genre_summaries(writer, 700, rep, genres, feats, image_clips=2)
    writer.close()
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(tmp_path))

    tensors = read_tensors(str(tmp_path))
    tags = {"ambient": "ambient", "hip hop/rap": "hip_hop_rap", "techno": "techno"}
    assert sorted(tensors) == sorted([f"spectrogram/{t}" for t in tags.values()]
                                     + [f"audio/{t}" for t in tags.values()])
    samples = summaries.track_length(rep, clips)
    assert samples == 3 * LENGTH - 2 * 400
    for genre, tag in tags.items():
        (image_event,) = tensors[f"spectrogram/{tag}"]
        assert image_event.step == 700
        encoded = tf.make_ndarray(image_event.tensor_proto)  # [width, height, png]
        png = tf.io.decode_png(encoded[2], channels=4).numpy()
        assert png.shape == (300, 900, 4) and distinct_colours(png[None]) > 1000

        (audio_event,) = tensors[f"audio/{tag}"]
        assert audio_event.step == 700
        encoded = tf.make_ndarray(audio_event.tensor_proto)  # [1 track, (wav, label)]
        assert encoded.shape == (1, 2)
        audio, rate = tf.audio.decode_wav(encoded[0, 0])
        assert int(rate) == SR and audio.shape == (samples, 1)
        track = tracks[genre]
        assert track.shape == (samples,) and np.max(np.abs(track)) <= 1.0
        assert np.max(np.abs(track)) == pytest.approx(summaries.TRACK_PEAK, abs=1e-5)
        # 16-bit PCM of the track itself: nothing was clipped on the way.
        np.testing.assert_allclose(audio.numpy()[:, 0], track, atol=2.0 / 32768)
        # The track opens with the genre's clip 0: its tone.
        spectrum = np.abs(np.fft.rfft(track[:LENGTH - 400]))
        expected = 220 + 110 * clips * list(tags).index(genre)  # rows g * clips + k
        assert abs(np.argmax(spectrum) * SR / (LENGTH - 400) - expected) < 5


def test_writer_needs_one_name_per_genre(tmp_path):
    rep = quickstart_rep()
    writer = tf.summary.create_file_writer(str(tmp_path))
    with pytest.raises(ValueError, match="2 genres, but 3"):
        summaries.write_genre_summaries(writer, 0, rep, ["a", "b", "c"],
                                        np.zeros([2, 1, 32, 128, 2], np.float32))


def test_audio_spectrogram_figure_labels_its_axes_and_draws_a_tone_at_its_frequency(tmp_path):
    sr = 8000
    tone = np.sin(2 * np.pi * 1000.0 * np.arange(sr) / sr)
    fig = summaries.audio_spectrogram_figure(tone, sr, "a 1 kHz tone")
    ax, bar = fig.axes
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "frequency (Hz)"
    assert bar.get_ylabel() == "power (dB)" and ax.get_title() == "a 1 kHz tone"
    assert ax.get_xlim() == pytest.approx((0.0, 1.0)) and ax.get_ylim() == (0.0, sr / 2)
    cells = np.asarray(ax.collections[0].get_array()).reshape(129, -1)   # [bins, frames]
    assert int(np.argmax(cells.mean(axis=1))) == 32                      # 1000 Hz / (8000 / 256)
    fig.savefig(tmp_path / "tone.png")
    assert (tmp_path / "tone.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="one non-empty channel"):
        summaries.audio_spectrogram_figure(np.zeros([2, 10]), sr, "stereo")

"""--features_on_device: the pipeline yields waves and the train step makes the features.

The features must be the same wherever they are computed, and the flag is a placement
choice: a run trains with it on, and resumes with it off.
"""
import functools
import os

import numpy as np
import pytest
import tensorflow as tf
from test_train import TINY, checkpoint_step, run_training

from gansynth_tf import datasets, normalizers
from gansynth_tf.representation import Representation


@pytest.mark.parametrize("mel", [True, False])
def test_the_same_features_in_the_pipeline_and_in_a_tf_function(mel):
    cfg = datasets.DataConfig(dataset="synthetic", synthetic_clips_per_genre=2,
                              sample_rate=8000, audio_length=4096)
    source = datasets.build_source(cfg)
    rep = Representation(sample_rate=8000, audio_length=4096, spec_shape=(32, 128),
                         overlap=0.5, mel=mel)
    norm = datasets.fit_normalizer(source, rep.waves_to_unnormalized,
                                   normalizers.make_normalizer("minmax"), num_clips=8)
    rep.set_normalizer(norm)
    host = datasets.make_train_dataset(source, 6, rep.waves_to_features, training=False,
                                       repeat=False)
    waves = datasets.make_train_dataset(source, 6, None, training=False, repeat=False)
    (x_host, y_host), = host.take(1).as_numpy_iterator()
    (w, y_waves), = waves.take(1).as_numpy_iterator()
    assert w.shape == (6, 4096) and w.dtype == np.float32
    on_device = tf.function(functools.partial(datasets.batch_features,
                                              rep.waves_to_features))
    x_device = on_device(tf.constant(w)).numpy()
    assert x_device.shape == x_host.shape == (6, 32, 128, 2)
    np.testing.assert_array_equal(y_host, y_waves)
    np.testing.assert_allclose(x_device, x_host, rtol=0, atol=1e-5)
    assert np.abs(x_host).max() > 0.5  # real features, not zeros


def _weights(train_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(train_dir, "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.split("/")[0] in ("generator", "discriminator")}


def test_a_tiny_run_on_device_trains_like_the_host_one_and_resumes_off(tmp_path):
    common = [*TINY, "--max_steps=4", "--audio_summary_every_steps=0", "--seed=3",
              "--deterministic"]
    host_dir, device_dir = str(tmp_path / "host"), str(tmp_path / "device")
    result = run_training([f"--train_dir={host_dir}", *common, "--features_on_device=false"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "in the input pipeline, on the host" in result.stderr
    result = run_training([f"--train_dir={device_dir}", *common, "--features_on_device"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "in the train step, on the device" in result.stderr
    assert checkpoint_step(device_dir) == checkpoint_step(host_dir) == 4
    # Same data, same seed, the same features computed elsewhere: the same training.
    host, device = _weights(host_dir), _weights(device_dir)
    assert sorted(host) == sorted(device) and host
    for name in host:
        np.testing.assert_allclose(device[name], host[name], rtol=1e-3, atol=1e-4,
                                   err_msg=name)
    # A placement choice, not a setting of the run: resuming with the other value works.
    result = run_training([f"--train_dir={device_dir}", *common, "--max_steps=6",
                           "--features_on_device=false"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_step(device_dir) == 6

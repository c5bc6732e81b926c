"""--precision: which policy each setting picks, and a mixed_bfloat16 GAN against float32.

Tolerances. bfloat16 keeps 8 significant bits (unit roundoff 2^-8 ~ 3.9e-3, 8x float16's).
From identical weights, four SGD steps of the tiny GAN under mixed_bfloat16 gave every
tracked loss within 1.6e-2 relative of float32's (the largest: the Wasserstein estimate, a
difference of two scores) and weights' changes within 4.2e-2; the bounds are about 3x that.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from test_mixed_precision import STEPS, batch, flat, make_pair, policy, rel, step, trainable
from test_train import TINY as TINY_RUN
from test_train import run_training

from gansynth_tf import precision
from gansynth_tf.losses import ADVERSARIAL_LOSSES

BF16 = "mixed_bfloat16"
X86_BF16 = {"fpu", "avx2", "avx512f", "avx512_bf16"}
X86_PLAIN = {"fpu", "avx2", "avx512f"}


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", ["float32", BF16, "mixed_float16"])
def test_a_named_precision_is_used_as_given(name):
    for has_gpu in (False, True):
        for cpu in (X86_BF16, X86_PLAIN):
            assert precision.resolve(name, has_gpu, cpu) == name


@pytest.mark.parametrize("has_gpu,cpu,expected", [
    (False, X86_BF16, BF16),
    (False, {"avx512f", "amx_bf16", "amx_tile"}, BF16),
    (False, {"fp", "asimd", "bf16"}, BF16),  # Arm's "Features"
    (False, X86_PLAIN, "float32"),  # bfloat16 would be emulated: slower than float32
    (False, set(), "float32"),
    (True, X86_BF16, "float32"),  # GPUs: float32 unless asked (device_check measures)
])
def test_auto_picks_bfloat16_only_on_a_cpu_with_native_bfloat16(has_gpu, cpu, expected):
    assert precision.resolve("auto", has_gpu, cpu) == expected


def test_cpu_flags_reads_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                   "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\nCPU part\t: 0xd40\n")
    assert precision.cpu_flags(str(x86)) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(str(arm)) == {"fp", "asimd", "bf16", "i8mm"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()
    assert precision.resolve("auto", False, precision.cpu_flags(str(arm))) == BF16


def test_mixed_precision_flag_means_float16_and_may_not_contradict_precision():
    assert precision.from_flags("float32", True, has_gpu=True) == "mixed_float16"
    assert precision.from_flags("mixed_float16", True, has_gpu=True) == "mixed_float16"
    assert precision.from_flags(BF16, False, has_gpu=False) == BF16
    with pytest.raises(ValueError, match="contradicts --precision=mixed_bfloat16"):
        precision.from_flags(BF16, True, has_gpu=False)
    with pytest.raises(ValueError, match="expected one of"):
        precision.resolve("float64", False, X86_BF16)


def make_bf16_pair(kind):
    return make_pair(kind=kind, mixed=BF16, mode_seeking_weight=1.0)


def test_bfloat16_computes_in_bfloat16_keeps_float32_weights_and_needs_no_loss_scale():
    _, gan = make_bf16_pair("wgan_gp")
    for net in (gan.generator, gan.discriminator, gan.ema_generator):
        convs = [lay for lay in net._flatten_layers() if lay.weights and lay is not net]
        assert convs and {lay.compute_dtype for lay in convs} == {"bfloat16"}
        assert {w.dtype for w in net.weights} == {"float32"}
    for opt in (gan.d_optimizer, gan.g_optimizer):
        assert not isinstance(opt, keras.optimizers.LossScaleOptimizer)
    with policy(BF16):
        out = gan.generate([0, 1], seed=0)
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL_LOSSES))
def test_bfloat16_steps_give_the_float32_losses(kind):
    g32, g16 = make_bf16_pair(kind)
    data = tuple(tf.constant(a) for a in batch())
    start = [v.numpy() for v in trainable(g32)]
    logs32 = step(g32, data, "float32", STEPS)
    logs16 = step(g16, data, BF16, STEPS)
    penalty = "gp" if kind == "wgan_gp" else "r1"
    assert min(log[penalty] for log in logs32) > 1e-3  # the double backprop takes part
    for i, (a, b) in enumerate(zip(logs16, logs32)):
        assert set(a) == set(b) and all(np.isfinite(v) for v in a.values()), (i, a)
        for key in b:
            if not key.startswith("acc_"):  # arg-max counts: not a rounding question
                assert a[key] == pytest.approx(b[key], rel=5e-2, abs=5e-3), (kind, i, key)
    moved = rel(flat(v.numpy() for v in trainable(g16)) - flat(start),
                flat(v.numpy() for v in trainable(g32)) - flat(start))
    assert 0 < moved < 0.12, moved


def test_a_bfloat16_run_exports_a_float32_generator(tmp_path):
    train_dir = str(tmp_path / "run")
    result = run_training([f"--train_dir={train_dir}", "--total_images=48",
                           "--precision=mixed_bfloat16", *TINY_RUN[:-1],
                           "--export_at_end=true"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Compute precision: mixed_bfloat16 (--precision=mixed_bfloat16)" in result.stderr
    model = tf.saved_model.load(f"{train_dir}/export")
    out = model.signatures["serving_default"](genre=tf.constant([0, 1]),
                                              z=tf.random.stateless_normal([2, 8], [0, 0]))
    assert out["audio"].dtype == tf.float32 and out["audio"].shape == (2, 512)
    assert np.isfinite(out["audio"].numpy()).all()
    # The exported graph computes in float32: no bfloat16 tensor anywhere in it.
    graph = model.signatures["serving_default"].graph.as_graph_def()
    functions = [graph.node] + [f.node_def for f in graph.library.function]
    dtypes = {attr.type for nodes in functions for node in nodes
              for attr in node.attr.values() if attr.type}
    assert tf.bfloat16.as_datatype_enum not in dtypes


def test_contradicting_precision_flags_fail_with_a_clear_message(tmp_path):
    result = run_training([f"--train_dir={tmp_path}/run", "--mixed_precision",
                           "--precision=mixed_bfloat16", *TINY_RUN], timeout=120)
    assert result.returncode != 0
    assert "contradicts --precision=mixed_bfloat16" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr

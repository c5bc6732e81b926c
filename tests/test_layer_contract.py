"""Every layer of layers.py and every block of networks.py through run_layer_test."""
import pytest

from gansynth_tf import layers, networks
from layer_contract import run_layer_test

# (class, constructor kwargs, input shape(s), call kwarg shapes, output shape,
#  (trainable, non-trainable) weights)
CASES = [
    (layers.PixelNorm, {"epsilon": 1e-6}, (3, 4, 5, 6), None, (3, 4, 5, 6), (0, 0)),
    (layers.MinibatchStddev, {"group_size": 2}, (4, 3, 5, 6), None, (4, 3, 5, 7), (0, 0)),
    (layers.EqualizedConv2D, {"filters": 5, "kernel_size": (3, 1), "he_slope": 0.2},
     (2, 4, 6, 3), None, (2, 4, 6, 5), (2, 0)),
    (layers.EqualizedConv2D, {"filters": 4, "kernel_size": 2, "padding": "valid",
                              "use_bias": False}, (2, 4, 6, 3), None, (2, 3, 5, 4), (1, 0)),
    (layers.EqualizedConv2D, {"filters": 3, "kernel_size": (3, 2), "padding": "reflect_time"},
     (2, 4, 6, 3), None, (2, 4, 6, 3), (2, 0)),
    (layers.EqualizedDense, {"units": 7, "he_slope": 0.0}, (3, 5), None, (3, 7), (2, 0)),
    (layers.GenreBias, {"units": 6}, (3, 4), None, (3, 6), (1, 0)),
    (layers.ModulatedConv2D, {"filters": 5, "style_dim": 7, "kernel_size": (3, 1)},
     (2, 4, 6, 3), {"style": (2, 7)}, (2, 4, 6, 5), (4, 0)),
    (layers.ModulatedConv2D, {"filters": 2, "style_dim": 3, "padding": "reflect_time"},
     (2, 4, 6, 3), {"style": (2, 3)}, (2, 4, 6, 2), (4, 0)),
    (layers.FadeIn, {"alpha": 0.25}, [(2, 4, 6, 3), (2, 4, 6, 3)], None, (2, 4, 6, 3),
     (0, 1)),
    (networks.GeneratorBlock, {"filters": 6, "upsample": (2, 4)}, (2, 3, 4, 5),
     {"genre_bias": (2, 12)}, (2, 6, 16, 6), (4, 0)),
    (networks.GeneratorBlock, {"filters": 4, "upsample": None}, (2, 3, 4, 5), None,
     (2, 3, 4, 4), (4, 0)),
    (networks.GeneratorBlock, {"filters": 4, "upsample": (1, 2), "style_dim": 3},
     (2, 3, 4, 5), {"style": (2, 3), "genre_bias": (2, 8)}, (2, 3, 8, 4), (8, 0)),
    (networks.GeneratorBlock, {"filters": 4, "upsample": (2, 1), "time_padding": "reflect"},
     (2, 3, 4, 5), None, (2, 6, 4, 4), (4, 0)),
    (networks.DiscriminatorBlock, {"in_filters": 5, "filters": 3, "downsample": (1, 2)},
     (2, 4, 6, 5), None, (2, 4, 3, 3), (4, 0)),
]


@pytest.mark.parametrize("cls,kwargs,shapes,kwarg_shapes,out_shape,num_weights", CASES,
                         ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_layer_contract(cls, kwargs, shapes, kwarg_shapes, out_shape, num_weights,
                        tmp_path):
    run_layer_test(cls, kwargs, shapes, tmp_path, call_kwarg_shapes=kwarg_shapes,
                   expected_output_shape=out_shape, expected_num_weights=num_weights)

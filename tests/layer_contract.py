"""One contract every layer and block of the networks goes through: :func:`run_layer_test`.

For a layer class and its constructor arguments it checks, on random inputs:

1. build: ``build(input_shape)`` alone creates the weights a first call creates;
   ``compute_output_shape`` (where the class defines it) agrees with the call;
2. an eager call and a symbolic call on ``keras.Input`` (batch size unknown) give the same
   output shape, and a functional model around the symbolic call the same values;
3. ``get_config`` -> ``from_config`` (directly and through the registered name) gives an
   equal config and, with the weights copied, the same outputs; without them, different
   ones (so that the comparison can fail);
4. a ``.keras`` file of that functional model loads back to the same outputs;
5. under the ``mixed_float16`` policy (global, and given as the layer's ``dtype``):
   float32 variables, float16 outputs (or float32 where the layer says so) within
   float16 rounding of the float32 outputs.

Every weight is set to random values first: several start at zero (biases, the genre
table), which would make a lost weight invisible.
"""

import os

import keras
import numpy as np

MIXED = "mixed_float16"


def _random_inputs(shapes, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1.0, 1.0, size=shape).astype("float32")
            for name, shape in shapes.items()}


def _randomize_weights(layer, seed):
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        # Non-trainable state (the fade-in alpha) stays in its meaningful range [0, 1].
        low, high = (-1.0, 1.0) if v.trainable else (0.2, 0.8)
        v.assign(rng.uniform(low, high, size=v.shape).astype(v.dtype))


def _call(layer, values, kwarg_names):
    """layer(main input(s), **kwargs) from the dict of named inputs."""
    kwargs = {k: values[k] for k in kwarg_names}
    main = [values[k] for k in values if k not in kwarg_names]
    return layer(main[0] if len(main) == 1 else main, **kwargs)


def _weight_shapes(layer):
    return sorted((v.path.split("/", 1)[-1], tuple(v.shape)) for v in layer.weights)


def _allclose(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rtol, atol=atol)


def run_layer_test(cls, init_kwargs, input_shapes, tmp_path, call_kwarg_shapes=None,
                   expected_output_shape=None, expected_num_weights=None,
                   float32_output=False, seed=0):
    """Runs the contract above on `cls(**init_kwargs)`; returns the eager output.

    Args:
      input_shapes: one shape tuple (batch first), or a list of them for a layer called
        on a list of tensors (FadeIn's [low, high]).
      tmp_path: a folder for the .keras file.
      call_kwarg_shapes: {keyword: shape} of tensor keyword arguments of call
        (GeneratorBlock's genre_bias); they are inputs of the functional model too.
      expected_output_shape: checked against the eager output when given.
      expected_num_weights: (trainable, non-trainable) variable counts, when given.
      float32_output: the layer outputs float32 whatever the policy (documented there).
    """
    multi = isinstance(input_shapes, list)
    shapes = ({f"input_{i}": tuple(s) for i, s in enumerate(input_shapes)} if multi
              else {"input_0": tuple(input_shapes)})
    kwarg_names = tuple(call_kwarg_shapes or ())
    shapes.update({k: tuple(s) for k, s in (call_kwarg_shapes or {}).items()})
    values = _random_inputs(shapes, seed)
    first_shape = [shapes[k] for k in shapes if k not in kwarg_names]
    build_shape = first_shape if multi else first_shape[0]

    # 1. build alone == build by a call.
    built = cls(**init_kwargs)
    if not built.built:
        built.build(build_shape)
    assert built.built

    layer = cls(**init_kwargs)
    y = _call(layer, values, kwarg_names)
    _randomize_weights(layer, seed + 1)
    y = np.asarray(_call(layer, values, kwarg_names))
    assert _weight_shapes(built) == _weight_shapes(layer)
    if expected_num_weights is not None:
        assert (len(layer.trainable_weights), len(layer.non_trainable_weights)) == \
            tuple(expected_num_weights)
    if expected_output_shape is not None:
        assert y.shape == tuple(expected_output_shape)
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    if "compute_output_shape" in vars(cls):
        assert tuple(layer.compute_output_shape(build_shape)) == y.shape

    # 2. symbolic call: batch unknown, same shape; a functional model, same values.
    symbolic = {k: keras.Input(shape=s[1:], name=k) for k, s in shapes.items()}
    out = _call(layer, symbolic, kwarg_names)
    assert tuple(out.shape) == (None,) + y.shape[1:]
    model = keras.Model(symbolic, out)
    _allclose(model(values), y)

    # 3. config round trips: equal configs; same outputs only with the weights.
    config = layer.get_config()
    direct = cls.from_config(config)
    named = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    for clone in (direct, named):
        assert type(clone) is cls and clone.get_config() == config
        fresh = np.asarray(_call(clone, values, kwarg_names))
        assert fresh.shape == y.shape
        if layer.weights:
            assert not np.allclose(fresh, y, atol=1e-4), "outputs do not depend on the weights"
        clone.set_weights(layer.get_weights())
        _allclose(_call(clone, values, kwarg_names), y)

    # 4. .keras file.
    path = os.path.join(str(tmp_path), f"{cls.__name__}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert any(type(sub) is cls for sub in loaded.layers)
    _allclose(loaded(values), y)

    # 5. mixed precision, the global policy and the layer's own dtype.
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(MIXED)
        global_mixed = cls(**init_kwargs)
        _call(global_mixed, values, kwarg_names)
    finally:
        keras.config.set_dtype_policy(previous)
    own_mixed = cls(**init_kwargs, dtype=MIXED)
    _call(own_mixed, values, kwarg_names)
    for how, mixed in (("global policy", global_mixed), ("dtype=" + MIXED, own_mixed)):
        assert all(v.dtype == "float32" for v in mixed.weights), \
            (how, [(v.path, v.dtype) for v in mixed.weights])
        mixed.set_weights(layer.get_weights())
        y16 = _call(mixed, values, kwarg_names)
        assert keras.backend.standardize_dtype(y16.dtype) == (
            "float32" if float32_output else "float16"), (how, y16.dtype)
        scale = float(np.max(np.abs(y))) or 1.0
        _allclose(y16, y, rtol=1e-2, atol=1e-2 * scale)
    return y

"""TFLite fixture models for the value ops (comparisons, logic, selection, shapes at run time,
fills, ranges, gathers, scatters, one-hot, cumulative sums, signal ops, recurrent layers) and
the corpus of non-vision models: an audio model (framing, STFT, magnitude, log-mel as a
matmul, a conv head), sequence models (LSTM and GRU, fused and unrolled) and a masking model.

Built with Keras (TensorFlow ops in Lambda layers where Keras has none), converted by
TensorFlow's converter, cached like `tflite_models.py`. Every input keeps its batch open
(None), so each model also proves that a batch of any size runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tflite_models import _keras, _model


def _tf():
    import tensorflow as tf

    return tf


def _lambda(fn: Callable) -> Callable:
    """A Lambda layer around a TensorFlow function of the input."""
    return lambda k, x: k.layers.Lambda(fn)(x)


def _dense_bias(k, units: int):
    """A Dense layer with non-zero bias (Keras starts biases at zero)."""
    return k.layers.Dense(units, bias_initializer=k.initializers.RandomUniform(-0.5, 0.5, seed=1))


def _compare(t):
    tf = _tf()
    steps = tf.round(t * 4.0)  # values a literal can hit: NOT_EQUAL's 1.0 is not vacuous
    pairs = ((tf.equal, tf.round(t)), (tf.less, -0.2), (tf.less_equal, 0.1),
             (tf.greater, tf.reverse(t, [1])), (tf.greater_equal, 0.3))
    return tf.concat([tf.cast(tf.not_equal(steps, 1.0), tf.float32)]
                     + [tf.cast(op(t, c), tf.float32) for op, c in pairs], axis=-1)


def _logic(t):
    tf = _tf()
    a, b = t > 0.0, tf.reverse(t, [1]) < -0.3  # independent: both false somewhere
    return tf.cast(tf.concat([tf.logical_and(a, b), tf.logical_or(a, b), tf.logical_not(a)],
                             -1), tf.float32)


def _select(t):
    tf = _tf()
    return tf.concat([tf.where(t > 0.1, t * 3.0, -t), tf.where(t < 0.0, t, 0.5),
                      tf.where(tf.abs(t) > 0.5, tf.ones_like(t), tf.zeros_like(t))], -1)


def _argmin_floormod_not_select(t):
    """ARG_MIN, FLOOR_MOD, LOGICAL_NOT (of a non-comparison) and TF1's SELECT, with the
    integer results (indices, a RANGE, a ONE_HOT) also returned as they are, so their dtype
    is checked too."""
    tf = _tf()
    a, b = t > 0.2, tf.reverse(t, [1]) < 0.0
    low = tf.argmin(t, axis=-1)
    # NOT of a reduction: the converter folds NOT of a comparison or of AND into other ops
    keep = tf.logical_and(a, tf.logical_not(tf.reduce_any(b, axis=-1, keepdims=True)))
    picked = tf.raw_ops.Select(condition=keep, x=t, y=-2.0 * t)
    steps = tf.cast(low, tf.int32)[..., None] * 0 + tf.range(tf.shape(t)[-1])
    hot = tf.one_hot(tf.cast(low, tf.int32), 6, on_value=3, off_value=-1, dtype=tf.int32)
    return [tf.concat([tf.math.floormod(t * 3.0, 0.7), picked,
                       tf.cast(low, tf.float32)[..., None] * t], -1), tf.argmax(t, axis=-1), low,
            steps, hot]


def _static_where(t):
    """WHERE on a condition made from the shape alone (ones of the input's shape)."""
    tf = _tf()
    coords = tf.where(tf.ones_like(t) > 0.0)  # (batch·4·3, 3): a data-independent size
    per_sample = tf.reshape(tf.cast(coords[:, 1:], tf.float32), (-1, 24))
    return tf.concat([tf.reshape(t, (-1, 12)), per_sample], -1)


def _fill_shape_range(t):
    tf = _tf()
    n = tf.shape(t)[0]  # the batch, known only at run time
    steps = tf.cast(tf.range(0, tf.shape(t)[1] * 2, 2), tf.float32)
    filled = tf.fill(tf.stack([n, 3]), 0.75)
    backwards = tf.gather(t, tf.range(tf.shape(t)[1] - 1, -1, -1), axis=1)  # RANGE as indices
    return tf.concat([t * steps, filled, tf.broadcast_to(t[:, :1], tf.stack([n, 2])),
                      backwards], -1)


def _cumsum(t):
    tf = _tf()
    return tf.concat([tf.cumsum(t, axis=1), tf.cumsum(t, axis=1, exclusive=True, reverse=True),
                      tf.math.squared_difference(t, 0.3), tf.reverse(t, axis=[1])], -1)


def _one_hot_gather_nd(t):
    tf = _tf()
    idx = tf.cast(tf.argmax(t, axis=-1), tf.int32)  # (batch, 5) indices in [0, 6)
    hot = tf.one_hot(idx, 6, on_value=2.0, off_value=-1.0)
    picked = tf.gather_nd(tf.transpose(t, (1, 2, 0)), [[0, 1], [3, 2], [4, 0]])  # (3, batch)
    return tf.concat([tf.reduce_sum(hot, -1), tf.transpose(picked)], -1)


def _scatter_nd(t):
    tf = _tf()
    updates = tf.transpose(t[:, :3])  # (3, batch): computed updates, a run-time shape
    base = tf.scatter_nd([[1], [3], [1]], updates, tf.stack([5, tf.shape(t)[0]]))
    return tf.concat([t, tf.transpose(base)], -1)


def _rfft(t):
    tf = _tf()
    spectrum = tf.signal.rfft(t)
    return tf.concat([tf.abs(spectrum), tf.math.real(spectrum), tf.math.imag(spectrum)], -1)


def _topk(t):
    tf = _tf()
    top = tf.math.top_k(t, 3)
    return tf.concat([top.values, tf.cast(top.indices, tf.float32)], -1)


def _segments(t):
    """Segment reductions over a non-batch axis (the interpreter runs sample by sample)."""
    tf = _tf()
    data = tf.transpose(t, (1, 0, 2))  # (6, batch, 3)
    ids = [0, 1, 0, 2, 1, 0]
    parts = [tf.math.unsorted_segment_sum(data, ids, 4),
             tf.math.unsorted_segment_max(data, ids, 3),
             tf.math.unsorted_segment_min(data, ids, 3),
             tf.math.unsorted_segment_prod(data, ids, 3),
             tf.math.segment_sum(data, [0, 0, 1, 1, 1, 2])]
    return tf.transpose(tf.concat(parts, 0), (1, 0, 2))


def _masks_and_angles(t):
    tf = _tf()
    any_ = tf.cast(tf.reduce_any(t > 0.5, axis=-1), tf.float32)
    all_ = tf.cast(tf.reduce_all(t > -0.5, axis=-1), tf.float32)
    angle = tf.math.atan2(t, tf.reverse(t, [1]) + 0.1)
    buckets = tf.cast(tf.raw_ops.Bucketize(input=t, boundaries=[-0.5, 0.0, 0.5]), tf.float32)
    return tf.concat([any_, all_, tf.reshape(angle, (-1, 24)), tf.reshape(buckets, (-1, 24))],
                     -1)


def _diagonals(t):
    tf = _tf()
    square = tf.linalg.diag(t[:, 0])  # (batch, 4, 4)
    wide = tf.linalg.set_diag(tf.concat([t, t[:, :, :1]], -1)[:, :4], t[:, 1])
    return tf.concat([square, wide], -1)


def _lrn(t):
    return _tf().nn.local_response_normalization(t, depth_radius=2, bias=1.0, alpha=0.5,
                                                 beta=0.75)


def _shape_ops(t):
    """BROADCAST_ARGS of run-time shapes, DYNAMIC_UPDATE_SLICE, RANK of a run-time shape."""
    tf = _tf()
    from tensorflow.compiler.tf2xla.python import xla

    shape = tf.broadcast_dynamic_shape(tf.shape(t[:, :1]), tf.shape(t[:1]))
    widened = tf.broadcast_to(t[:, :1], shape)
    updated = xla.dynamic_update_slice(t, t[:, 2:4] * 3.0, [0, 1])
    rank = tf.cast(tf.rank(tf.reshape(t, tf.shape(t))), tf.float32)
    return tf.concat([widened, updated, t * 0.0 + rank], -1)


VALUE_MODELS: dict[str, Callable] = {
    "shape_ops": _model((5,), _lambda(_shape_ops)),
    "topk": _model((8,), _lambda(_topk)),
    "segment_reductions": _model((6, 3), _lambda(_segments)),
    "masks_angles_buckets": _model((6, 4), _lambda(_masks_and_angles)),
    "matrix_diagonals": _model((4, 4), _lambda(_diagonals)),
    "local_response_norm": _model((4, 4, 8), _lambda(_lrn)),
    "comparisons_on_steps": _model((5, 6), _lambda(_compare)),
    "logical_independent": _model((5, 6), _lambda(_logic)),
    "argmin_floormod_not_select_int": _model((5, 6), _lambda(_argmin_floormod_not_select)),
    "select": _model((5, 6), _lambda(_select)),
    "static_where": _model((4, 3), _lambda(_static_where)),
    "fill_shape_range_gather": _model((4,), _lambda(_fill_shape_range)),
    "cumsum_reverse": _model((5, 3), _lambda(_cumsum)),
    "one_hot_gather_nd": _model((5, 6), _lambda(_one_hot_gather_nd)),
    "scatter_nd": _model((10,), _lambda(_scatter_nd)),
    "rfft_complex": _model((3, 16), _lambda(_rfft)),
    "embedding": _model((10,), lambda k, x: _dense_bias(k, 3)(k.layers.Embedding(10, 4)(
        k.layers.Lambda(lambda t: _tf().argmax(t, -1, output_type="int32"))(x)))),
}


# --- the non-vision corpus --------------------------------------------------------------

def audio_model():
    """Waveform → framing and STFT (tf.signal), magnitude, log-mel as a matmul, conv head."""
    keras, tf = _keras(), _tf()
    mel = np.random.default_rng(0).uniform(0.0, 1.0, (129, 20)).astype(np.float32)

    def features(x):
        spectrum = tf.signal.stft(x, frame_length=256, frame_step=128, fft_length=256)
        return tf.math.log(tf.matmul(tf.abs(spectrum), tf.constant(mel)) + 1e-3)

    inp = keras.Input((4000,))
    x = keras.layers.Reshape((-1, 20, 1))(keras.layers.Lambda(features)(inp))
    x = keras.layers.Conv2D(8, 3, activation="relu", bias_initializer="random_uniform")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, _dense_bias(keras, 5)(x))


def _sequence(kind: str, unroll: bool, module: str = "keras", batch: int | None = None):
    """LSTM / GRU / bidirectional LSTM over 12 steps of 24 features (48 units: weights big
    enough for the dynamic-range quantizer, which skips tensors under 1024 elements), then
    a Dense head. Fused: tf.keras's LSTM (TensorFlow's converter makes it
    UNIDIRECTIONAL_SEQUENCE_LSTM; it needs a fixed batch); loop: Keras 3's layers as they
    are (a WHILE over a body subgraph; a fixed batch too); unrolled: unroll=True (plain
    ops, any batch)."""

    def build():
        import importlib

        k = importlib.import_module(module)
        layers = k.layers
        inp = k.Input((12, 24), batch_size=batch)
        options = {"return_sequences": True, "unroll": unroll,
                   "bias_initializer": k.initializers.RandomUniform(-0.5, 0.5, seed=1)}
        if kind == "gru":
            x = layers.GRU(48, **options)(inp)
        elif kind == "bilstm":
            x = layers.Bidirectional(layers.LSTM(48, **options))(inp)
        else:
            x = layers.LSTM(48, **options)(inp)
        return k.Model(inp, layers.Dense(4, bias_initializer="random_uniform")(x))

    return build


def masking_model():
    """Masks padded steps with comparisons and tf.where, masked mean pooling, a Dense head."""
    keras, tf = _keras(), _tf()

    def masked_mean(x):
        present = tf.greater(tf.reduce_max(tf.abs(x), -1, keepdims=True), 0.05)
        clipped = tf.where(x > 0.8, 0.8 * tf.ones_like(x), x)
        kept = tf.where(present, clipped, tf.zeros_like(x))
        count = tf.reduce_sum(tf.cast(present, tf.float32), axis=1)
        return tf.reduce_sum(kept, axis=1) / tf.maximum(count, 1.0)

    inp = keras.Input((10, 32))
    x = _dense_bias(keras, 48)(inp)
    x = keras.layers.Lambda(masked_mean)(x)
    return keras.Model(inp, _dense_bias(keras, 3)(x))


CORPUS: dict[str, Callable] = {
    "audio_stft": audio_model,
    "lstm_fused": _sequence("lstm", False, "tf_keras", batch=1),
    "bilstm_fused": _sequence("bilstm", False, "tf_keras", batch=1),
    "lstm_loop": _sequence("lstm", False, batch=1),  # Keras 3: a WHILE loop
    "gru_loop": _sequence("gru", False, batch=1),
    "bilstm_loop": _sequence("bilstm", False, batch=1),
    "lstm_unrolled": _sequence("lstm", True),
    "gru_unrolled": _sequence("gru", True),
    "bilstm_unrolled": _sequence("bilstm", True),
    "masking": masking_model,
}


# --- op files TensorFlow's converter never writes, rewritten with its flatbuffer tools ---

def _rewrite(source, target, edit: Callable) -> object:
    """Read `source` as TFLite's object model, `edit(model, schema)`, write `target`."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    if not target.exists():
        model = flatbuffer_utils.read_model(str(source))
        edit(model, schema)
        flatbuffer_utils.write_model(model, str(target.with_suffix(".part")))
        target.with_suffix(".part").replace(target)
    return target


def _opcode(model, schema, code: int) -> int:
    entry = schema.OperatorCodeT()
    entry.builtinCode = entry.deprecatedBuiltinCode = code
    entry.version = 1
    model.operatorCodes.append(entry)
    return len(model.operatorCodes) - 1


def embedding_lookup_file(folder):
    """The Embedding model with its GATHER(table, ids) turned into EMBEDDING_LOOKUP(ids,
    table) (TensorFlow's converter writes GATHER for tf.nn.embedding_lookup)."""
    from tflite_models import cached

    def edit(model, schema):
        sub = model.subgraphs[0]
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        gather = next(op for op in sub.operators if codes[op.opcodeIndex] == 36)
        gather.opcodeIndex = _opcode(model, schema, 7)
        gather.inputs = [gather.inputs[1], gather.inputs[0]]
        gather.builtinOptionsType, gather.builtinOptions = 0, None

    return _rewrite(cached("embedding", VALUE_MODELS["embedding"]),
                    folder / "embedding_lookup.tflite", edit)


def l2_pool_file(folder):
    """pools_same with its AVERAGE_POOL_2D made an L2_POOL_2D (same options table;
    TensorFlow has no op its converter turns into one)."""
    from tflite_models import OP_MODELS, cached

    def edit(model, schema):
        sub = model.subgraphs[0]
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        pool = next(op for op in sub.operators if codes[op.opcodeIndex] == 1)
        pool.opcodeIndex = _opcode(model, schema, 12)

    return _rewrite(cached("pools_same", OP_MODELS["pools_same"]),
                    folder / "l2_pool.tflite", edit)


def bidirectional_lstm_file(folder):
    """The fused tf.keras bidirectional LSTM (two UNIDIRECTIONAL_SEQUENCE_LSTMs, reversals
    and a concatenation) as one BIDIRECTIONAL_SEQUENCE_LSTM with merged outputs."""
    from tflite_models import cached

    def edit(model, schema):
        sub = model.subgraphs[0]
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        lstms = [op for op in sub.operators if codes[op.opcodeIndex] == 44]
        reversed_input = {op.outputs[0] for op in sub.operators if codes[op.opcodeIndex] == 105
                          and op.inputs[0] in sub.inputs}
        backward = next(op for op in lstms if op.inputs[0] in reversed_input)
        forward = next(op for op in lstms if op is not backward)
        concat = next(op for op in sub.operators if codes[op.opcodeIndex] == 2)
        fused = schema.OperatorT()
        fused.opcodeIndex = _opcode(model, schema, 52)
        fused.inputs = [forward.inputs[0], *forward.inputs[1:18], *backward.inputs[1:18],
                        forward.inputs[18], forward.inputs[19], backward.inputs[18],
                        backward.inputs[19], *([-1] * 9)]
        fused.outputs = list(concat.outputs)
        options = schema.BidirectionalSequenceLSTMOptionsT()
        options.fusedActivationFunction = 4  # TANH
        options.cellClip = forward.builtinOptions.cellClip
        options.mergeOutputs, options.timeMajor = True, False
        fused.builtinOptionsType = schema.BuiltinOptions.BidirectionalSequenceLSTMOptions
        fused.builtinOptions = options
        dropped = {codes_index for codes_index in (2, 44, 105)}
        kept = [op for op in sub.operators if codes[op.opcodeIndex] not in dropped]
        sub.operators = [fused, *kept]

    return _rewrite(cached("bilstm_fused", CORPUS["bilstm_fused"]),
                    folder / "bidirectional_sequence_lstm.tflite", edit)

"""Converters of TFLite's fused LSTMs (UNIDIRECTIONAL_ and BIDIRECTIONAL_SEQUENCE_LSTM) to
`nn.LSTM` (runtime in `modules/rnn.py`).

TFLite keeps one matrix per gate (input, forget, cell, output): they are concatenated in
that order, torch's. TFLite adds one bias per gate; torch's second bias is zero. Peephole,
CIFG (no input gate) and layer-normalised LSTMs have no `nn.LSTM` form: refused, naming
what the file uses. Cell and projection clipping are honoured (see `SequenceLSTM`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tf2torch.conversion.graph.registry import SOURCE, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tflite.common import operand, role, spec
from tf2torch.sources.ir import Node


@dataclass(frozen=True)
class _Layout:
    """Positions of one direction's tensors among the op's inputs."""

    input_weights: int
    recurrent_weights: int
    peephole: int
    biases: int
    projection: int
    layer_norm: int | None = None


_UNIDIRECTIONAL = _Layout(1, 5, 9, 12, 16, layer_norm=20)
_FORWARD = _Layout(1, 5, 9, 12, 16)
_BACKWARD = _Layout(18, 22, 26, 29, 33)


def _roles(node: Node, first: int, count: int = 4) -> tuple[str, ...]:
    found = [role(node, p) for p in range(first, first + count)]
    if None in found:
        raise ValueError("an LSTM without an input gate (CIFG) or with computed weights "
                         "has no nn.LSTM form")
    return tuple(found)


def _unused(node: Node, first: int, count: int, what: str) -> None:
    if any(operand(node, p) != "none" for p in range(first, first + count)):
        raise ValueError(f"an LSTM with {what} has no nn.LSTM form")


def _direction(node: Node, ctx: LowerContext, layout: _Layout, suffix: str,
               hidden: int) -> tuple[list[Binding], int]:
    _unused(node, layout.peephole, 3, "peephole connections")
    if layout.layer_norm is not None:
        _unused(node, layout.layer_norm, 4, "layer normalisation")
    _unused(node, layout.projection + 1, 1, "a projection bias")
    bindings = [
        Binding(f"lstm.weight_ih_l0{suffix}", _roles(node, layout.input_weights)),
        Binding(f"lstm.weight_hh_l0{suffix}", _roles(node, layout.recurrent_weights)),
        Binding(f"lstm.bias_ih_l0{suffix}", _roles(node, layout.biases)),
        Binding(f"lstm.bias_hh_l0{suffix}", value=[0.0] * 4 * hidden),
    ]
    projection = role(node, layout.projection)
    if projection:
        bindings.append(Binding(f"lstm.weight_hr_l0{suffix}", projection))
        return bindings, ctx.weight_shape(projection)[0]
    return bindings, 0


def _check_options(node: Node) -> None:
    a = node.attrs
    if a.get("activation", "tanh") != "tanh":
        raise ValueError(f"an LSTM with {a['activation']} activations has no nn.LSTM form")
    if a.get("diagonal_recurrent_tensors"):
        raise ValueError("diagonal recurrent weights have no nn.LSTM form")


def _clips(node: Node) -> dict:
    return {"cell_clip": float(node.attrs["cell_clip"]), "proj_clip": float(node.attrs["proj_clip"])}


def convert_unidirectional_sequence_lstm(node: Node, ctx: LowerContext) -> Lowered:
    _check_options(node)
    hidden, input_size = ctx.weight_shape(role(node, 1) or "")
    bindings, proj = _direction(node, ctx, _UNIDIRECTIONAL, "", hidden)
    module = spec("SequenceLSTM", input_size=input_size, hidden_size=hidden,
                  time_major=node.attrs["time_major"], proj_size=proj, **_clips(node))
    return Lowered(module, SOURCE, tuple(bindings))


def convert_bidirectional_sequence_lstm(node: Node, ctx: LowerContext) -> Lowered:
    _check_options(node)
    if any(operand(node, p) != "none" for p in range(39, 48)):
        raise ValueError("an LSTM with auxiliary inputs has no nn.LSTM form")
    hidden, input_size = ctx.weight_shape(role(node, 1) or "")
    forward, proj = _direction(node, ctx, _FORWARD, "", hidden)
    backward, _ = _direction(node, ctx, _BACKWARD, "_reverse", hidden)
    module = spec("SequenceLSTM", input_size=input_size, hidden_size=hidden,
                  bidirectional=True, time_major=node.attrs["time_major"],
                  merge_outputs=node.attrs["merge_outputs"], proj_size=proj, **_clips(node))
    return Lowered(module, SOURCE, (*forward, *backward))


CONVERTERS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": convert_unidirectional_sequence_lstm,
    "BIDIRECTIONAL_SEQUENCE_LSTM": convert_bidirectional_sequence_lstm,
}

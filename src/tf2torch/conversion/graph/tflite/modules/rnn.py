"""TFLite's fused recurrent ops as PyTorch's own recurrent modules.
"""

from __future__ import annotations

import torch
from torch import nn


class SequenceLSTM(nn.Module):
    """UNIDIRECTIONAL_SEQUENCE_LSTM / BIDIRECTIONAL_SEQUENCE_LSTM as `nn.LSTM`.

    TFLite's gates (input, forget, cell, output) are torch's (i, f, g, o), in that order;
    the state starts at zero for every call (TFLite's state tensors are reset per sample
    when it is verified: a converted model is stateless). A bidirectional op without
    `merge_outputs` gives the forward and backward sequences as two outputs.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False,
                 time_major: bool = False, merge_outputs: bool = True, proj_size: int = 0,
                 cell_clip: float = 0.0, proj_clip: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=not time_major,
                            bidirectional=bidirectional, proj_size=proj_size)
        self.split = bidirectional and not merge_outputs
        self.time_major, self.cell_clip, self.proj_clip = time_major, cell_clip, proj_clip

    def forward(self, x: torch.Tensor):
        if self.cell_clip or self.proj_clip:
            y = self._clipped(x)
        else:
            y, _ = self.lstm(x)
        return tuple(y.chunk(2, dim=-1)) if self.split else y

    def _clipped(self, x: torch.Tensor) -> torch.Tensor:
        """Step by step with `nn.LSTM`'s own weights, clipping the cell state (and the
        projected output) as TFLite does; TensorFlow's converter sets cell_clip = 10."""
        seq = x if self.time_major else x.transpose(0, 1)
        directions = [self._direction(seq, "")]
        if self.lstm.bidirectional:
            directions.append(self._direction(seq.flip(0), "_reverse").flip(0))
        y = torch.cat(directions, dim=-1)
        return y if self.time_major else y.transpose(0, 1)

    def _direction(self, seq: torch.Tensor, suffix: str) -> torch.Tensor:
        lstm = self.lstm
        w_ih, w_hh = getattr(lstm, "weight_ih_l0" + suffix), getattr(lstm, "weight_hh_l0" + suffix)
        bias = getattr(lstm, "bias_ih_l0" + suffix) + getattr(lstm, "bias_hh_l0" + suffix)
        w_hr = getattr(lstm, "weight_hr_l0" + suffix, None)
        batch = seq.shape[1]
        h = seq.new_zeros(batch, w_hh.shape[1])
        c = seq.new_zeros(batch, lstm.hidden_size)
        inputs = torch.nn.functional.linear(seq, w_ih, bias)
        outputs = []
        for step in inputs:
            i, f, g, o = (step + h @ w_hh.T).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            if self.cell_clip:
                c = torch.clamp(c, -self.cell_clip, self.cell_clip)
            h = torch.sigmoid(o) * torch.tanh(c)
            if w_hr is not None:
                h = h @ w_hr.T
                if self.proj_clip:
                    h = torch.clamp(h, -self.proj_clip, self.proj_clip)
            outputs.append(h)
        return torch.stack(outputs)

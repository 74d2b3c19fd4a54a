"""The fully connected autoencoder every explicit-rating family is built from.

``x (batch, n) -> encoder -> z (batch, code) -> decoder -> x_hat (batch, n)``: each layer is
``f(W h + b)``; the last decoder layer uses ``output_activation`` (identity for ratings, so the
network can reach any value on the scale; logits for binary data). Options cover the catalogue's
variants: input dropout or Gaussian noise (denoising), dropout on the code (Kuchaiev & Ginsburg
2017), an L1 activity penalty on the code (sparse), and a decoder tied to the encoder's weights.

The module holds architecture only; the trainer owns the loop, optimiser and device.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aerec.errors import ConfigError

__all__ = ["Autoencoder", "ACTIVATIONS", "activation"]

ACTIVATIONS = {
    "identity": lambda x: x,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "elu": F.elu,
    "selu": F.selu,
    "lrelu": F.leaky_relu,
    "swish": F.silu,
}


def activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


class Autoencoder(nn.Module):
    """An ``n -> encoder... -> code -> decoder... -> n`` network.

    Args:
        n: input and output size (items for user rows, users for item rows).
        encoder: hidden sizes up to and including the code, e.g. ``(20, 10)``.
        decoder: hidden sizes after the code, e.g. ``(20,)``; ``None`` mirrors the encoder.
        activation: hidden-layer activation (DESIGN §1: sigmoid by default).
        output_activation: activation of the reconstruction layer.
        code_dropout: dropout on the code (training only).
        input_dropout: denoising by zeroing a fraction of the observed inputs (training only).
        input_noise: denoising by adding N(0, sd) to observed inputs (training only).
        tied: decoder weights are the transposed encoder weights (needs a mirrored decoder).
        mask_input: also feed the 0/1 pattern of observed cells (input size 2n): which items a
            user rated is information of its own, apart from the ratings' values.
        baseline: learn the residual over a bias model. The output adds
            ``mu + col_bias[c] + row_bias(x)``, where the row's bias is the shrunk mean of its
            own observed residuals (computed from the input, so it exists for new rows too) and
            ``mu``/``col_bias`` are fixed buffers set by :meth:`set_baseline` before training.
            Weight decay then shrinks toward the bias model instead of toward a constant.
    """

    def __init__(
        self,
        n: int,
        encoder: Sequence[int],
        decoder: Sequence[int] | None = None,
        *,
        activation: str = "sigmoid",
        output_activation: str = "identity",
        code_dropout: float = 0.0,
        input_dropout: float = 0.0,
        input_noise: float = 0.0,
        tied: bool = False,
        mask_input: bool = False,
        baseline: bool = False,
    ) -> None:
        super().__init__()
        encoder = [int(h) for h in encoder]
        if not encoder or min(encoder) < 1:
            raise ConfigError(f"encoder sizes must be positive and at least one; got {encoder}")
        decoder = list(reversed(encoder[:-1])) if decoder is None else [int(h) for h in decoder]
        for name, p in (("code_dropout", code_dropout), ("input_dropout", input_dropout)):
            if not 0 <= p < 1:
                raise ConfigError(f"model.{name} must be in [0, 1); got {p}")
        if input_noise < 0:
            raise ConfigError(f"model.input_noise must be >= 0; got {input_noise}")
        if baseline and output_activation != "identity":
            raise ConfigError("model.baseline needs output_activation = 'identity' (the bias model adds to ratings)")
        if tied and mask_input:
            raise ConfigError("model.tied and model.mask_input cannot be combined (the input is twice the output size)")
        sizes_in = [n, *encoder]
        first = [2 * n if mask_input else n, *encoder]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(first[:-1], first[1:]))
        self.tied = tied
        sizes_out = [encoder[-1], *decoder, n]
        if tied:
            if sizes_out != list(reversed(sizes_in)):
                raise ConfigError(f"a tied decoder needs mirrored sizes; encoder {encoder}, decoder {decoder}")
            # Only biases are new: weights are the encoder's, transposed.
            self.decoder_bias = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in sizes_out[1:])
            self.decoder = nn.ModuleList()
        else:
            self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes_out[:-1], sizes_out[1:]))
        self.n = n
        self.act_name, self.output_act_name = activation, output_activation
        self.act = globals()["activation"](activation)
        self.output_act = globals()["activation"](output_activation)
        self.code_dropout = code_dropout
        self.input_dropout = input_dropout
        self.input_noise = input_noise
        self.mask_input = mask_input
        self.use_baseline = baseline
        self.register_buffer("mu", torch.zeros(()))
        self.register_buffer("col_bias", torch.zeros(n))  # (n,)
        self.register_buffer("row_reg", torch.tensor(10.0))
        if baseline:
            # Start from the bias model: a small decoder so the first output is nearly mu + biases.
            with torch.no_grad():
                last = self.decoder[-1] if not tied else None
                if last is not None:
                    last.weight.mul_(0.01)
                    last.bias.zero_()

    def set_baseline(self, mu: float, col_bias: torch.Tensor, row_reg: float) -> None:
        """Fix the bias model the output is relative to (see ``baseline``)."""
        self.mu.fill_(float(mu))
        self.col_bias.copy_(torch.as_tensor(col_bias, dtype=self.col_bias.dtype))
        self.row_reg.fill_(float(row_reg))
    # ------------------------------------------------------------------ pieces
    def corrupt(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Denoising corruption of observed inputs, in training mode only. ``x: (batch, n)``."""
        if not self.training or (self.input_dropout == 0 and self.input_noise == 0):
            return x
        if self.input_noise > 0:
            noise = torch.randn_like(x) * self.input_noise
            x = x + (noise * mask if mask is not None else noise)
        if self.input_dropout > 0:
            # Inverted dropout keeps the expected input the same at test time.
            x = F.dropout(x, self.input_dropout, training=True)
        return x

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, n) -> (batch, code)``; ``mask`` (batch, n) is needed when ``mask_input``."""
        if self.mask_input:
            if mask is None:
                raise ValueError("this network reads the mask of observed cells: pass mask")
            x = torch.cat([x, mask], dim=1)  # (batch, 2n)
        for layer in self.encoder:
            x = self.act(layer(x))
        return x

    def _decoder_layers(self):
        if self.tied:
            return [(layer.weight, bias) for layer, bias in zip(reversed(self.encoder), self.decoder_bias)]
        return [(layer.weight, layer.bias) for layer in self.decoder]

    def penultimate(self, z: torch.Tensor) -> torch.Tensor:
        """The last hidden activation before the reconstruction layer, ``(batch, h)``."""
        for weight, bias in self._decoder_layers()[:-1]:
            z = self.act(F.linear(z, self._w(weight), bias))
        return z

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight ``(n, h)`` and bias ``(n,)`` of the reconstruction layer."""
        weight, bias = self._decoder_layers()[-1]
        return self._w(weight), bias

    def _w(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.t() if self.tied else weight

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(batch, code) -> (batch, n)`` reconstruction (before clipping to the scale)."""
        if self.code_dropout > 0:
            z = F.dropout(z, self.code_dropout, training=self.training)
        h = self.penultimate(z)
        weight, bias = self.output_layer()
        return self.output_act(F.linear(h, weight, bias))

    def row_offset(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``mu + row bias`` of each row, ``(batch,)``: zeros without ``baseline``."""
        if not self.use_baseline:
            return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        if mask is None:
            raise ValueError("the baseline needs the mask of observed cells: pass mask")
        residual = ((x - self.mu - self.col_bias) * mask).sum(1)  # (batch,)
        return self.mu + residual / (mask.sum(1) + self.row_reg)

    def col_offset(self) -> torch.Tensor:
        """Per-column bias added to the output, ``(n,)``: zeros without ``baseline``."""
        return self.col_bias if self.use_baseline else torch.zeros_like(self.col_bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, return_code: bool = False):
        """Reconstruct ``x (batch, n)``; with ``return_code`` also give the code ``(batch, code)``."""
        z = self.encode(self.corrupt(x, mask), mask)
        out = self.decode(z)
        if self.use_baseline:
            # The bias model reads the clean input: corruption is for the network's own view.
            out = out + self.row_offset(x, mask)[:, None] + self.col_bias
        return (out, z) if return_code else out

    def weight_norm2(self) -> torch.Tensor:
        """Sum of squared weights (biases excluded): the L2 term of AutoRec's objective."""
        total = sum(layer.weight.pow(2).sum() for layer in self.encoder)
        if not self.tied:
            total = total + sum(layer.weight.pow(2).sum() for layer in self.decoder)
        return total

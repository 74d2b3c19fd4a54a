"""The fully connected autoencoder every explicit-rating family is built from.

``x (batch, n) -> encoder -> z (batch, code) -> decoder -> x_hat (batch, n)``: each layer is
``f(W h + b)``; the last decoder layer uses ``output_activation`` (identity for ratings, so the
network can reach any value on the scale; logits for binary data). Options cover the catalogue's
variants: input dropout or Gaussian noise (denoising), dropout on the code (Kuchaiev & Ginsburg
2017), an L1 activity penalty on the code (sparse), and a decoder tied to the encoder's weights.

The module holds architecture only; the trainer owns the loop, optimiser and device.

Two ways in. ``forward(x, mask)`` takes a dense batch ``(batch, n)`` and reconstructs every
cell. ``forward_observed(batch)`` (also ``forward(batch)``) takes a
:class:`~aerec.data.batches.SparseBatch` and gives the same function read at the batch's
observed cells only, ``(nnz,)``, without making anything of size ``(batch, n)``: the first layer
sums its weight's columns at the observed cells (a sparse-dense product), the last layer is
evaluated at those cells only (a sampled dense-dense product, SDDMM). A loss on observed cells
needs nothing else, and the work is ``nnz x h`` instead of ``batch x n x h``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aerec.data.batches import SparseBatch
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


class _ObservedProduct(torch.autograd.Function):
    """``(h @ weight.T)`` at a sparse batch's cells only, ``(nnz,)``: the sparse path's last layer.

    Forward is a sampled dense-dense product (SDDMM); backward is two sparse-dense products,
    ``grad_h = G @ weight`` and ``grad_weight = G.T @ h`` with ``G`` the output gradient on the
    batch's pattern. Written out because autograd's own backward of ``sampled_addmm`` took about
    2.2x as long on CPU. ``G.T`` is read through the batch's column pattern where it has one (the
    full-batch chunks, used on every pass), a row-ordered CSR product: 2.3 ms against 5.0 ms for
    the transposed view (CSC) on ML-100K's item rows, h = 500. ``h: (batch, k)``, ``weight: (n, k)``.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, batch: SparseBatch) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.batch = batch
        pattern = torch.sparse_csr_tensor(batch.offsets, batch.cols, torch.zeros(batch.nnz, dtype=h.dtype, device=h.device),
                                          size=(h.shape[0], weight.shape[0]), check_invariants=False)
        return torch.sparse.sampled_addmm(pattern, h, weight.t()).values()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, weight = ctx.saved_tensors
        batch = ctx.batch
        grad_h = grad_weight = None
        g = torch.sparse_csr_tensor(batch.offsets, batch.cols, grad.contiguous(), size=(h.shape[0], weight.shape[0]),
                                    check_invariants=False)  # (batch, n)
        if ctx.needs_input_grad[0]:
            grad_h = torch.sparse.mm(g, weight)  # (batch, k)
        if ctx.needs_input_grad[1]:
            g_t = g.t() if batch.by_column is None else _by_column(batch, grad)  # (n, batch)
            grad_weight = torch.sparse.mm(g_t, h)  # (n, k)
        return grad_h, grad_weight, None


class _SparseInputProduct(torch.autograd.Function):
    """``X @ table`` for a sparse batch ``X (batch, n)`` (its cells holding ``values``) and a dense
    ``table (n, k)``: ``(batch, k)``, the sparse path's first layer.

    Both directions are row-ordered CSR products: forward ``X @ table``, backward
    ``grad_table = X.T @ grad`` through the batch's column pattern, made once for a batch used on
    every pass (the full-batch chunks). There it beats ``embedding_bag``, whose backward sorts
    the cells again at every call: 3.1 ms against 11.2 ms forward and backward on ML-100K's item
    rows (h = 500), the same sums in another order. A minibatch, used once, keeps ``embedding_bag``
    (sorting it once costs what the products save).
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, values: torch.Tensor, batch: SparseBatch) -> torch.Tensor:
        values = values.to(table.dtype)
        ctx.save_for_backward(values)
        ctx.batch = batch
        x = torch.sparse_csr_tensor(batch.offsets, batch.cols, values, size=(batch.n_rows, table.shape[0]),
                                    check_invariants=False)
        # Outside autocast: it would cast the product to bf16, which the sparse kernels lack (the
        # sparse path keeps its first and last layers in float32, docs/training.md).
        with torch.autocast(table.device.type, enabled=False):
            return torch.sparse.mm(x, table)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (values,) = ctx.saved_tensors
        return torch.sparse.mm(_by_column(ctx.batch, values), grad.contiguous()), None, None


def _by_column(batch: SparseBatch, cell_values: torch.Tensor) -> torch.Tensor:
    """The transpose ``(n, batch)`` of the batch's pattern holding ``cell_values (nnz,)`` (CSR order),
    as CSR, from the batch's column pattern."""
    col_offsets, rows, order = batch.by_column
    return torch.sparse_csr_tensor(col_offsets, rows, cell_values.contiguous()[order], size=(batch.n_cols, batch.n_rows),
                                   check_invariants=False)


class _SquaredNorm(torch.autograd.Function):
    """``sum(w ** 2)``, the same value and gradient as ``w.pow(2).sum()`` bit for bit, with a
    one-pass backward (``2 g w``) instead of autograd's chain of full-size intermediates.

    The L2 term had been a third of every minibatch step of the 10^8-rating sweep (54 M weights,
    0.48 s an update); written out, it takes about a third of that.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weight)
        return weight.pow(2).sum()  # not vector_norm: its float32 sum drifted by 0.3 % on 27 M weights

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (weight,) = ctx.saved_tensors
        return weight * (2 * grad)


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
        activation: hidden-layer activation (sigmoid by default, as in the classic autoencoder recommender).
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

    def forward(self, x: torch.Tensor | SparseBatch, mask: torch.Tensor | None = None, *, return_code: bool = False):
        """Reconstruct ``x (batch, n)``; with ``return_code`` also give the code ``(batch, code)``.

        A :class:`SparseBatch` goes to :meth:`forward_observed` (outputs at its cells, ``(nnz,)``).
        """
        if isinstance(x, SparseBatch):
            return self.forward_observed(x, return_code=return_code)
        z = self.encode(self.corrupt(x, mask), mask)
        out = self.decode(z)
        if self.use_baseline:
            # The bias model reads the clean input: corruption is for the network's own view.
            out = out + self.row_offset(x, mask)[:, None] + self.col_bias
        return (out, z) if return_code else out

    # ------------------------------------------------------------------ the sparse path
    def forward_observed(self, batch: SparseBatch, *, return_code: bool = False):
        """The reconstruction at ``batch``'s observed cells only, ``(nnz,)`` in CSR order.

        Equal to ``forward(x, mask)[mask > 0]`` for the dense form of the batch (up to float
        rounding), at ``nnz x h`` cost. In training mode, input dropout and noise are drawn per
        observed value: a blank is 0 before and after dropout and noise is masked, so the
        corruption has the dense path's distribution, but not its random draws.
        """
        values = self.corrupt_values(batch.values)  # (nnz,)
        z = self.encode_sparse(batch, values)  # (batch, code)
        if self.code_dropout > 0:
            z = F.dropout(z, self.code_dropout, training=self.training)
        h = self.penultimate(z)  # (batch, h)
        weight, bias = self.output_layer()  # (n, h), (n,)
        # index_select, not bias[cols]: the indexing's backward (index_put_ with accumulation)
        # adds into the bias gradient from several threads at once on CPU, in an order that
        # changes from run to run; index_select's (index_add_) sums in a fixed order.
        raw = _ObservedProduct.apply(h, weight, batch) + bias.index_select(0, batch.cols)  # (nnz,)
        out = self.output_act(raw)
        if self.use_baseline:
            out = out + self.row_offset_sparse(batch)[batch.row_ids] + self.col_bias[batch.cols]
        return (out, z) if return_code else out

    def corrupt_values(self, values: torch.Tensor) -> torch.Tensor:
        """:meth:`corrupt` for the observed values of a sparse batch, ``(nnz,)``."""
        if not self.training or (self.input_dropout == 0 and self.input_noise == 0):
            return values
        if self.input_noise > 0:
            values = values + torch.randn_like(values) * self.input_noise
        if self.input_dropout > 0:
            values = F.dropout(values, self.input_dropout, training=True)
        return values

    def encode_sparse(self, batch: SparseBatch, values: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`encode` of a sparse batch (``values``: its possibly corrupted values), ``(batch, code)``."""
        values = batch.values if values is None else values
        first = self.encoder[0]
        # X @ W.T, on the weight's (n, h) transpose copied contiguous once per batch (about 3x
        # faster, forward and backward, than reading the transposed view).
        h = self._input_product(first.weight[:, : self.n].t().contiguous(), values, batch)  # (batch, h)
        if self.mask_input:  # the 0/1 pattern's half of the input: a plain sum of columns
            h = h + self._input_product(first.weight[:, self.n :].t().contiguous(), None, batch)
        z = self.act(h + first.bias)
        for layer in self.encoder[1:]:
            z = self.act(layer(z))
        return z

    @staticmethod
    def _input_product(table: torch.Tensor, values: torch.Tensor | None, batch: SparseBatch) -> torch.Tensor:
        """``X @ table`` for the batch's cells holding ``values`` (None: ones), ``(batch, h)``."""
        if batch.by_column is not None:  # a batch used on every pass: CSR products both ways
            return _SparseInputProduct.apply(table, torch.ones_like(batch.values) if values is None else values, batch)
        return F.embedding_bag(batch.cols, table, batch.offsets, mode="sum", per_sample_weights=values,
                               include_last_offset=True)

    def row_offset_sparse(self, batch: SparseBatch) -> torch.Tensor:
        """:meth:`row_offset` of a sparse batch, ``(batch,)``: zeros without ``baseline``."""
        if not self.use_baseline:
            return torch.zeros(batch.n_rows, dtype=batch.values.dtype, device=batch.device)
        residual = batch.values - self.mu - self.col_bias[batch.cols]  # (nnz,)
        total = torch.zeros(batch.n_rows, dtype=residual.dtype, device=residual.device).index_add_(0, batch.row_ids, residual)
        return self.mu + total / (batch.counts() + self.row_reg)

    def weight_norm2(self) -> torch.Tensor:
        """Sum of squared weights (biases excluded): the L2 term of AutoRec's objective."""
        total = sum(_SquaredNorm.apply(layer.weight) for layer in self.encoder)
        if not self.tied:
            total = total + sum(_SquaredNorm.apply(layer.weight) for layer in self.decoder)
        return total

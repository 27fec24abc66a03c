"""AdaDiff's uncertainty estimation modules (UEM) and its training losses (ECCV 2024).

After transformer block i a small head reads the block's hidden state and the noise level and
predicts, per token, how *certain* an exit there would be (the reference code's convention:
certainty = 1 - uncertainty). The model's own final head serves every exit, so an exit after
block i outputs g_i(h_i) = head(h_i).
"""
import math

import torch
from torch import nn

TIME_FEATURES = 8


def time_features(sigma: torch.Tensor) -> torch.Tensor:
    """Sinusoidal features of s = σ/(1+σ), which maps every family's noise range into (0, 1)."""
    s = (sigma / (1 + sigma)).float().reshape(-1, 1)
    k = torch.arange(1, TIME_FEATURES // 2 + 1, device=s.device, dtype=s.dtype) * math.pi
    return torch.cat([torch.sin(k * s), torch.cos(k * s)], dim=1)


class UncertaintyHeads(nn.Module):
    """One per-token linear + sigmoid per block, on the (layer-normed) hidden state plus σ features.

    The layer norm has no parameters; it makes the heads insensitive to the hidden state's scale,
    which grows with depth in DiTs.
    """

    def __init__(self, blocks: int, hidden_size: int):
        super().__init__()
        self.blocks, self.hidden_size = blocks, hidden_size
        self.token = nn.ModuleList(nn.Linear(hidden_size, 1) for _ in range(blocks))
        self.time = nn.ModuleList(nn.Linear(TIME_FEATURES, 1, bias=False) for _ in range(blocks))
        for layer in self.token:  # start undecided (certainty 0.5 everywhere)
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in self.time:
            nn.init.zeros_(layer.weight)

    def forward(self, block: int, hidden: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Per-token certainty (batch, tokens) of exiting after ``block``."""
        return self.per_token(block, hidden, self.time[block](time_features(sigma).to(hidden.device)))

    def per_token(self, block, hidden, time):
        normed = nn.functional.layer_norm(hidden.float(), hidden.shape[-1:])
        return torch.sigmoid(self.token[block](normed).squeeze(-1) + time)


class Readout:
    """The heads as sampling reads them, for one run: the weights stacked once on the model's
    device, and each block's logit offset (bias + σ term) for every σ of the run's schedule in one
    product, so that a forward pass looks a column up instead of computing features and a small
    product again (on a small model each torch call costs more than its arithmetic). The heads
    themselves stay where they are: one set is shared by every run of every sampler node.
    Indices live on the device: indexing a GPU tensor with a Python list copies the list over and
    waits for the GPU. Sampling runs without autograd (ComfyUI's samplers are no_grad, its
    executor in inference mode), so the per-block methods neither enter no_grad nor detach."""

    @torch.no_grad()
    def __init__(self, heads: UncertaintyHeads, schedule, device=None):
        device = heads.token[0].weight.device if device is None else device
        self.weight = torch.stack([layer.weight[0] for layer in heads.token]).to(device)
        self.bias = torch.stack([layer.bias[0] for layer in heads.token])[:, None].to(device)
        self.time = torch.stack([layer.weight[0] for layer in heads.time]).to(device)
        self.rows = list(self.weight)
        self.table = self.offsets(torch.tensor(schedule))
        self.columns = {sigma: n for n, sigma in enumerate(schedule)}
        self.gathered = {}  # blocks of one hidden-state shape -> (their indices, their weights stacked)

    def offsets(self, sigma):
        """Each block's logit offset at each σ, (blocks, len(σ))."""
        return self.bias + self.time @ time_features(sigma.to(self.time.device)).T

    def offset_at(self, value: float, sigma: torch.Tensor):
        """Each block's offset, (blocks, 1), for a forward pass at σ (``value``: its first element,
        read back already): the whole batch at that σ, as the pass's one decision is."""
        column = self.columns.get(value)
        return self.table[:, column:column + 1] if column is not None else self.offsets(sigma.flatten()[:1])

    def biases(self, offset):
        """Each block's offset spread evenly over the hidden size, as the layer norm's bias in
        ``reaches``: a row of LN(h)·w + o/dim sums to w·LN(h) + o. Once per pass, so that a
        judged block makes neither a lookup nor an add; as expanded views, which take half the
        time of copies here and no memory."""
        size = self.weight.shape[1]
        return (offset / size).expand(-1, size).unbind(0)

    def reaches(self, block, hidden, biases, needed: float) -> bool:
        """Whether block's mean certainty over tokens and the whole batch reaches ``needed``: one
        read. The head's product and offset ride in the layer norm as its scale and bias, and the
        mean is compared as the sum against ``needed`` times the count: each torch call left out is
        one less per block. torch.layer_norm, not the functional wrapper, whose dispatch checks cost
        as much as the norm itself here. NaN never reaches."""
        normed = torch.layer_norm(hidden.float(), hidden.shape[-1:], self.rows[block], biases[block])
        return normed.sum(-1).sigmoid_().sum().item() >= needed * (hidden.numel() // hidden.shape[-1])

    def certainties(self, blocks, hiddens, offset):
        """The mean certainty of several blocks: (the blocks in the order of the values, (len(blocks),)).
        One batched product per hidden-state shape instead of a handful of small ones per block."""
        groups = {}
        for block, hidden in zip(blocks, hiddens):
            groups.setdefault(hidden.shape, []).append((block, hidden))
        order, values = [], []
        for shape, members in groups.items():
            group = tuple(block for block, _ in members)
            if group not in self.gathered:
                index = torch.tensor(group, device=self.weight.device)
                self.gathered[group] = index, self.weight.index_select(0, index)[:, None, None]
            index, weight = self.gathered[group]
            normed = torch.layer_norm(torch.stack([h for _, h in members]).float(), shape[-1:])
            # a product and a sum: a batched matrix product with one output column is slower
            logits = (normed * weight).sum(-1) + offset.index_select(0, index)[..., None]
            values.append(logits.sigmoid_().mean((1, 2)))
            order.extend(group)
        return order, values[0] if len(values) == 1 else torch.cat(values)


def token_sample(hidden: torch.Tensor, kept: int) -> torch.Tensor:
    """A copy of at most about ``kept`` evenly strided tokens of (batch, tokens, dim): enough for a
    mean certainty, and small enough to hold every block's until the pass ends."""
    stride = math.ceil(hidden.shape[1] / kept)
    return (hidden[:, ::stride] if stride > 1 else hidden).clone()


def pseudo_certainty(exit_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's pseudo-label û = tanh|g_i(h_i) - target|, as a certainty 1 - û, per sample
    (the exit decision uses the mean certainty, so the heads learn the mean)."""
    error = (exit_output.float() - target.float()).abs().flatten(1).mean(1)
    return 1 - torch.tanh(error)


def adadiff_loss(exit_outputs, certainties, target, train_backbone: bool):
    """L = L_simple + L_u + L_UAL for one batch.

    exit_outputs: g_i(h_i) for every block i (the last is the full model's output);
    certainties:  per-sample mean certainty predicted after each block (from detached hidden states);
    target:       what the network should output (ε or velocity).
    L_u fits the certainties to the pseudo-labels; L_UAL trains every exit to be good where it is
    certain, weighting the per-block errors by the normalised certainty (detached, as the reference
    does, so that it cannot be lowered by shrinking the certainty). Without a trainable backbone
    only L_u has a gradient, and the pseudo-labels measure each exit against the model's own full
    output instead of the data: a frozen model's error against the data does not depend on where
    it exits (at high σ it is large for every block), whether the exit changes the output does.
    """
    errors = torch.stack([(g.float() - target.float()).pow(2).flatten(1).mean(1) for g in exit_outputs])
    reference = target if train_backbone else exit_outputs[-1]
    labels = torch.stack([pseudo_certainty(g, reference).detach() for g in exit_outputs])
    predicted = torch.stack(certainties)
    loss_u = (predicted - labels).pow(2).sum(0).mean()
    parts = {"u": loss_u}
    if train_backbone:
        weights = predicted.detach() / predicted.detach().sum(0, keepdim=True)
        parts["simple"] = errors[-1].mean()
        parts["ual"] = (weights * errors).sum(0).mean()
    return sum(parts.values()), {k: float(v.detach()) for k, v in parts.items()}

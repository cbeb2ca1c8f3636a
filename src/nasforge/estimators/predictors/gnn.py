"""A graph convolutional predictor on the cell graph (Wen, Liu, Chen, Li, Bender & Kindermans,
"Neural Predictor for Neural Architecture Search", ECCV 2020).

As in the paper, the cell is a directed graph whose nodes carry one-hot op labels, and each GCN
layer (Kipf & Welling, ICLR 2017) averages a pass along the edges and one against them, so
information flows both from the input and from the output; node states are mean-pooled and a
small fully-connected head regresses the (standardised) objective on the mean squared error.

NAS-Bench-201 puts ops on edges; the usual conversion (used by the predictor comparisons of
White et al., NeurIPS 2021) makes each of the 6 edges a node, joined to the op nodes of the
edges that leave its target, between an input and an output node (8 nodes). A ``none`` edge
keeps its node but loses its links: nothing flows through it. NAS-Bench-101 cells (the paper's
own space) are used as they are, pruned and padded to 7 vertices. Other spaces are refused.

Departures from the paper: 3 layers of width 32, not 144; full-batch Adam for ``epochs``
(300) rather than mini-batches; the uncertainty is a deep ensemble (Lakshminarayanan et al.,
NeurIPS 2017) of ``members`` networks that differ only in their initialisation (the paper
predicts a mean only); proxy scores, when a scorer is given, join the pooled graph state
before the head. A fit on 200 cells takes about a second on one CPU thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.core import Arch
from nasforge.errors import ConfigError
from nasforge.estimators.predictors.base import Predictor, register
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.model_based import check_int


def nb201_graph(arch: Arch) -> tuple[np.ndarray, np.ndarray]:
    """(node features (8, 7), adjacency (8, 8), ``A[i, j] = 1`` for an edge i -> j) of an
    NB201 cell as an op-on-node graph: node 0 input, 1..6 the edges' ops, 7 output."""
    from nasforge.spaces.nb201 import EDGES, NUM_NODES, OPS

    ops = arch.ops  # type: ignore[attr-defined]
    n = len(EDGES) + 2
    out = n - 1
    X = np.zeros((n, len(OPS) + 2))
    X[0, 0] = X[out, 1] = 1.0  # input, output
    A = np.zeros((n, n))
    live = [op != "none" for op in ops]
    for e, (source, target) in enumerate(EDGES):
        X[e + 1, 2 + OPS.index(ops[e])] = 1.0
        if not live[e]:
            continue
        if source == 0:
            A[0, e + 1] = 1.0
        if target == NUM_NODES - 1:
            A[e + 1, out] = 1.0
        for f, (source_f, _) in enumerate(EDGES):
            if source_f == target and live[f]:
                A[e + 1, f + 1] = 1.0
    return X, A


def nb101_graph(arch: Arch) -> tuple[np.ndarray, np.ndarray]:
    """(node features (7, 5), adjacency (7, 7)) of an NB101 cell, ops already on the nodes
    (Wen et al.'s own setting): the pruned cell, padded to 7 vertices with featureless,
    unlinked nodes (left out of the pooling by their all-zero features)."""
    from nasforge.spaces.nb101 import MAX_VERTICES, OPS, prune

    cell = prune(arch)  # type: ignore[arg-type]
    n = len(cell.ops)
    X = np.zeros((MAX_VERTICES, len(OPS) + 2))
    A = np.zeros((MAX_VERTICES, MAX_VERTICES))
    A[:n, :n] = np.asarray(cell.matrix, dtype=float)
    for i, op in enumerate(cell.ops):
        X[i, OPS.index(op) + 2 if op in OPS else (0 if op == "input" else 1)] = 1.0
    return X, A


#: the graph form of each space that has one, by ``space.name``
GRAPHS: dict[str, Callable[[Arch], tuple[np.ndarray, np.ndarray]]] = {
    "nb201": nb201_graph,
    "nb101": nb101_graph,
}
GRAPH_SPACES = tuple(GRAPHS)


def _propagation(A: np.ndarray) -> torch.Tensor:
    """The sparse matrix that averages, for every node of every graph, the messages along the
    edges (row-normalised ``A^T + I``: from predecessors) and against them (``A + I``: from
    successors): shape (graphs*nodes, 2*graphs*nodes), to multiply the forward and the
    backward node states stacked one above the other."""
    n, nodes, _ = A.shape
    eye = np.eye(nodes)
    forward, backward = A.transpose(0, 2, 1) + eye, A + eye
    forward /= forward.sum(-1, keepdims=True)
    backward /= backward.sum(-1, keepdims=True)
    rows, cols, vals = [], [], []
    for half, M in enumerate((forward, backward)):
        g, i, j = np.nonzero(M)
        rows.append(g * nodes + i)
        cols.append(half * n * nodes + g * nodes + j)
        vals.append(0.5 * M[g, i, j])
    index = torch.as_tensor(np.stack([np.concatenate(rows), np.concatenate(cols)]))
    values = torch.as_tensor(np.concatenate(vals), dtype=torch.float32)
    shape = (n * nodes, 2 * n * nodes)
    return torch.sparse_coo_tensor(index, values, shape, check_invariants=False).coalesce()


class _GCNEnsemble(nn.Module):
    """``members`` GCNs evaluated together: every weight has a leading member axis, so one
    batched product serves the whole ensemble (at this size the cost is in the number of
    operations, not in arithmetic)."""

    def __init__(self, members: int, features: int, extra: int, width: int, layers: int):
        super().__init__()
        sizes = [features] + [width] * layers
        # each layer's forward and backward weights side by side: one product for both
        self.weights = nn.ParameterList(
            torch.empty(members, a, 2 * b) for a, b in itertools.pairwise(sizes)
        )
        self.bias = nn.ParameterList(torch.empty(members, 1, 1, b) for b in sizes[1:])
        self.head_w = nn.Parameter(torch.empty(members, width + extra, width))
        self.head_b = nn.Parameter(torch.empty(members, 1, width))
        self.out_w = nn.Parameter(torch.empty(members, width, 1))
        self.out_b = nn.Parameter(torch.empty(members, 1, 1))

    def reset(self, generator: torch.Generator) -> None:
        """Uniform(+-1/sqrt(fan_in)) weights, as ``nn.Linear``, drawn from ``generator``."""
        with torch.no_grad():
            for p in self.parameters():
                fan_in = p.shape[-2] if p.dim() == 3 and p.shape[-2] > 1 else p.shape[-1]
                bound = 1.0 / float(np.sqrt(fan_in))
                p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=generator))

    def forward(self, X: torch.Tensor, P: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """Predictions, shape (members, graphs). ``X``: node features (graphs, nodes, f);
        ``P``: the sparse (graphs*nodes, 2*graphs*nodes) propagation of ``_propagation``.
        Nodes whose features are all zero (padding) are left out of the mean pooling."""
        members, (n, nodes, _) = len(self.head_w), X.shape
        h = X.reshape(1, n * nodes, -1).expand(members, -1, -1)  # (members, n * nodes, f)
        for w, b in zip(self.weights, self.bias, strict=True):
            hf, hb = torch.bmm(h, w).chunk(2, dim=-1)  # (members, n * nodes, width) each
            width = hf.shape[-1]
            stacked = torch.cat([hf, hb], dim=1).transpose(0, 1).reshape(2 * n * nodes, -1)
            mixed = torch.sparse.mm(P, stacked).reshape(n * nodes, members, width)
            h = torch.relu(mixed.transpose(0, 1) + b.reshape(members, 1, width))
        real = (X.sum(dim=2) > 0).to(h.dtype)  # (n, nodes): 0 for padding nodes
        weights = (real / real.sum(dim=1, keepdim=True)).unsqueeze(0).unsqueeze(-1)
        pooled = (h.reshape(members, n, nodes, -1) * weights).sum(dim=2)  # (members, n, width)
        extra = extra.unsqueeze(0).expand(len(pooled), *extra.shape)
        hidden = torch.relu(torch.cat([pooled, extra], dim=2) @ self.head_w + self.head_b)
        return (hidden @ self.out_w + self.out_b).squeeze(2)


@register("gnn")
class GNNPredictor(Predictor):
    """The neural predictor of Wen et al. 2020 (see the module docstring). ``encoding``: none
    (the cell graph is the input); ``device``: where the networks train."""

    default_encoding = None

    def __init__(
        self,
        space: SearchSpace,
        *,
        members: int = 3,
        layers: int = 3,
        width: int = 32,
        epochs: int = 300,
        lr: float = 0.005,
        weight_decay: float = 1e-4,
        device: str | torch.device = "cpu",
        **base: Any,
    ):
        if getattr(space, "name", None) not in GRAPH_SPACES:
            raise ConfigError(
                f"predictor 'gnn' needs a cell graph, which space "
                f"{getattr(space, 'name', space)!r} has not; spaces with one: "
                f"{', '.join(GRAPH_SPACES)}"
            )
        if base.get("encoding") not in (None, "graph"):
            raise ConfigError(
                f"predictor 'gnn' reads the cell graph, not an encoding; got encoding="
                f"{base['encoding']!r} (accepted: none, graph)"
            )
        base["encoding"] = None
        super().__init__(space, **base)
        self.members = check_int("members", members, 1)
        self.layers = check_int("layers", layers, 1)
        self.width = check_int("width", width, 1)
        self.epochs = check_int("epochs", epochs, 1)
        if not lr > 0 or not weight_decay >= 0:
            raise ConfigError(f"lr must be > 0 and weight_decay >= 0, got {lr!r}, {weight_decay!r}")
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.device = torch.device(device)
        self._graph = GRAPHS[space.name]
        self._graphs: dict[Arch, tuple[np.ndarray, np.ndarray]] = {}

    def _tensors(self, archs: list[Arch], extra: np.ndarray) -> tuple[torch.Tensor, ...]:
        graphs = []
        for arch in archs:
            graph = self._graphs.get(arch)
            if graph is None:
                if len(self._graphs) >= 20_000:
                    self._graphs.clear()
                graph = self._graphs[arch] = self._graph(arch)
            graphs.append(graph)
        X = torch.as_tensor(np.stack([g[0] for g in graphs]), dtype=torch.float32)
        P = _propagation(np.stack([g[1] for g in graphs]))
        E = torch.as_tensor(extra, dtype=torch.float32)
        return tuple(t.to(self.device) for t in (X, P, E))

    def _fit(self, archs: list[Arch], y: np.ndarray) -> None:
        extra = self.features.fit_transform(archs)
        self.mean, self.scale = float(y.mean()), float(y.std()) or 1.0
        inputs = self._tensors(archs, extra)
        target = torch.as_tensor((y - self.mean) / self.scale, dtype=torch.float32)
        target = target.to(self.device)
        self.net = _GCNEnsemble(
            self.members, inputs[0].shape[-1], extra.shape[1], self.width, self.layers
        )
        self.net.reset(torch.Generator().manual_seed(self.seed))  # seeded, no global state
        self.net.to(self.device)
        optimiser = torch.optim.Adam(self.net.parameters(), self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            optimiser.zero_grad(set_to_none=True)
            # the members' losses are summed: each member's gradient is its own loss's
            loss = torch.mean((self.net(*inputs) - target) ** 2, dim=1).sum()
            loss.backward()
            optimiser.step()

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        inputs = self._tensors(archs, self.features.transform(archs))
        with torch.no_grad():
            preds = self.net(*inputs).cpu().double().numpy()
        preds = self.mean + self.scale * preds
        return preds.mean(axis=0), preds.std(axis=0)

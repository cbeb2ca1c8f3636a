"""The NAS-Bench-101 cell space (Ying et al., "NAS-Bench-101: Towards Reproducible Neural
Architecture Search", ICML 2019).

A cell is a DAG of at most 7 vertices and at most 9 edges, given by an upper-triangular 0/1
adjacency matrix and one label per vertex: ``input`` first, ``output`` last, and each interior
vertex one of ``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``. The benchmark trained all
423,624 distinct cells on CIFAR-10; the network stacks the cell 3 x 3 times behind a 128-channel
stem, and ``build`` gives that network, not a stand-in.

What a user must know:

* **Pruning.** As in the benchmark's ``ModelSpec``, vertices that are not on an input -> output
  path are extraneous and are dropped before anything is counted or built. ``NB101Arch`` keeps
  the matrix it was given (the genotype, so evolution can reconnect dead vertices, as in the
  paper); ``prune(arch)`` and ``canonical(arch)`` return the pruned cell. Validity is the
  benchmark's: the *pruned* cell has input connected to output and at most 9 edges (the raw
  matrix may hold more edges among dead vertices). Pruned cells of fewer than 7 vertices are
  valid cells of their own.
* **Isomorphism.** ``module_hash`` is the benchmark's graph hash (iterated MD5 of degrees and
  labels), the key of its tables; ``canonical`` relabels the pruned cell into a fixed
  topological order, so isomorphic cells give equal values.
* **String form.** The benchmark has none (its hash is one-way), so: the labels joined by ``,``,
  then ``|``, then the matrix rows as bit strings joined by ``,``, e.g.
  ``input,conv3x3-bn-relu,output|010,001,000``.
* **Decisions.** 21 edge bits (the upper triangle of a 7 x 7 matrix, row by row) then 5 op
  choices; every sequence decodes to a valid cell (see ``repair``).
* **Networks.** ``build`` keeps the labelling it is given, as the benchmark does: the output's
  channels are split over the vertices feeding it and the remainder goes to the lowest-numbered
  ones, so two labellings of one cell can differ by a few channels (and parameters). The
  benchmark's ``trainable_parameters`` are reproduced exactly for the labelling it stores.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidArchError, UnknownNameError
from nasforge.spaces.decisions import Decisions
from nasforge.spaces.net_options import int_option
from nasforge.spaces.vector import one_hot

INPUT, OUTPUT = "input", "output"
#: interior ops, in the benchmark's ``available_ops`` order (its hash labels them 0, 1, 2)
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9
#: (source, target) of each edge decision: the upper triangle of a 7 x 7 matrix, row by row
EDGE_SLOTS: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)
)
NUM_OP_SLOTS = MAX_VERTICES - 2
#: options of each decision: an edge bit per slot, then an op per interior vertex
_DECISION_CHOICES: tuple[int, ...] = (2,) * len(EDGE_SLOTS) + (len(OPS),) * NUM_OP_SLOTS
ENCODINGS: tuple[str, ...] = ("onehot", "index", "adjacency", "path")

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_KERNEL = {"conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1}
_LABELS = (INPUT, *OPS, OUTPUT)
_EXPECTED = (
    "expected 'input,OP,...,output|ROW,ROW,...' with rows as 0/1 bit strings of an "
    f"upper-triangular matrix and OP one of {', '.join(OPS)}"
)
#: interior ops along one input -> output path: 0 to 5 of them, 3**L sequences of length L
_PATH_LENGTHS = range(NUM_OP_SLOTS + 1)
_PATH_OFFSETS = tuple(sum(len(OPS) ** k for k in range(length)) for length in _PATH_LENGTHS)
_PATH_BITS = sum(len(OPS) ** length for length in _PATH_LENGTHS)  # 364

Matrix = tuple[tuple[int, ...], ...]


def _freeze_matrix(matrix: object) -> Matrix:
    """A nested sequence (or array) of 0/1 as a tuple of int tuples; anything else is an error."""
    try:
        rows = [list(row) for row in matrix]  # type: ignore[union-attr]
    except TypeError:
        raise InvalidArchError(
            f"an NB101 matrix must be a square nested sequence of 0/1, got {matrix!r}"
        ) from None
    for row in rows:
        for value in row:
            if isinstance(value, str) or value not in (0, 1):
                raise InvalidArchError(
                    f"NB101 matrix entries must be 0 or 1, got {value!r}; accepted: 0, 1"
                )
    return tuple(tuple(int(value) for value in row) for row in rows)


def _reach(matrix: Matrix, start: int, forward: bool) -> set[int]:
    """Vertices reachable from ``start`` along edges (or against them)."""
    n = len(matrix)
    seen, frontier = {start}, [start]
    while frontier:
        v = frontier.pop()
        for w in range(n):
            edge = matrix[v][w] if forward else matrix[w][v]
            if edge and w not in seen:
                seen.add(w)
                frontier.append(w)
    return seen


def _live(matrix: Matrix) -> list[int]:
    """Vertices on some input -> output path, ascending; empty when input cannot reach output."""
    n = len(matrix)
    return sorted(_reach(matrix, 0, True) & _reach(matrix, n - 1, False))


def _sub(matrix: Matrix, keep: Sequence[int]) -> Matrix:
    return tuple(tuple(matrix[i][j] for j in keep) for i in keep)


def _edges(matrix: Matrix) -> int:
    return sum(map(sum, matrix))


def _problem(matrix: Matrix) -> str | None:
    """Why a raw matrix is not a valid cell once pruned (None when it is)."""
    keep = _live(matrix)
    if not keep:
        return "its input is not connected to its output (no input -> output path)"
    edges = _edges(_sub(matrix, keep))
    if edges > MAX_EDGES:
        return f"it has {edges} edges after pruning; at most {MAX_EDGES} are allowed"
    return None


@dataclass(frozen=True)
class NB101Arch:
    """One cell: ``matrix[i][j] = 1`` for an edge i -> j, ``ops[i]`` the label of vertex i.

    Validated like the benchmark's ``ModelSpec`` + ``is_valid``: square, upper-triangular, 2 to
    7 vertices, ``input`` first and ``output`` last, and once extraneous vertices are pruned,
    input connected to output with at most 9 edges. The matrix is kept as given (unpruned);
    see ``prune``. Immutable and hashable; lists and arrays are frozen into tuples.
    """

    matrix: Matrix
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        matrix = _freeze_matrix(self.matrix)
        if isinstance(self.ops, str):
            raise InvalidArchError(f"NB101 ops must be a sequence of labels, got {self.ops!r}")
        try:
            ops = tuple(self.ops)
        except TypeError:
            raise InvalidArchError(
                f"NB101 ops must be a sequence of labels, got {self.ops!r}"
            ) from None
        n = len(ops)
        if not 2 <= n <= MAX_VERTICES:
            raise InvalidArchError(
                f"an NB101 cell has 2 to {MAX_VERTICES} vertices (one label each), got {n}"
            )
        if len(matrix) != n or any(len(row) != n for row in matrix):
            raise InvalidArchError(
                f"an NB101 matrix must be square, {n} x {n} for {n} ops, got rows of lengths "
                f"{[len(row) for row in matrix]}"
            )
        if any(matrix[i][j] for i in range(n) for j in range(i + 1)):
            raise InvalidArchError(
                "an NB101 matrix must be upper-triangular (a DAG in topological order): "
                "zeros on and below the diagonal"
            )
        for i, op in enumerate(ops):
            wanted = INPUT if i == 0 else OUTPUT if i == n - 1 else None
            if wanted is not None and op != wanted:
                raise InvalidArchError(f"NB101 vertex {i} must be {wanted!r}, got {op!r}")
            if wanted is None and op not in _OP_INDEX:
                raise InvalidArchError(
                    f"unknown NB101 op {op!r} at vertex {i}; accepted: {', '.join(OPS)}"
                )
        problem = _problem(matrix)
        if problem is not None:
            raise InvalidArchError(f"invalid NB101 cell: {problem}")
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "ops", ops)

    @property
    def num_vertices(self) -> int:
        return len(self.ops)


def _check(arch: object) -> NB101Arch:
    if not isinstance(arch, NB101Arch):
        raise InvalidArchError(f"expected an NB101Arch, got {type(arch).__name__}")
    return arch


@functools.lru_cache(maxsize=1 << 16)
def prune(arch: NB101Arch) -> NB101Arch:
    """The cell without extraneous vertices (those on no input -> output path), as the
    benchmark's ``ModelSpec`` prunes it: what is hashed, counted and built."""
    keep = _live(_check(arch).matrix)
    if len(keep) == arch.num_vertices:
        return arch
    return NB101Arch(_sub(arch.matrix, keep), tuple(arch.ops[i] for i in keep))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def graph_hash(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """The benchmark's isomorphism-invariant hash of a labelled DAG (``graph_util.hash_module``).

    Each vertex starts as the MD5 of ``(out-degree, in-degree, label)``; then, once per vertex,
    every fingerprint becomes the MD5 of its in-neighbours' fingerprints (sorted, joined), ``|``,
    its out-neighbours' (likewise), ``|``, its own. The hash is the MD5 of the sorted list's
    ``str``. Vertex order never enters, so isomorphic graphs hash alike (a Weisfeiler-Lehman
    style refinement; the benchmark reports no collisions among its 423,624 cells).
    """
    n = len(matrix)
    ins = [sum(int(matrix[u][v]) for u in range(n)) for v in range(n)]
    outs = [sum(int(x) for x in matrix[v]) for v in range(n)]
    prints = [_md5(str((outs[v], ins[v], int(labels[v])))) for v in range(n)]
    for _ in range(n):
        prints = [
            _md5(
                "".join(sorted(prints[u] for u in range(n) if matrix[u][v]))
                + "|"
                + "".join(sorted(prints[w] for w in range(n) if matrix[v][w]))
                + "|"
                + prints[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(prints)))


@functools.lru_cache(maxsize=1 << 16)
def module_hash(arch: NB101Arch) -> str:
    """The benchmark's hash of the pruned cell: the key of its tables (``hash_spec``), with
    input labelled -1, output -2 and interior ops by their position in ``OPS``."""
    cell = prune(arch)
    labels = [-1, *(_OP_INDEX[op] for op in cell.ops[1:-1]), -2]
    return graph_hash(cell.matrix, labels)


@functools.lru_cache(maxsize=1 << 16)
def canonical(arch: NB101Arch) -> NB101Arch:
    """One representative per isomorphism class: the pruned cell, its interior vertices put in
    the topological order whose (op indices, upper-triangle bits) is smallest.

    Trying every order of the at most 5 interior vertices (120) is exact, so two cells get the
    same representative exactly when they are isomorphic, which is what the benchmark's hash
    approximates; the result is cached.
    """
    cell = prune(arch)
    n = cell.num_vertices
    if n <= 3:
        return cell
    best: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    best_order: tuple[int, ...] = ()
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if cell.matrix[i][j]]
    for middle in itertools.permutations(range(1, n - 1)):
        order = (0, *middle, n - 1)
        position = {old: new for new, old in enumerate(order)}
        if any(position[i] > position[j] for i, j in edges):
            continue  # not a topological order: the matrix would not stay upper-triangular
        key = (
            tuple(_OP_INDEX[cell.ops[v]] for v in middle),
            tuple(cell.matrix[order[a]][order[b]] for a in range(n) for b in range(a + 1, n)),
        )
        if best is None or key < best:
            best, best_order = key, order
    matrix = tuple(tuple(cell.matrix[i][j] for j in best_order) for i in best_order)
    return NB101Arch(matrix, tuple(cell.ops[v] for v in best_order))


def to_string(arch: NB101Arch) -> str:
    """``input,conv3x3-bn-relu,output|010,001,000``: labels, then matrix rows as bits."""
    arch = _check(arch)
    rows = ",".join("".join(str(bit) for bit in row) for row in arch.matrix)
    return ",".join(arch.ops) + "|" + rows


def from_string(text: str) -> NB101Arch:
    """Parse ``to_string``'s form strictly (no spaces, bits only, one row per label)."""

    def fail(reason: str) -> InvalidArchError:
        return InvalidArchError(f"invalid NB101 cell {text!r}: {reason}; {_EXPECTED}")

    if not isinstance(text, str):
        raise InvalidArchError(f"an NB101 cell string must be a str, got {type(text).__name__}")
    parts = text.strip().split("|")
    if len(parts) != 2:
        raise fail(f"{len(parts) - 1} '|' separators, not 1")
    ops, rows = parts[0].split(","), parts[1].split(",")
    for op in ops:
        if op not in _LABELS:
            raise fail(f"unknown label {op!r}")
    if len(rows) != len(ops):
        raise fail(f"{len(ops)} labels but {len(rows)} matrix rows")
    for row in rows:
        if len(row) != len(ops) or set(row) - {"0", "1"}:
            raise fail(f"row {row!r} is not {len(ops)} characters of 0/1")
    matrix = tuple(tuple(int(bit) for bit in row) for row in rows)
    try:
        return NB101Arch(matrix, tuple(ops))
    except InvalidArchError as err:
        raise fail(str(err)) from None


# --- decisions: the space as 21 edge bits and 5 op choices --------------------------------------


def _embed(arch: NB101Arch) -> tuple[list[list[int]], list[int]]:
    """The cell in a 7 x 7 matrix: vertices keep their index, output moves to 6, and the vertices
    in between (absent from a smaller cell) get no edges and op 0. Same pruned cell."""
    n = arch.num_vertices
    where = [*range(n - 1), MAX_VERTICES - 1]
    matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
    for i in range(n):
        for j in range(n):
            if arch.matrix[i][j]:
                matrix[where[i]][where[j]] = 1
    ops = [0] * NUM_OP_SLOTS
    for i in range(1, n - 1):
        ops[i - 1] = _OP_INDEX[arch.ops[i]]
    return matrix, ops


def encode_decisions(arch: NB101Arch) -> tuple[int, ...]:
    """21 edge bits in ``EDGE_SLOTS`` order, then the 5 interior op indices (see ``_embed``)."""
    matrix, ops = _embed(_check(arch))
    return (*(matrix[i][j] for i, j in EDGE_SLOTS), *ops)


def _freeze(matrix: list[list[int]]) -> Matrix:
    return tuple(tuple(row) for row in matrix)


def repair(matrix: list[list[int]]) -> list[list[int]]:
    """Make a 7 x 7 upper-triangular 0/1 matrix a valid cell, deterministically.

    1. Input not connected to output: add the input -> output edge. No other path existed, so
       the pruned cell is input -> output alone (1 edge), which is valid.
    2. More than 9 edges after pruning: drop live edges one at a time, the last in
       ``EDGE_SLOTS`` order whose removal keeps input connected to output, until 9 remain.
       (Such an edge always exists: if every edge lay on every input -> output path, the cell
       would be one path of at most 6 edges.)

    A valid matrix comes back unchanged, so encoding a valid cell and decoding it is exact.
    """
    matrix = [list(row) for row in matrix]
    last = len(matrix) - 1
    if not _live(_freeze(matrix)):
        matrix[0][last] = 1
    while True:
        keep = _live(_freeze(matrix))
        if _edges(_sub(_freeze(matrix), keep)) <= MAX_EDGES:
            return matrix
        live = set(keep)
        for i, j in reversed(EDGE_SLOTS):
            if matrix[i][j] and i in live and j in live:
                matrix[i][j] = 0
                if _live(_freeze(matrix)):
                    break
                matrix[i][j] = 1
        else:  # unreachable (see above), but never loop forever
            raise AssertionError(f"cannot repair NB101 matrix {matrix}")


def _from_parts(matrix: list[list[int]], ops: Sequence[int]) -> NB101Arch:
    return NB101Arch(_freeze(matrix), (INPUT, *(OPS[int(o)] for o in ops), OUTPUT))


def _matrix_of(bits: Sequence[int]) -> list[list[int]]:
    matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
    for (i, j), bit in zip(EDGE_SLOTS, bits, strict=True):
        matrix[i][j] = int(bit)
    return matrix


def decode_decisions(sequence: Sequence[int]) -> NB101Arch:
    """The (repaired, see ``repair``) cell of 21 edge bits and 5 op indices."""
    values = [int(v) for v in sequence]
    size = len(EDGE_SLOTS) + NUM_OP_SLOTS
    if len(values) != size:
        raise InvalidArchError(f"an NB101 decision sequence has {size} entries, got {len(values)}")
    bits, ops = values[: len(EDGE_SLOTS)], values[len(EDGE_SLOTS) :]
    if any(b not in (0, 1) for b in bits) or any(not 0 <= o < len(OPS) for o in ops):
        raise InvalidArchError(
            f"NB101 decisions: 21 edge bits in 0..1 then 5 ops in 0..{len(OPS) - 1}, got {values}"
        )
    return _from_parts(repair(_matrix_of(bits)), ops)


# --- encodings ----------------------------------------------------------------------------------


def _adjacency_encoding(arch: NB101Arch) -> np.ndarray:
    """White et al.'s "adjacency" encoding (BANANAS, AAAI 2021) of the canonical cell: its 21
    upper-triangle bits in a 7 x 7 matrix, then a one-hot of each of the 5 interior ops (all
    zeros for vertices a smaller cell does not have). Isomorphic cells encode alike."""
    cell = canonical(arch)
    matrix, ops = _embed(cell)
    onehot = np.zeros((NUM_OP_SLOTS, len(OPS)))
    for i in range(1, cell.num_vertices - 1):
        onehot[i - 1, ops[i - 1]] = 1.0
    bits = np.array([matrix[i][j] for i, j in EDGE_SLOTS], dtype=float)
    return np.concatenate([bits, onehot.ravel()])


def _paths(cell: NB101Arch) -> list[tuple[int, ...]]:
    """Every input -> output path of a pruned cell, as its interior vertices."""
    n = cell.num_vertices
    found: list[tuple[int, ...]] = []

    def walk(v: int, path: tuple[int, ...]) -> None:
        for w in range(v + 1, n):
            if cell.matrix[v][w]:
                if w == n - 1:
                    found.append(path)
                else:
                    walk(w, (*path, w))

    walk(0, ())
    return found


def _path_encoding(arch: NB101Arch) -> np.ndarray:
    """White et al.'s path encoding (BANANAS, AAAI 2021): one bit per possible sequence of
    interior ops along an input -> output path (3**0 + ... + 3**5 = 364 bits), set when the
    pruned cell has such a path. Untruncated; isomorphic cells encode alike."""
    cell = prune(arch)
    bits = np.zeros(_PATH_BITS)
    for path in _paths(cell):
        index = 0
        for v in path:
            index = index * len(OPS) + _OP_INDEX[cell.ops[v]]
        bits[_PATH_OFFSETS[len(path)] + index] = 1.0
    return bits


# --- the network --------------------------------------------------------------------------------


class ConvBNReLU(nn.Sequential):
    """Conv (no bias: BN follows) -> BN -> ReLU, the benchmark's ``conv_bn_relu``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        )


def vertex_channels(c_in: int, c_out: int, matrix: Matrix) -> list[int]:
    """Channels of each vertex of a pruned cell (the benchmark's ``compute_vertex_channels``).

    The output concatenates the interior vertices that feed it, so ``c_out`` is split evenly
    among them (the first ``c_out % fan_in`` get one more); every other interior vertex takes
    the largest width among the interior vertices it feeds; the input keeps ``c_in``.
    """
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = c_in, c_out
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    base, extra = divmod(c_out, len(feeders))
    for rank, v in enumerate(feeders):
        channels[v] = base + (rank < extra)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


def _make_op(op: str, channels: int) -> nn.Module:
    if op == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    return ConvBNReLU(channels, channels, _KERNEL[op])


class NB101Cell(nn.Module):
    """The benchmark's module: vertex t = op(sum of its inputs), where interior inputs are cut to
    t's width and the cell input goes through a 1x1 conv-BN-ReLU projection; the output is the
    concatenation of the vertices that feed it, plus the projected input on an input -> output
    edge (the projection alone when no interior vertex feeds the output)."""

    def __init__(self, arch: NB101Arch, c_in: int, c_out: int):
        super().__init__()
        cell = prune(arch)
        self.matrix, n = cell.matrix, cell.num_vertices
        self.channels = vertex_channels(c_in, c_out, cell.matrix)
        self.projections = nn.ModuleDict(
            {
                str(v): ConvBNReLU(c_in, self.channels[v], 1)
                for v in range(1, n)
                if self.matrix[0][v]
            }
        )
        self.vertex_ops = nn.ModuleDict(
            {str(v): _make_op(cell.ops[v], self.channels[v]) for v in range(1, n - 1)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.matrix)
        values: list[torch.Tensor] = [x]
        for t in range(1, n - 1):
            width = self.channels[t]
            terms = [values[s][:, :width] for s in range(1, t) if self.matrix[s][t]]
            if self.matrix[0][t]:
                terms.append(self.projections[str(t)](x))
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            values.append(self.vertex_ops[str(t)](total))
        feeders = [values[v] for v in range(1, n - 1) if self.matrix[v][n - 1]]
        out = torch.cat(feeders, dim=1) if feeders else None
        if self.matrix[0][n - 1]:
            projected = self.projections[str(n - 1)](x)
            out = projected if out is None else out + projected
        assert out is not None  # a valid cell always reaches its output
        return out


class NB101Network(nn.Module):
    """Stem (3x3 conv-BN-ReLU), ``stacks`` stacks of ``cells_per_stack`` cells with a 2x2 max
    pool and doubled channels before every stack but the first, global average pool, dense.

    The pools use ``ceil_mode`` like the benchmark's ``'same'`` padding, so odd sizes work.
    BatchNorm uses PyTorch's defaults (momentum 0.1) rather than the benchmark's 0.997 decay,
    which suits its 108 epochs but not the short runs nasforge trains; parameters are the same.
    """

    def __init__(
        self,
        arch: NB101Arch,
        stem_channels: int,
        stacks: int,
        cells_per_stack: int,
        in_channels: int,
        num_classes: int,
    ):
        super().__init__()
        self.stem = ConvBNReLU(in_channels, stem_channels, 3)
        layers: list[nn.Module] = []
        channels = stem_channels
        for stack in range(stacks):
            c_in = channels
            if stack:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
                channels *= 2
            for _ in range(cells_per_stack):
                layers.append(NB101Cell(arch, c_in, channels))
                c_in = channels
        self.cells = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.cells(self.stem(x))).flatten(1))


def _check_net(
    stem_channels: object,
    stacks: object,
    cells_per_stack: object,
    in_channels: object,
    num_classes: object,
) -> None:
    # the output may concatenate 5 vertices, each needs at least one channel
    int_option("NB101 network stem_channels", stem_channels, low=NUM_OP_SLOTS)
    int_option("NB101 network stacks", stacks)
    int_option("NB101 network cells_per_stack", cells_per_stack)
    int_option("NB101 network in_channels", in_channels)
    int_option("NB101 network num_classes", num_classes)


def build(
    arch: NB101Arch,
    *,
    stem_channels: int = 128,
    stacks: int = 3,
    cells_per_stack: int = 3,
    in_channels: int = 3,
    num_classes: int = 10,
) -> NB101Network:
    """The benchmark's network for ``arch`` (defaults: what NB101 trained on CIFAR-10)."""
    _check_net(stem_channels, stacks, cells_per_stack, in_channels, num_classes)
    return NB101Network(
        _check(arch),
        int(stem_channels),
        int(stacks),
        int(cells_per_stack),
        int(in_channels),
        int(num_classes),
    )


def _cell_params(cell: NB101Arch, c_in: int, c_out: int) -> int:
    def conv(k: int, a: int, b: int) -> int:  # conv weights + BN scale and shift
        return k * k * a * b + 2 * b

    n = cell.num_vertices
    channels = vertex_channels(c_in, c_out, cell.matrix)
    total = sum(conv(1, c_in, channels[v]) for v in range(1, n) if cell.matrix[0][v])
    for v in range(1, n - 1):
        if cell.ops[v] in _KERNEL:
            total += conv(_KERNEL[cell.ops[v]], channels[v], channels[v])
    return total


def param_count(
    arch: NB101Arch,
    *,
    stem_channels: int = 128,
    stacks: int = 3,
    cells_per_stack: int = 3,
    in_channels: int = 3,
    num_classes: int = 10,
) -> int:
    """Trainable parameters of ``build(arch, ...)``, computed without building it.

    Matches the benchmark's ``trainable_parameters`` (e.g. 8,555,530 for the first cell of its
    table, 2,694,282 for its README's Inception-like cell; see the tests).
    """
    _check_net(stem_channels, stacks, cells_per_stack, in_channels, num_classes)
    cell = prune(_check(arch))
    total = 9 * in_channels * stem_channels + 2 * stem_channels
    channels = stem_channels
    for stack in range(stacks):
        c_in = channels
        if stack:
            channels *= 2
        for _ in range(cells_per_stack):
            total += _cell_params(cell, c_in, channels)
            c_in = channels
    return int(total + channels * num_classes + num_classes)


# --- the space ----------------------------------------------------------------------------------


def _valid(matrix: list[list[int]]) -> bool:
    return _problem(_freeze(matrix)) is None


class NB101Space:
    """NAS-Bench-101 as a SearchSpace: architectures are NB101Arch values (see the module doc)."""

    name = "nb101"
    #: the CLI's generic --channels/--cells knobs, as ``build`` keywords
    size_options: ClassVar[dict[str, str | None]] = {
        "channels": "stem_channels",
        "cells": "cells_per_stack",
    }
    #: tries of the benchmark's own rejection sampling / mutation before falling back to repair
    max_tries = 1000

    def sample(self, rng: np.random.Generator) -> NB101Arch:
        """The benchmark's random search: each of the 21 edges and each interior op uniform,
        redrawn until the cell is valid (about 1 draw in 3 is); after ``max_tries`` rejected
        draws (practically never) the last draw is repaired instead."""
        for _ in range(self.max_tries):
            bits = rng.integers(0, 2, size=len(EDGE_SLOTS))
            ops = rng.integers(0, len(OPS), size=NUM_OP_SLOTS)
            matrix = _matrix_of(bits)
            if _valid(matrix):
                return _from_parts(matrix, ops)
        return _from_parts(repair(matrix), ops)

    def mutate(self, arch: NB101Arch, rng: np.random.Generator) -> NB101Arch:
        """The NB101 paper's evolution mutation (mutation rate 1): on the 7 x 7 genotype, flip
        each edge with probability 1/7 and change each interior op to another with probability
        1/5, redrawn until the child is valid and not isomorphic to the parent. After
        ``max_tries`` draws, a random one-edit neighbour, else a fresh sample."""
        parent = canonical(_check(arch))
        matrix, ops = _embed(arch)
        for _ in range(self.max_tries):
            child_matrix = [row[:] for row in matrix]
            child_ops = list(ops)
            for i, j in EDGE_SLOTS:
                if rng.random() < 1.0 / MAX_VERTICES:
                    child_matrix[i][j] = 1 - child_matrix[i][j]
            for k in range(NUM_OP_SLOTS):
                if rng.random() < 1.0 / NUM_OP_SLOTS:
                    others = [o for o in range(len(OPS)) if o != child_ops[k]]
                    child_ops[k] = others[int(rng.integers(len(others)))]
            if _valid(child_matrix):
                child = _from_parts(child_matrix, child_ops)
                if canonical(child) != parent:
                    return child
        near = self.neighbours(arch)
        if near:
            return near[int(rng.integers(len(near)))]
        while True:
            child = self.sample(rng)
            if canonical(child) != parent:
                return child

    def neighbours(self, arch: NB101Arch) -> list[NB101Arch]:
        """Valid cells one edit away on the 7 x 7 genotype: each edge flipped (``EDGE_SLOTS``
        order), then each interior op changed (vertex by vertex, ops in ``OPS`` order). Edits
        that give a cell isomorphic to ``arch`` or to an earlier neighbour are left out, so the
        bare input -> output cell has none."""
        matrix, ops = _embed(_check(arch))
        seen = {canonical(arch)}
        found: list[NB101Arch] = []

        def offer(candidate: NB101Arch) -> None:
            key = canonical(candidate)
            if key not in seen:
                seen.add(key)
                found.append(candidate)

        for i, j in EDGE_SLOTS:
            flipped = [row[:] for row in matrix]
            flipped[i][j] = 1 - flipped[i][j]
            if _valid(flipped):
                offer(_from_parts(flipped, ops))
        for k in range(NUM_OP_SLOTS):
            for o in range(len(OPS)):
                if o != ops[k]:
                    offer(_from_parts(matrix, [*ops[:k], o, *ops[k + 1 :]]))
        return found

    def encode(self, arch: NB101Arch, kind: str = "onehot") -> np.ndarray:
        """``index``: the 26 decisions (``decisions().encode``); ``onehot``: each decision one-hot
        (21 x 2 + 5 x 3 = 57); ``adjacency``: BANANAS' adjacency encoding of the canonical cell
        (36); ``path``: BANANAS' path encoding (364 bits). The last two ignore dead vertices
        and are the same for isomorphic cells."""
        arch = _check(arch)
        if kind == "adjacency":
            return _adjacency_encoding(arch)
        if kind == "path":
            return _path_encoding(arch)
        indices = encode_decisions(arch)
        if kind == "index":
            return np.asarray(indices, dtype=float)
        if kind == "onehot":
            return one_hot(indices, _DECISION_CHOICES)
        raise UnknownNameError("encoding", kind, ENCODINGS)

    def to_string(self, arch: NB101Arch) -> str:
        return to_string(arch)

    def from_string(self, text: str) -> NB101Arch:
        return from_string(text)

    def canonical(self, arch: NB101Arch) -> NB101Arch:
        return canonical(_check(arch))

    def prune(self, arch: NB101Arch) -> NB101Arch:
        return prune(_check(arch))

    def hash(self, arch: NB101Arch) -> str:
        """The benchmark's hash of the cell (``ModelSpec.hash_spec``): its tables' key."""
        return module_hash(_check(arch))

    def decisions(self) -> Decisions:
        """21 binary edge decisions (``EDGE_SLOTS``), then 5 ternary op decisions; every
        sequence decodes to a valid cell (``repair``), and a 7-vertex cell round-trips exactly
        (smaller cells come back as an isomorphic 7 x 7 genotype)."""
        return Decisions(
            choices=_DECISION_CHOICES,
            decode=decode_decisions,
            encode=encode_decisions,
        )

    def crossover(self, a: NB101Arch, b: NB101Arch, rng: np.random.Generator) -> NB101Arch:
        """Uniform crossover over the 26 decisions, repaired into a valid cell."""
        first, second = encode_decisions(a), encode_decisions(b)
        take_first = rng.random(len(first)) < 0.5
        child = [x if keep else y for x, y, keep in zip(first, second, take_first, strict=True)]
        return decode_decisions(child)

    #: the module functions, so the signature (keywords and defaults) is stated once
    build = staticmethod(build)
    param_count = staticmethod(param_count)

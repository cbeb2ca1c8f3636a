"""Architecture diagrams for the HTML report: the cell or layer stack a search found, as SVG.

A stored architecture string is exact but hard to read (``|nor_conv_3x3~0|+|...``, a DARTS
``Genotype(...)``); a picture of the cell shows at a glance which ops it uses and how it is wired.
``architecture_svg`` parses the string with the space's own parser, so the drawing can never
disagree with what the space would build, and draws it with matplotlib, returning SVG markup
that an HTML page can inline.

Cell spaces (nb201, darts, nasnet, nb101) are drawn as DAGs that read left to right, one column
per topological generation (networkx), nodes ordered within a column to avoid crossings; layer
spaces (chain, mobile) as a top-to-bottom stack of boxes. Op names stay real ``<text>``
elements (``svg.fonttype = 'none'``), so they can be searched and selected in the page, and ids
are derived from the architecture, so the output is deterministic and two diagrams inlined in
one page do not share ids.

Nothing heavy is imported at module import: matplotlib, networkx and the space modules (which
import torch) are imported when a diagram is drawn.
"""

from __future__ import annotations

import functools
import hashlib
import html
import importlib
import io
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

#: Spaces with a drawing; any other name (a user space) gets None.
SPACES: tuple[str, ...] = ("nb201", "darts", "nasnet", "nb101", "chain", "mobile")

_FONT = 8.0  # points, node and box labels
_EDGE_FONT = 7.0  # points, op labels on edges
_MAX_WIDTH = 9.5  # inches; the report is read on an ordinary screen
#: (face, edge) colours of each kind of node
_STYLE: dict[str, tuple[str, str]] = {
    "io": ("#dbe9f6", "#3b6ea5"),
    "node": ("#ffffff", "#555555"),
    "op": ("#fdebd0", "#c77c1e"),
    "combine": ("#e3f2e1", "#3d8b37"),
    "dead": ("#f2f2f2", "#9e9e9e"),
    "layer": ("#eef3fb", "#3b6ea5"),
    "fixed": ("#f5f5f5", "#777777"),
}
#: rc_context changes matplotlib's global rcParams: one drawing at a time, so a threaded server
#: (the dashboard) cannot mix two diagrams' settings
_LOCK = threading.Lock()


@functools.lru_cache(maxsize=256)  # deterministic output; a page may show the same arch often
def architecture_svg(space: str, arch: str) -> str | None:
    """SVG markup drawing ``arch`` (the stored string form) of the built-in space ``space``.

    The markup starts with ``<svg`` (no XML prolog or DOCTYPE) so it can be inlined in HTML; its
    root element carries ``class="arch-diagram"`` and ``data-space="<space>"`` for styling.
    Returns None for a space without a drawing (user spaces). Raises InvalidArchError (a
    ValueError) with a one-line message naming the space when ``arch`` does not parse.
    """
    drawer = _DRAWERS.get(space)
    if drawer is None:
        return None
    parsed = _parse(space, arch)
    import matplotlib

    salt = hashlib.sha256(f"{space}\n{arch}".encode()).hexdigest()[:12]
    rc = {"svg.fonttype": "none", "svg.hashsalt": f"nasforge-{salt}", "font.size": _FONT}
    with _LOCK, matplotlib.rc_context(rc):
        fig = drawer(parsed)
        try:
            buf = io.BytesIO()
            metadata = {"Date": None, "Creator": None, "Format": None, "Type": None}
            fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.05, metadata=metadata)
        finally:
            fig.clear()  # a bare Figure is not in pyplot's registry: dropping it frees it
    return _finish(buf.getvalue().decode("utf-8"), space, f"arch-{salt}-")


def _parse(space: str, arch: str) -> Any:
    """The space's own parse of ``arch``, its error re-raised on one line naming the space."""
    from nasforge.errors import InvalidArchError

    module = importlib.import_module(f"nasforge.spaces.{space}")
    try:
        return module.from_string(arch)
    except ValueError as err:
        reason = " ".join(str(err).split())
        raise InvalidArchError(f"cannot draw {space} architecture: {reason}") from None


def _finish(svg: str, space: str, prefix: str) -> str:
    """Make savefig's document inlinable: drop the prolog and DOCTYPE, tag the root element,
    prefix ids (two diagrams in one page must not share clip-path ids) and scope the stylesheet
    matplotlib embeds (``*{...}`` would otherwise restyle every SVG of the page)."""
    start = svg.find("<svg")
    if start < 0:  # pragma: no cover - savefig always writes an <svg> root
        raise RuntimeError("matplotlib wrote no <svg> element")
    svg = svg[start:].strip()
    svg = re.sub(r'(?<=\s)id="', f'id="{prefix}', svg)
    svg = svg.replace("url(#", f"url(#{prefix}").replace('href="#', f'href="#{prefix}')
    svg = re.sub(r"(<style[^>]*>\s*)\*\s*\{", r"\1.arch-diagram *{", svg)
    attrs = f'class="arch-diagram" data-space="{html.escape(space, quote=True)}"'
    return re.sub(r"^<svg\b", f"<svg {attrs}", svg, count=1)


def _new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas: no pyplot state, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(width, _MAX_WIDTH), height))
    FigureCanvasAgg(fig)
    return fig


# --- cells: DAGs laid out by topological generation ---------------------------------------------


@dataclass
class _Graph:
    """One cell to draw: nodes (id -> label, kind) in drawing order, and edges."""

    title: str
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: (source, target, op label or None, style: "solid" | "concat" | "dead")
    edges: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    #: edges used for the layout only (NB201 keeps its node order whatever edges are 'none')
    layout_edges: list[tuple[str, str]] | None = None
    #: nodes to move to just before their only successor's column (NASNet's op nodes)
    late: set[str] = field(default_factory=set)

    def node(self, key: str, label: str, kind: str) -> None:
        self.nodes[key] = (label, kind)

    def edge(self, src: str, dst: str, label: str | None = None, style: str = "solid") -> None:
        self.edges.append((src, dst, label, style))


def _layers(graph: _Graph) -> dict[str, int]:
    """Column of each node: its topological generation, with stray sources tied after the
    first node and stray sinks before the last, so the cell's input is leftmost and its
    output rightmost even when some nodes are disconnected."""
    import networkx as nx

    keys = list(graph.nodes)
    first, last = keys[0], keys[-1]
    dag = nx.DiGraph()
    dag.add_nodes_from(keys)
    pairs = graph.layout_edges or [(s, t) for s, t, _, _ in graph.edges]
    dag.add_edges_from(pairs)
    inputs = [k for k in keys if graph.nodes[k][1] == "io" and dag.in_degree(k) == 0]
    sources = [k for k in keys if dag.in_degree(k) == 0 and k not in inputs]
    sinks = [k for k in keys if dag.out_degree(k) == 0 and k not in (last, *inputs)]
    dag.add_edges_from((first, k) for k in sources)
    dag.add_edges_from((k, last) for k in sinks)
    layer = {k: i for i, gen in enumerate(nx.topological_generations(dag)) for k in gen}
    for key in graph.late:
        successors = list(dag.successors(key))
        if len(successors) == 1:
            layer[key] = layer[successors[0]] - 1
    return layer


def _positions(graph: _Graph) -> tuple[dict[str, tuple[float, float]], dict[str, int], float, int]:
    """(x, y) and column per node, the drawing's width in column steps, and the most nodes in
    one column.

    x is the node's column, a column step widened where many op labels must fit between two
    columns; y its slot within the column, centred. Within a column nodes are ordered by the
    mean slot of their neighbours (a few barycentre sweeps, as in Sugiyama's layered drawing),
    which removes most edge crossings of these small cells."""
    layer = _layers(graph)
    columns = max(layer.values()) + 1
    order = [[k for k in graph.nodes if layer[k] == c] for c in range(columns)]
    pairs = [(s, t) for s, t, _, _ in graph.edges]
    before = {k: [s for s, t in pairs if t == k] for k in graph.nodes}
    after = {k: [t for s, t in pairs if s == k] for k in graph.nodes}

    def slots() -> dict[str, float]:
        return {k: i - (len(col) - 1) / 2 for col in order for i, k in enumerate(col)}

    for sweep in range(3):  # forward, backward, forward; the inputs' column stays as given
        forward = sweep % 2 == 0
        neighbours = before if forward else after
        for c in range(1, columns) if forward else range(columns - 2, 0, -1):
            y = slots()
            order[c].sort(key=lambda k: _mean([y[n] for n in neighbours[k]], y[k]))
    labelled = [layer[s] for s, _, label, _ in graph.edges if label is not None]
    x = [0.0]
    for c in range(columns - 1):
        x.append(x[-1] + max(1.0, labelled.count(c) / 3))
    y = slots()
    pos = {k: (x[layer[k]], -y[k]) for k in graph.nodes}  # first in a column on top
    return pos, layer, x[-1] + 1, max(len(col) for col in order)


def _mean(values: Sequence[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _draw_cell(
    ax: Axes, graph: _Graph, pos: dict[str, tuple[float, float]], column: dict[str, int]
) -> None:
    """Nodes as labelled boxes (circles for intermediate nodes), edges as arrows clipped at the
    boxes, long edges bent so they do not run through the columns they skip, op labels placed
    where they collide least with other labels."""
    import numpy as np
    from matplotlib.patches import FancyArrowPatch

    boxes: dict[str, Text] = {}
    for key, (label, kind) in graph.nodes.items():
        face, edge = _STYLE[kind]
        style = "circle,pad=0.3" if kind == "node" else "round,pad=0.35"
        boxes[key] = ax.text(
            *pos[key],
            label,
            ha="center",
            va="center",
            color="#777777" if kind == "dead" else "black",
            zorder=3,
            clip_on=False,
            bbox={
                "boxstyle": style,
                "facecolor": face,
                "edgecolor": edge,
                "linewidth": 1.0,
                "linestyle": "--" if kind == "dead" else "-",
            },
        )
    ax.figure.canvas.draw()  # sizes the boxes so labels can avoid them
    renderer = ax.figure.canvas.get_renderer()
    taken = [b.get_bbox_patch().get_window_extent(renderer) for b in boxes.values()]
    bend = 0  # long edges bent so far
    to_display = ax.transData.transform
    slot = abs(to_display((0, 1))[1] - to_display((0, 0))[1])  # one slot, in display units
    for src, dst, label, style in graph.edges:
        span = column[dst] - column[src]
        if span == 1:
            rad = 0.0
        else:  # bend away from the middle, where the other nodes are; alternate when level
            bend += 1
            height = pos[src][1] + pos[dst][1]
            up = height > 0 or (height == 0 and bend % 2 == 1)
            # arc3 bulges by rad * length / 2 (display space): aim for a bulge in slots that
            # grows with the span but stays inside the panel's margin
            bulge = min(0.45 + 0.12 * (span - 2), 0.8) * slot
            length = float(np.hypot(*(to_display(pos[dst]) - to_display(pos[src]))))
            rad = (-1 if up else 1) * min(2 * bulge / max(length, 1e-9), 0.6)
        colour = "#333333" if style == "solid" else "#999999"
        ax.add_patch(
            FancyArrowPatch(
                pos[src],
                pos[dst],
                arrowstyle="-|>",
                mutation_scale=9,
                connectionstyle=f"arc3,rad={rad}",
                patchA=boxes[src].get_bbox_patch(),
                patchB=boxes[dst].get_bbox_patch(),
                shrinkA=1,
                shrinkB=1,
                linewidth=0.9,
                linestyle="--" if style != "solid" else "-",
                color=colour,
                zorder=4,  # after the boxes, so the clipping uses their drawn size
                clip_on=False,
            )
        )
        if label is not None:
            _edge_label(ax, pos[src], pos[dst], rad, label, taken, renderer)


def _edge_label(
    ax: Axes,
    a: tuple[float, float],
    b: tuple[float, float],
    rad: float,
    label: str,
    taken: list[Any],
    renderer: Any,
) -> None:
    """Put ``label`` on the arc3 curve a -> b at the first of a few positions along it that
    overlaps no box or earlier label (else the least crowded one)."""
    import numpy as np

    to_display = ax.transData
    p0, p2 = to_display.transform(a), to_display.transform(b)
    mid, (dx, dy) = (p0 + p2) / 2, p2 - p0
    control = mid + rad * np.array([dy, -dx])  # matplotlib's Arc3, in display space
    best: tuple[float, Any] | None = None
    for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78):
        point = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * control + t**2 * p2
        text = ax.text(
            *to_display.inverted().transform(point),
            label,
            ha="center",
            va="center",
            fontsize=_EDGE_FONT,
            zorder=5,
            clip_on=False,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
        )
        extent = text.get_window_extent(renderer).expanded(1.1, 1.3)
        overlap = sum(_overlap(extent, other) for other in taken)
        if overlap == 0:
            if best is not None:
                best[1].remove()
            taken.append(extent)
            return
        if best is None or overlap < best[0]:
            if best is not None:
                best[1].remove()
            best = (overlap, text)
        else:
            text.remove()
    assert best is not None
    taken.append(best[1].get_window_extent(renderer))


def _overlap(a: Any, b: Any) -> float:
    """Area shared by two display-space bounding boxes."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def _cells_figure(graphs: Sequence[_Graph], column_width: float, slot_height: float) -> Figure:
    """One panel per cell, stacked; panel size follows the cell's columns and tallest column."""
    laid = [_positions(g) for g in graphs]
    columns = max(w for _, _, w, _ in laid)
    heights = [max(t, 2) * slot_height + 0.9 for _, _, _, t in laid]
    fig = _new_figure(0.6 + column_width * columns, sum(heights))
    axes = fig.subplots(len(graphs), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    fig.subplots_adjust(left=0.02, right=0.98, top=0.97, bottom=0.02, hspace=0.25)
    for ax, graph, (pos, column, _, tallest) in zip(axes[:, 0], graphs, laid, strict=True):
        ax.set_axis_off()
        ax.set_xlim(-0.5, columns - 0.5)
        half = max(tallest - 1, 1) / 2
        ax.set_ylim(-half - 1.0, half + 1.0)  # room for the bends (at most 0.8 slot)
        if graph.title:
            ax.set_title(graph.title, fontsize=_FONT + 1, loc="left")
        _draw_cell(ax, graph, pos, column)
    return fig


def _draw_nb201(arch: Any) -> Figure:
    from nasforge.spaces.nb201 import EDGES, NUM_NODES

    graph = _Graph("NAS-Bench-201 cell")
    names = {0: "in", NUM_NODES - 1: "out"}
    for node in range(NUM_NODES):
        graph.node(str(node), names.get(node, str(node)), "io" if node in names else "node")
    for (src, dst), op in zip(EDGES, arch.ops, strict=True):
        if op != "none":  # a 'none' edge carries nothing: the node is still drawn
            graph.edge(str(src), str(dst), op)
    graph.layout_edges = [(str(s), str(t)) for s, t in EDGES]
    return _cells_figure([graph], column_width=2.2, slot_height=0.9)


def _draw_darts(arch: Any) -> Figure:
    from nasforge.spaces.darts import CELLS, NUM_NODES

    graphs = []
    for name in CELLS:
        graph = _Graph(f"{name} cell" if name == "normal" else "reduction cell")
        graph.node("0", "c_{k-2}", "io")
        graph.node("1", "c_{k-1}", "io")
        for node in range(NUM_NODES):
            graph.node(str(node + 2), str(node), "node")
        graph.node("out", "c_{k}", "io")
        for position, (op, source) in enumerate(arch.cell(name)):
            if op != "none":  # parsable (the DARTS supernet had it) but carries nothing
                graph.edge(str(source), str(position // 2 + 2), op)
        for node in range(NUM_NODES):
            graph.edge(str(node + 2), "out", None, "concat")
        graphs.append(graph)
    return _cells_figure(graphs, column_width=1.9, slot_height=0.72)


def _draw_nasnet(arch: Any) -> Figure:
    from nasforge.spaces.nasnet import unused_blocks

    graphs = []
    for name, cell in (("normal cell", arch.normal), ("reduction cell", arch.reduce)):
        graph = _Graph(name)
        graph.node("0", "h_{i-2}", "io")
        graph.node("1", "h_{i-1}", "io")
        for b, block in enumerate(cell):
            for half, (source, op) in enumerate(block.halves):
                key = f"b{b}.{half}"
                graph.node(key, op, "op")
                graph.edge(str(source), key)
                graph.edge(key, str(b + 2))
                graph.late.add(key)
            graph.node(str(b + 2), block.combiner, "combine")
        graph.node("out", "h_{i}", "io")
        for b in unused_blocks(cell):
            graph.edge(str(b + 2), "out", None, "concat")
        graphs.append(graph)
    return _cells_figure(graphs, column_width=1.05, slot_height=0.42)


def _draw_nb101(arch: Any) -> Figure:
    import networkx as nx

    n = len(arch.ops)
    dag = nx.DiGraph((i, j) for i in range(n) for j in range(n) if arch.matrix[i][j])
    dag.add_nodes_from(range(n))
    live = ({0} | nx.descendants(dag, 0)) & ({n - 1} | nx.ancestors(dag, n - 1))
    graph = _Graph("NAS-Bench-101 cell" + ("" if len(live) == n else " (grey: off every path)"))
    for v, op in enumerate(arch.ops):
        kind = "io" if v in (0, n - 1) else "op" if v in live else "dead"
        graph.node(str(v), op, kind)
    for i, j in sorted(dag.edges):
        graph.edge(str(i), str(j), None, "solid" if i in live and j in live else "dead")
    return _cells_figure([graph], column_width=1.6, slot_height=0.7)


# --- layer stacks: chain and mobile -------------------------------------------------------------


def _stack_figure(
    title: str,
    boxes: Sequence[tuple[str, str]],
    skips: Sequence[tuple[int, int]] = (),
    notes: Sequence[str] = (),
) -> Figure:
    """Boxes (label, kind) top to bottom joined by arrows, equal width so the stack reads as
    one column; ``skips`` (from box, to box) bend round the right side; ``notes`` label the
    boxes at their left (stage numbers)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    longest = max(len(label) for label, _ in boxes)
    box_w = 0.068 * longest * _FONT / 8 + 0.3  # inches: DejaVu Sans averages ~0.6 em a glyph
    box_h, gap = 0.3, 0.22
    step = box_h + gap
    height = len(boxes) * step + 0.5

    def bend(span: int) -> float:  # arc3's rad, and the bulge it gives, in inches
        return min(0.3 + 0.1 * span, 0.8)

    bulges = [bend(d - s) * (d - s) * step / 2 for s, d in skips]
    right = max(bulges, default=0.0) + (0.5 if skips else 0.0)  # the bends and their labels
    width = box_w + 0.45 + right + (0.4 if notes else 0.0)
    fig = _new_figure(width, height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    # data units are inches, so boxes and bends keep their size whatever the stack's length
    left = -(0.3 + (0.4 if notes else 0.0))
    ax.set_xlim(left, left + width)
    ax.set_ylim(-height + 0.35, 0.15)
    ax.text(left + 0.05, 0.0, title, ha="left", va="center", fontsize=_FONT + 1)
    centres = []
    for i, (label, kind) in enumerate(boxes):
        y = -(i + 1) * step
        centres.append(y)
        face, edge = _STYLE[kind]
        ax.add_patch(
            FancyBboxPatch(
                (0, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor=face,
                edgecolor=edge,
                linewidth=1.0,
            )
        )
        ax.text(box_w / 2, y, label, ha="center", va="center", zorder=3)
        if i < len(notes) and notes[i]:
            ax.text(-0.1, y, notes[i], ha="right", va="center", color="#777777")
        if i:
            ax.add_patch(
                FancyArrowPatch(
                    (box_w / 2, centres[i - 1] - box_h / 2),
                    (box_w / 2, y + box_h / 2),
                    arrowstyle="-|>",
                    mutation_scale=9,
                    linewidth=0.9,
                    color="#333333",
                )
            )
    for (src, dst), bulge in zip(skips, bulges, strict=True):
        ax.add_patch(
            FancyArrowPatch(
                (box_w, centres[src]),
                (box_w, centres[dst]),
                arrowstyle="-|>",
                mutation_scale=9,
                connectionstyle=f"arc3,rad={-bend(dst - src)}",
                linewidth=0.9,
                linestyle="--",
                color="#777777",
            )
        )
        y = (centres[src] + centres[dst]) / 2
        ax.text(box_w + bulge + 0.04, y, "concat", fontsize=_EDGE_FONT, color="#777777")
    return fig


def _draw_chain(arch: Any) -> Figure:
    from nasforge.spaces.chain import FC, Conv, Pool

    boxes: list[tuple[str, str]] = [("input image", "fixed")]
    skips, index_of = [], {}
    pooled = False
    for i, layer in enumerate(arch.layers):
        if isinstance(layer, FC) and not pooled:
            boxes.append(("global avg pool", "fixed"))
            pooled = True
        index_of[i] = len(boxes)
        if isinstance(layer, Conv):
            k = layer.kernel
            boxes.append((f"conv {k}×{k} · {layer.filters} · s{layer.stride}", "layer"))
            if layer.skip is not None:
                skips.append((index_of[layer.skip], index_of[i]))
        elif isinstance(layer, Pool):
            boxes.append((f"pool {layer.kernel}×{layer.kernel} max · s2", "layer"))
        else:
            boxes.append((f"fc {layer.units}", "layer"))
    if not pooled:
        boxes.append(("global avg pool", "fixed"))
    boxes.append(("linear classifier", "fixed"))
    count = len(arch.layers)
    title = f"chain network, {count} layer{'' if count == 1 else 's'}"
    return _stack_figure(title, boxes, skips)


def _draw_mobile(arch: Any) -> Figure:
    from nasforge.spaces.mobile import (
        BASE_STAGES,
        HEAD_CHANNELS,
        STEM_CHANNELS,
        make_divisible,
    )

    boxes = [(f"stem conv 3×3 · {make_divisible(STEM_CHANNELS * arch.width)} ch", "fixed")]
    notes = [""]
    depths = arch.layers  # base depth + the stored offset, at least 1: what build makes
    for number, (stage, (_, c, _, _), n) in enumerate(
        zip(arch.stages, BASE_STAGES, depths, strict=True), start=1
    ):
        skip = "skip" if stage.skip else "no skip"
        label = (
            f"{stage.block} k{stage.kernel} · SE {stage.se:g} · {skip} · ×{n} "
            f"(n{stage.delta:+d}) · {make_divisible(c * arch.width)} ch"
        )
        boxes.append((label, "layer"))
        notes.append(f"stage {number}")
    head = make_divisible(HEAD_CHANNELS * max(1.0, arch.width))
    boxes += [(f"head conv 1×1 · {head} ch", "fixed"), ("avg pool · dropout · linear", "fixed")]
    notes += ["", ""]
    title = f"mobile network, width multiplier {arch.width:g}, {sum(depths)} blocks"
    return _stack_figure(title, boxes, notes=notes)


_DRAWERS: dict[str, Callable[[Any], Figure]] = {
    "nb201": _draw_nb201,
    "darts": _draw_darts,
    "nasnet": _draw_nasnet,
    "nb101": _draw_nb101,
    "chain": _draw_chain,
    "mobile": _draw_mobile,
}

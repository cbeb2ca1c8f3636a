"""Monte-Carlo tree search with UCT (Kocsis & Szepesvári, "Bandit based Monte-Carlo Planning",
ECML 2006), over the space's sequence of decisions, as used for NAS by Wistuba ("Finding
Competitive Network Architectures Within a Day Using UCT", 2017) and AlphaX (Wang et al. 2019).

A tree node is a prefix of decisions (NB201: ops of the first edges). Each ask:

1. **select**: from the root, while the node has all its children, go to the child maximising
   Q + c * sqrt(ln N / n), Q the child's mean reward mapped into [0, 1], as UCT's bound
   assumes. ``normalize="rank"`` (default) maps it to the fraction of all results told so far
   that it beats; ``"minmax"`` scales by the lowest and highest result. Ranks, because NB201's
   accuracies have a long tail of broken cells (10 %) that squeezes every useful difference
   into the top few hundredths of a min-max scale;
2. **expand**: add one untried child, chosen at random;
3. **rollout**: complete the remaining decisions uniformly at random; that architecture is the
   candidate (redrawn if infeasible or isomorphic to one already proposed);
4. **backup** (at ``tell``): the objective is added to every node of the selected path.

``exploration`` c is 0.4, not UCB1's sqrt(2): with ~100 evaluations and 15,625 leaves, sqrt(2)
keeps expanding near the root and searches no better than random (NB201, tuning seeds
1000-1039: sqrt(2) 93.69 / 71.52 vs 0.4 93.91 / 72.26 test accuracy on CIFAR-10 / -100).

Asynchronous workers: asked-but-untold candidates count as visits with the lowest reward seen
("virtual loss", Chaslot et al. 2008), so concurrent asks spread over the tree; the real reward
replaces it when told. A failed trial (``tell_failure``) removes its virtual loss and backs up
nothing. A fully specified leaf that was proposed, or a node whose ``max_redraws`` rollouts found
nothing new (infeasible, or isomorphic to a proposed cell), is marked exhausted, and so is a
node whose children all are: selection never enters a used-up branch. (For a node with many
completions left that is an approximation: 100 failed draws mean almost all are used.)
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from nasforge.core import Candidate, Result
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.decisions import decisions_of
from nasforge.strategies.base import Constraint, SeededStrategy

NORMALIZATIONS = ("rank", "minmax")


@dataclass
class Node:
    depth: int
    children: dict[int, Node] = field(default_factory=dict)
    visits: int = 0  # told results below this node
    total: float = 0.0  # their summed objective
    pending: int = 0  # asked, not told
    exhausted: bool = False


class MCTS(SeededStrategy):
    name = "mcts"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        constraint: Constraint | None = None,
        exploration: float = 0.4,
        normalize: str = "rank",
    ):
        if not exploration >= 0:
            raise ConfigError(f"exploration must be >= 0, got {exploration}")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(
                f"unknown normalize {normalize!r}; accepted: {', '.join(NORMALIZATIONS)}"
            )
        super().__init__(space, seed, constraint)
        self.exploration = exploration
        self.normalize = normalize
        self.told: list[float] = []  # every objective told, sorted
        self.decisions = decisions_of(space, "strategy 'mcts'")
        self.root = Node(0)
        self.low = math.inf
        self.high = -math.inf
        self.in_flight: dict[Candidate, list[Node]] = {}

    # asking ---------------------------------------------------------------------------------

    def ask(self) -> Candidate:
        steps = len(self.decisions.choices)
        while True:
            path, prefix = self._select_and_expand()
            if path is None:
                break  # every branch is used up
            for _ in range(self.max_redraws):
                rest = [int(self.rng.integers(c)) for c in self.decisions.choices[len(prefix) :]]
                arch = self.decisions.decode(prefix + rest)
                if self.feasible(arch) and arch not in self.seen:
                    self.seen.add(arch)
                    if len(prefix) == steps:
                        self._exhaust(path)  # a full leaf has a single completion: now used
                    return self._track(Candidate(arch), path)
                if len(prefix) == steps:
                    break  # a full leaf has no other completion
            self._exhaust(path)  # nothing new below it in max_redraws rollouts: treat as used up
        # the tree is used up (tiny space or strict constraint): a uniform draw, via the root
        return self._track(Candidate(self.sample_new()), [self.root])

    def _select_and_expand(self) -> tuple[list[Node] | None, list[int]]:
        node, path, prefix = self.root, [self.root], []
        while node.depth < len(self.decisions.choices):
            if node.exhausted:
                return None, []
            options = range(self.decisions.choices[node.depth])
            untried = [c for c in options if c not in node.children]
            if untried:
                choice = untried[int(self.rng.integers(len(untried)))]
                node.children[choice] = Node(node.depth + 1)
                path.append(node.children[choice])
                prefix.append(choice)
                return path, prefix
            open_children = [(c, n) for c, n in node.children.items() if not n.exhausted]
            if not open_children:
                node.exhausted = True
                return (None, []) if node is self.root else self._select_and_expand()
            choice, node = max(open_children, key=lambda item: self._uct(item[1], path[-1]))
            path.append(node)
            prefix.append(choice)
        return path, prefix

    def _uct(self, child: Node, parent: Node) -> float:
        n = child.visits + child.pending
        if n == 0:
            return math.inf
        low = self.low if math.isfinite(self.low) else 0.0
        q = self._scale((child.total + child.pending * low) / n)
        parent_n = max(1, parent.visits + parent.pending)
        return q + self.exploration * math.sqrt(math.log(parent_n) / n)

    def _scale(self, value: float) -> float:
        """A mean objective mapped into [0, 1]."""
        if len(self.told) < 2:
            return 0.5
        if self.normalize == "rank":  # the fraction of results it beats (ties count half)
            below = bisect.bisect_left(self.told, value)
            above = bisect.bisect_right(self.told, value)
            return (below + above) / (2 * len(self.told))
        spread = self.high - self.low
        return (value - self.low) / spread if spread > 0 else 0.5

    def _track(self, candidate: Candidate, path: list[Node]) -> Candidate:
        for node in path:
            node.pending += 1
        self.in_flight[candidate] = path
        return candidate

    def _exhaust(self, path: list[Node]) -> None:
        path[-1].exhausted = True
        for node in reversed(path[:-1]):
            full = len(node.children) == self.decisions.choices[node.depth]
            if full and all(child.exhausted for child in node.children.values()):
                node.exhausted = True
            else:
                break

    # telling --------------------------------------------------------------------------------

    def tell(self, candidate: Candidate, result: Result) -> None:
        super().tell(candidate, result)
        value = result.objective
        self.low, self.high = min(self.low, value), max(self.high, value)
        bisect.insort(self.told, value)
        for node in self.in_flight.pop(candidate, []):
            node.pending -= 1
            node.visits += 1
            node.total += value

    def tell_failure(self, candidate: Candidate, reason: str) -> None:
        super().tell_failure(candidate, reason)
        for node in self.in_flight.pop(candidate, []):
            node.pending -= 1

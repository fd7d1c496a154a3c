"""HDBSCAN's clusters with its minimum spanning tree built without n x n distances (pure).

HDBSCAN links customers by their mutual reachability distance,
``max(core[a], core[b], |a - b|)``, and cuts the minimum spanning tree of those distances.
scikit-learn builds that tree with Prim's algorithm over every pair of customers: 16
million distances for a 4,000-customer stability refit, ten times per run. On the few
features customers are clustered on, Boruvka's algorithm needs only each customer's
nearest neighbours, searched in a KD-tree:

* every round, each group of customers joined so far takes its lightest edge to another
  group, and all those edges join the tree (at most half as many groups remain);
* a customer's lightest edge is read from its list of nearest neighbours when the list
  proves it: any customer not on the list is at least ``beyond`` away, so an edge on the
  list lighter than that is the lightest; otherwise the KD-tree is searched further;
* ties, which mutual reachability makes common (every neighbour inside ``core[a]`` is at
  distance ``core[a]``), are broken by the customers' indices: the edge (w, lo, hi) with the
  smallest key wins, a strict order, so the groups' edges never close a cycle and the tree
  is the minimum spanning tree of that order.

The tree's weights equal Prim's (a test checks); where equal weights offer several trees,
this one may differ from Prim's. The groups below every threshold are the same either
way, but HDBSCAN's condensed tree reads the merges in order, so where several merge at one
exact distance a few border customers can fall out differently (tests compare the labels
with scikit-learn's by adjusted Rand index, and the trees' weights exactly).

``hdbscan_labels`` is ``sklearn.cluster.HDBSCAN(min_cluster_size).fit_predict`` (with
``min_samples = min_cluster_size``, excess-of-mass selection) with this tree in place of
Prim's; the condensed tree and the cluster selection are scikit-learn's own steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

# scikit-learn's own HDBSCAN steps after the spanning tree.
from sklearn.cluster._hdbscan._tree import tree_to_labels
from sklearn.cluster._hdbscan.hdbscan import _process_mst

# scikit-learn's edge record, which its condensed-tree steps read.
EDGE_DTYPE = np.dtype(
    [("current_node", np.int64), ("next_node", np.int64), ("distance", np.float64)]
)
# Neighbours first asked of the KD-tree for a customer whose list did not settle its edge,
# and the factor by which a search that did not settle it either is widened.
SEARCH_FIRST, SEARCH_WIDER = 16, 4
# Neighbours a widening search may ask for; past it, all candidates are compared in blocks
# of BLOCK_PAIRS pairs (8 bytes each).
SEARCH_MAX, BLOCK_PAIRS = 1024, 2_000_000
# Neighbours listed per customer beyond the ``min_samples`` its core distance needs: enough
# that most lightest edges are proved from the list (measured: 10 was fastest on 4,000
# customers; without them most customers need a KD-tree search).
LISTED_EXTRA = 10
# A group larger than this is searched in a KD-tree of the other customers, so its own
# members do not fill every answer.
GROUP_SEARCH_ALONE = 256
# Below this many pairs (rows x outsiders), a large group's rows are compared with every
# outsider (cdist) instead of searched in a KD-tree built for them.
PAIRS_AT_ONCE = 200_000
# The rows, then steps, of the walk that finds some edge out of a group that has none yet.
WALK_START, WALK_STEPS = 32, 3


@dataclass(frozen=True)
class Neighbourhoods:
    """Each customer's nearest other customers: ``index`` (n x L, -1 where a list is
    shorter) and ``distance`` (inf there), sorted by distance; every customer not on row
    a's list is at least ``beyond[a]`` away."""

    index: np.ndarray
    distance: np.ndarray
    beyond: np.ndarray


def hdbscan_labels(
    X: np.ndarray,
    min_cluster_size: int,
    core: np.ndarray | None = None,
    hoods: Neighbourhoods | None = None,
) -> np.ndarray:
    """HDBSCAN's labels (-1: in no dense group) with ``min_samples = min_cluster_size``.
    ``core`` and ``hoods``: core distances and neighbour lists already known (the
    stability refits read them from one shared search)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if min_cluster_size > len(X):
        raise ValueError(
            f"min_samples ({min_cluster_size}) must be at most the number of samples in X "
            f"({len(X)})"
        )
    if core is None or hoods is None:
        core, hoods = core_distances(X, min_cluster_size)
    tree = spanning_tree(X, core, hoods)
    labels, _ = tree_to_labels(_process_mst(tree), min_cluster_size, "eom", False, 0.0, None)
    return labels


def neighbour_search(X: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's ``count`` nearest customers, itself counted: (distance, index)."""
    count = min(count, len(X))
    distance, index = cKDTree(X).query(X, k=count)
    return distance.reshape(len(X), -1), index.reshape(len(X), -1)


def core_distances(
    X: np.ndarray, min_samples: int, search: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, Neighbourhoods]:
    """Each customer's core distance (to its ``min_samples``-th nearest, itself counted,
    as scikit-learn's) and neighbour list, from one KD-tree search (``search``, when
    already made with at least ``min_samples`` neighbours)."""
    distance, index = search or neighbour_search(X, min_samples + LISTED_EXTRA)
    core = np.ascontiguousarray(distance[:, min(min_samples, distance.shape[1]) - 1])
    return core, without_self(np.arange(len(X)), index, distance, distance[:, -1])


def without_self(
    rows: np.ndarray, index: np.ndarray, distance: np.ndarray, beyond: np.ndarray
) -> Neighbourhoods:
    """Lists as a KD-tree answers them (each customer among its own neighbours, usually
    first) without the customer itself."""
    itself = index == rows[:, None]
    return Neighbourhoods(np.where(itself, -1, index), np.where(itself, np.inf, distance), beyond)


def spanning_tree(X: np.ndarray, core: np.ndarray, hoods: Neighbourhoods) -> np.ndarray:
    """The minimum spanning tree of mutual reachability (n - 1 edges, EDGE_DTYPE)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = len(X)
    lists = _ListedEdges(core, hoods)
    search = _Search(X, core)
    group, groups = np.arange(n), n
    ends, weights = np.empty((0, 2), dtype=np.int64), np.empty(0)
    while groups > 1:
        weight, partner = lists.lightest(group)
        best = _lightest_per_group(group, weight, partner)
        doubtful = np.flatnonzero(lists.beyond <= weight[best][group])
        if len(doubtful):
            upper = weight[best][group[doubtful]]
            weight[doubtful], partner[doubtful] = search.lightest(doubtful, group, upper)
            best = _lightest_per_group(group, weight, partner)
        pairs = np.sort(np.column_stack([best, partner[best]]), axis=1)
        # Two groups that chose the same edge: once.
        _, first = np.unique(pairs[:, 0] * n + pairs[:, 1], return_index=True)
        joined, joined_weights = pairs[first], weight[best][first]
        merged = _merged(group, groups, joined)
        if merged.max() + 1 != groups - len(joined):  # a cycle: see _joining
            joined, joined_weights = _joining(group, joined, joined_weights)
            merged = _merged(group, groups, joined)
        ends = np.vstack([ends, joined])
        weights = np.concatenate([weights, joined_weights])
        group, groups = merged[group], int(merged.max()) + 1
    edges = np.empty(n - 1, dtype=EDGE_DTYPE)
    edges["current_node"], edges["next_node"], edges["distance"] = ends[:, 0], ends[:, 1], weights
    return edges


def _joining(group: np.ndarray, pairs: np.ndarray, weight: np.ndarray):
    """The round's edges that join groups, lightest first. Under the strict order no edge
    closes a cycle; distances computed two ways can differ in the last bit, so a cycle is
    still checked for, and its heaviest edge left out (Kruskal's rule)."""
    order = np.lexsort((pairs[:, 1], pairs[:, 0], weight))
    pairs, weight = pairs[order], weight[order]
    parent = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    keep = np.ones(len(pairs), dtype=bool)
    for i, (a, b) in enumerate(group[pairs]):
        ra, rb = root(int(a)), root(int(b))
        if ra == rb:
            keep[i] = False
        else:
            parent[ra] = rb
    return pairs[keep], weight[keep]


class _ListedEdges:
    """The edges to each customer's listed neighbours, as mutual reachability."""

    def __init__(self, core: np.ndarray, hoods: Neighbourhoods) -> None:
        listed = hoods.index >= 0
        self.index = np.where(listed, hoods.index, 0)
        # Unlisted places have distance inf, so weight inf.
        self.weight = np.maximum(core[self.index], hoods.distance)
        np.maximum(self.weight, core[:, None], out=self.weight)
        # Mutual reachability to anyone unlisted is at least this.
        self.beyond = np.maximum(hoods.beyond, core)
        # Rows whose listed neighbours are all in their own group stay so: groups only grow.
        self.open = np.flatnonzero(listed.any(axis=1))
        self.alone = True  # every customer its own group: every listed edge leaves it

    def lightest(self, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per customer, the lightest listed edge to another group (inf, -1 if none)."""
        n = len(group)
        if self.alone:
            self.alone = False
            weight = self.weight.min(axis=1)
            partner = _smallest_where(self.weight == weight[:, None], self.index, n)
            partner[~np.isfinite(weight)] = -1
            return weight, partner
        weight, partner = np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
        rows = self.open
        index = self.index[rows]
        outside = group[index] != group[rows][:, None]
        candidate = np.where(outside, self.weight[rows], np.inf)
        best = candidate.min(axis=1)
        found = np.isfinite(best)
        self.open = rows[found]
        rows, best, index, candidate = rows[found], best[found], index[found], candidate[found]
        weight[rows] = best
        partner[rows] = _smallest_where(candidate == best[:, None], index, n)
        return weight, partner


class _Search:
    """Exact lightest edges out of groups whose neighbour lists did not prove them."""

    def __init__(self, X: np.ndarray, core: np.ndarray) -> None:
        self.X, self.core = X, core
        self.tree = cKDTree(X)
        # Per customer, no outsider of its group is nearer than this (see _group_alone).
        self.floor = np.zeros(len(X))

    def lightest(
        self, rows: np.ndarray, group: np.ndarray, upper: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For the doubtful ``rows``: each row's lightest edge out of its group, or, in a
        large group, the group's lightest edge on the row it leaves from and ``upper``
        (an edge the group already has, no lighter than its lightest) on the others."""
        weight, partner = np.empty(len(rows)), np.empty(len(rows), dtype=np.int64)
        sizes = np.bincount(group)
        big = sizes[group[rows]] > GROUP_SEARCH_ALONE
        small = np.flatnonzero(~big)
        if len(small):
            # Asking for one more than the largest group's size guarantees an outsider.
            first = int(sizes[group[rows[small]]].max()) + SEARCH_FIRST
            weight[small], partner[small] = self._widening(
                rows[small], group, self.tree, np.arange(len(self.X)), first
            )
        position = np.empty(len(self.X), dtype=np.int64)
        position[rows] = np.arange(len(rows))
        for g in np.unique(group[rows[big]]):
            at = np.flatnonzero(big & (group[rows] == g))
            weight[at], partner[at] = np.inf, -1
            searched, w, p = self._group_alone(rows[at], group, g, upper[at][0])
            weight[position[searched]], partner[position[searched]] = w, p
        return weight, partner

    def _group_alone(self, rows, group, g, upper):
        """A large group's lightest edge out, on the row it leaves from. The edge is no
        heavier than ``upper`` (an edge the group has; if none, one found by a short walk
        between the two sides), so only rows with an outsider that near can leave by it
        (in a dense group, its border). Each row's nearest outsider only moves away as
        groups merge, so a distance once searched stays a floor (``self.floor``) and rows
        whose floor is beyond reach are not searched again."""
        others = np.flatnonzero(group != g)
        tree = None
        if not np.isfinite(upper):
            tree = cKDTree(self.X[others])
            upper = self._some_edge(rows, others, tree)
        # A hair over, so an edge of exactly that weight is found too (the tie-break).
        reach = np.nextafter(upper, np.inf) * (1 + 1e-9)
        rows = rows[np.maximum(self.floor[rows], self.core[rows]) <= reach]
        if len(rows) * len(others) <= PAIRS_AT_ONCE:
            weight, partner, self.floor[rows] = self._compared(rows, group, others)
            return rows, weight, partner
        weight = np.full(len(rows), np.inf)
        partner = np.full(len(rows), -1, dtype=np.int64)
        tree = tree if tree is not None else cKDTree(self.X[others])
        distance, _ = tree.query(self.X[rows], k=1, distance_upper_bound=reach)
        self.floor[rows] = np.where(np.isfinite(distance), distance, reach)
        near = np.flatnonzero(np.maximum(self.core[rows], distance) <= reach)
        weight[near], partner[near] = self._widening(rows[near], group, tree, others, SEARCH_FIRST)
        return rows, weight, partner

    def _some_edge(self, rows, others, tree) -> float:
        """The weight of some edge out of the group (an upper bound of its lightest): from
        a few rows' nearest outsiders, then a walk to the nearest pair near the best."""
        sample = rows[np.linspace(0, len(rows) - 1, min(len(rows), WALK_START)).astype(int)]
        _, at = tree.query(self.X[sample], k=1)
        weights = self._weights(sample, others[at])
        a, b = sample[weights.argmin()], others[at[weights.argmin()]]
        near = cKDTree(self.X[rows])
        for _ in range(WALK_STEPS):
            a = rows[near.query(self.X[b], k=1)[1]]
            b = others[tree.query(self.X[a], k=1)[1]]
        return float(min(weights.min(), self._weights(np.array([a]), np.array([b]))[0]))

    def _weights(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        gap = np.sqrt(((self.X[a] - self.X[b]) ** 2).sum(axis=1))
        return np.maximum(np.maximum(self.core[a], self.core[b]), gap)

    def _widening(self, rows, group, tree, members, count):
        """Each row's lightest edge to a ``members`` customer of another group: KD-tree
        searches widened until proved; past SEARCH_MAX neighbours (customers with many
        exact copies, whose edges all weigh the same), every member is compared instead,
        in blocks, so neither time nor memory grows with the square of the copies."""
        weight, partner = np.empty(len(rows)), np.empty(len(rows), dtype=np.int64)
        pending = np.arange(len(rows))
        while len(pending) and count <= SEARCH_MAX:
            count = min(count, len(members))
            w, p, proved = self._nearest(rows[pending], group, tree, members, count)
            done = proved | (count == len(members))
            weight[pending[done]], partner[pending[done]] = w[done], p[done]
            pending = pending[~done]
            count *= SEARCH_WIDER
        blocks = np.array_split(pending, max(1, len(pending) * len(members) // BLOCK_PAIRS))
        for block in blocks if len(pending) else ():
            weight[block], partner[block], _ = self._compared(rows[block], group, members)
        return weight, partner

    def _compared(self, rows, group, members):
        """The rows' lightest edges to members of other groups, from every pair, and each
        row's distance to its nearest such member."""
        gap = cdist(self.X[rows], self.X[members])
        gap[group[members] == group[rows][:, None]] = np.inf
        edge = np.maximum(np.maximum(self.core[rows][:, None], self.core[members]), gap)
        best = edge.min(axis=1)
        partner = _smallest_where(
            edge == best[:, None], np.broadcast_to(members, edge.shape), len(self.X)
        )
        return best, partner, gap.min(axis=1)

    def _nearest(self, rows, group, tree, members, count):
        distance, at = tree.query(self.X[rows], k=count)
        distance, at = distance.reshape(len(rows), -1), at.reshape(len(rows), -1)
        index = members[at]
        outside = group[index] != group[rows][:, None]
        candidate = np.where(
            outside,
            np.maximum(np.maximum(self.core[rows][:, None], self.core[index]), distance),
            np.inf,
        )
        best = candidate.min(axis=1)
        partner = _smallest_where(candidate == best[:, None], index, len(self.X))
        # Anyone further is at least the last distance away: strictly lighter is proved.
        proved = best < np.maximum(self.core[rows], distance[:, -1])
        return best, partner, proved


def _smallest_where(mask: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Per row, the smallest index where ``mask`` holds: the tie-break of equal weights
    (for a fixed customer a, the key (w, min(a, b), max(a, b)) orders partners b by b)."""
    return np.where(mask, index, n).min(axis=1)


def _lightest_per_group(group: np.ndarray, weight: np.ndarray, partner: np.ndarray):
    """Per group (in group order), the customer whose edge has the smallest key."""
    rows = np.arange(len(group))
    low, high = np.minimum(rows, partner), np.maximum(rows, partner)
    order = np.lexsort((high, low, weight, group))
    starts = np.r_[True, group[order][1:] != group[order][:-1]]
    return order[starts]


def _merged(group: np.ndarray, groups: int, joined: np.ndarray) -> np.ndarray:
    """Each group's number after the ``joined`` edges (pairs of customers) merge them."""
    a, b = group[joined[:, 0]], group[joined[:, 1]]
    graph = coo_matrix((np.ones(len(joined)), (a, b)), shape=(groups, groups))
    return connected_components(graph, directed=False)[1]

"""``outlier``: how far a row lies from the others in embedding space — or how abnormally close.

Three views of isolation, each a robust z-score (``(s - median) / (1.4826 * MAD)``), averaged
into the *far* score:

* **kNN distance** — log of the mean distance to the ``k`` graph neighbours
  (``evidence.neighbors``);
* **LOF** — the local outlier factor computed from that same graph (reachability distances
  against each neighbour's own ``k``-distance), so a sparse row inside a dense cluster stands out;
* **isolation forest** — path length in a seeded isolation forest on the embedding, fitted on a
  subsample of at most ``forest_sample`` rows; above 50,000 rows the number of trees shrinks so
  that scoring a million rows takes about two seconds.

The *crowded* score is minus the kNN-distance z-score, where that is at least 3: rows packed
far more tightly than any natural neighbourhood — clean-label poisons optimised to collide
with one target, or many injected copies — sit many robust standard deviations below the
typical distance (on breast_cancer, feature-collision poisons reach z = -9 where the clean
rows stay above -2). The score of a row is the larger of the two (``crowding=False`` keeps
only *far*).

No new neighbour graph is built: scoring is ``O(n k)`` plus the forest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from poisonguard.detectors._base import Calibration, Detector, Scores, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, View

__all__ = ["Outlier", "OutlierState", "knn_distance", "local_outlier_factor"]

_TREES = 100
_TREE_ROWS = 5_000_000  # trees x rows scored stays under this above 50,000 rows
_MIN_TREES = 10
_CROWDED_Z = 3.0


def knn_distance(distances: np.ndarray) -> np.ndarray:
    """Mean distance of each row to its graph neighbours ``(n,)``; higher = more outlying."""
    out: np.ndarray = np.asarray(distances, dtype=np.float64).mean(axis=1)
    return out


def _floor(distances: np.ndarray) -> float:
    """A tiny fraction of the typical positive distance (keeps logs and densities finite)."""
    positive = distances[distances > 0]
    return 1e-3 * (float(np.median(positive)) if positive.size else 1.0)


def local_outlier_factor(indices: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Local outlier factor ``(n,)`` from a kNN graph (Breunig et al. 2000); about 1 inside a
    cluster, higher = sparser than the neighbours. Rows at distance 0 from all their
    neighbours (exact duplicates) get a density floored by a tiny fraction of the typical
    distance, so the factor stays finite."""
    d = np.asarray(distances, dtype=np.float64)
    lrd = _densities(indices, d, d[:, -1], _floor(d))
    out: np.ndarray = lrd[indices].mean(axis=1) / lrd
    return out


def _densities(indices: np.ndarray, d: np.ndarray, k_distance: np.ndarray, eps: float) -> np.ndarray:
    """Local reachability densities of rows at distances ``d`` from fitted rows ``indices``
    whose own ``k``-distances are ``k_distance``."""
    reach = np.maximum(d, k_distance[indices])
    out: np.ndarray = 1.0 / (reach.mean(axis=1) + eps)
    return out


@dataclass(frozen=True)
class _Z:
    """A robust z-score fitted on the fitted rows (``robust_z``'s median and spread)."""

    med: float
    spread: float

    @classmethod
    def fit(cls, s: np.ndarray) -> _Z:
        med = float(np.median(s))
        spread = 1.4826 * float(np.median(np.abs(s - med)))
        if spread <= 1e-12:
            spread = float(s.std())
        return cls(med, spread)

    def __call__(self, s: np.ndarray) -> np.ndarray:
        if self.spread <= 1e-12:
            return np.zeros_like(s, dtype=np.float64)
        out: np.ndarray = (s - self.med) / self.spread
        return out


@dataclass(frozen=True)
class OutlierState:
    """What scoring new rows needs: the fitted rows' ``k``-distances and densities (LOF), the
    distance floor, each view's robust z-score, and the isolation forest."""

    floor: float
    lof_eps: float
    k_distance: np.ndarray
    lrd: np.ndarray
    z: dict[str, _Z]
    forest: Any = None


def _forest(embedding: np.ndarray, sample: int, random_state: int) -> Any:
    from sklearn.ensemble import IsolationForest

    Z = np.asarray(embedding, dtype=np.float32)
    n = len(Z)
    rng = np.random.default_rng(random_state)
    fit_rows = np.sort(rng.choice(n, size=sample, replace=False)) if n > sample else np.arange(n)
    trees = int(np.clip(_TREE_ROWS // max(n, 1), _MIN_TREES, _TREES)) if n > 50_000 else _TREES
    return IsolationForest(n_estimators=trees, max_samples=min(256, len(fit_rows)),
                           random_state=random_state).fit(Z[fit_rows])


@register
class Outlier(Detector):
    """Outlyingness in embedding space: the larger of the median robust z-score of kNN distance,
    LOF and (``forest=True``) an isolation forest, and (``crowding=True``) minus the kNN-distance
    z-score where that is at least 3. Higher = more suspicious; unbounded ("tail").

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.evidence import Evidence
    >>> ev = Evidence(load_dataset("wine"), random_state=0)
    >>> scores = Outlier().suspicion(ev)
    >>> scores.shape
    (178,)
    """

    name = "outlier"
    summary = "isolated from (or packed abnormally close to) other rows in embedding space"
    requires = ("embedding", "neighbors")
    calibration: ClassVar[Calibration] = "tail"
    answers = ("availability", "backdoor", "targeted")
    papers = (
        "Ramaswamy, Rastogi, Shim. Efficient Algorithms for Mining Outliers from Large Data "
        "Sets. SIGMOD 2000",
        "Breunig, Kriegel, Ng, Sander. LOF: Identifying Density-Based Local Outliers. "
        "SIGMOD 2000",
        "Liu, Ting, Zhou. Isolation Forest. ICDM 2008",
        "Steinhardt, Koh, Liang. Certified Defenses for Data Poisoning Attacks. NeurIPS 2017",
    )

    def __init__(self, *, forest: bool = True, forest_sample: int = 20_000,
                 crowding: bool = True) -> None:
        self.forest = forest
        self.forest_sample = forest_sample
        self.crowding = crowding

    def fit(self, evidence: Evidence) -> OutlierState:
        nb = evidence.neighbors
        d = np.asarray(nb.distances, dtype=np.float64)
        floor = _floor(knn_distance(d))
        lof_eps = _floor(d)
        lrd = _densities(nb.indices, d, d[:, -1], lof_eps)
        z = {"knn": _Z.fit(np.log(knn_distance(d) + floor)),
             "lof": _Z.fit(np.log(lrd[nb.indices].mean(axis=1) / lrd))}
        forest = None
        if self.forest and evidence.n_rows >= 8:
            forest = _forest(evidence.embedding, max(int(self.forest_sample), 2),
                             evidence.random_state)
            z["forest"] = _Z.fit(-forest.score_samples(np.asarray(evidence.embedding, np.float32)))
        return OutlierState(floor, lof_eps, d[:, -1], lrd, z, forest)

    def score(self, view: View, state: OutlierState) -> Scores:
        """The larger of the *far* (median z over the views) and *crowded* scores; the payload
        keeps each view's z-score, *far*, *crowded*, the mean neighbour distance and LOF."""
        nb = view.neighbors
        d = np.asarray(nb.distances, dtype=np.float64)
        mean_d = knn_distance(d)
        # LOF of a row against the fitted rows' densities (for fitted rows, the graph's own LOF)
        lrd = state.lrd if view.in_sample else _densities(nb.indices, d, state.k_distance,
                                                          state.lof_eps)
        lof = state.lrd[nb.indices].mean(axis=1) / lrd
        parts = {"knn": state.z["knn"](np.log(mean_d + state.floor)),
                 # LOF is a ratio of densities: its log is symmetric, and near-duplicate rows
                 # (whose densities explode) no longer give it a tail of millions of "standard
                 # deviations"
                 "lof": state.z["lof"](np.log(lof))}
        if state.forest is not None:
            emb = np.asarray(view.embedding, dtype=np.float32)
            parts["forest"] = state.z["forest"](-state.forest.score_samples(emb))
        # the median view: with three views a row must be isolated in two of them (one view
        # alone blew up on SMS spam, whose many duplicate messages make LOF's densities explode)
        far: np.ndarray = np.median(np.stack(list(parts.values()), axis=1), axis=1)
        crowded = np.full_like(far, -np.inf)
        if self.crowding:  # only the extreme lower tail: ordinary dense rows keep their far order
            # exact copies (every neighbour at distance 0) are the duplicates detector's
            # business: real text has many (SMS spam: "Sorry, I'll call later" dozens of times)
            copies = mean_d == 0
            crowded = np.where((-parts["knn"] >= _CROWDED_Z) & ~copies, -parts["knn"], -np.inf)
        return Scores(np.maximum(far, crowded), {**parts, "far": far, "crowded": crowded,
                                                 "mean_d": mean_d, "lof_value": lof,
                                                 "typical": float(np.exp(state.z["knn"].med)),
                                                 "k": nb.k})

    def components(self, evidence: Evidence) -> dict[str, np.ndarray]:
        """The robust z-score of each view of isolation, by name (``knn``, ``lof``, ``forest``)."""
        p = self.score(evidence.view(), self.fit(evidence)).payload
        return {name: p[name] for name in ("knn", "lof", "forest") if name in p}

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        p = scores.payload
        parts = {name: p[name] for name in ("knn", "lof", "forest") if name in p}
        typical = float(np.median(p["mean_d"])) if view.in_sample else p["typical"]
        out = []
        for row in np.asarray(rows, dtype=np.int64):
            ratio = p["mean_d"][row] / typical if typical > 0 else 1.0
            if p["crowded"][row] > p["far"][row]:
                out.append(f"crowded: {ratio:.2g}x the typical distance to its {p['k']} nearest "
                           f"rows in embedding space (z={-p['crowded'][row]:.1f}; collided or "
                           "copied rows)")
                continue
            views = ", ".join(f"{name} z={z[row]:.1f}" for name, z in parts.items())
            out.append(f"isolated: {ratio:.2g}x the typical distance to its {p['k']} nearest rows "
                       f"in embedding space, LOF {p['lof_value'][row]:.2f} ({views})")
        return out

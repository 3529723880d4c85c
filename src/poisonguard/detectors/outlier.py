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

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from poisonguard.detectors._base import Calibration, Detector, register
from poisonguard.detectors._ensemble import robust_z as _robust_z

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence

__all__ = ["Outlier", "knn_distance", "local_outlier_factor"]

_TREES = 100
_TREE_ROWS = 5_000_000  # trees x rows scored stays under this above 50,000 rows
_MIN_TREES = 10
_CROWDED_Z = 3.0


def knn_distance(distances: np.ndarray) -> np.ndarray:
    """Mean distance of each row to its graph neighbours ``(n,)``; higher = more outlying."""
    out: np.ndarray = np.asarray(distances, dtype=np.float64).mean(axis=1)
    return out


def _log_knn(distances: np.ndarray) -> np.ndarray:
    d = knn_distance(distances)
    positive = d[d > 0]
    floor = 1e-3 * (float(np.median(positive)) if positive.size else 1.0)
    out: np.ndarray = np.log(d + floor)
    return out


def local_outlier_factor(indices: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Local outlier factor ``(n,)`` from a kNN graph (Breunig et al. 2000); about 1 inside a
    cluster, higher = sparser than the neighbours. Rows at distance 0 from all their
    neighbours (exact duplicates) get a density floored by a tiny fraction of the typical
    distance, so the factor stays finite."""
    d = np.asarray(distances, dtype=np.float64)
    k_distance = d[:, -1]
    reach = np.maximum(d, k_distance[indices])
    positive = d[d > 0]
    eps = 1e-3 * (float(np.median(positive)) if positive.size else 1.0)
    lrd = 1.0 / (reach.mean(axis=1) + eps)
    out: np.ndarray = lrd[indices].mean(axis=1) / lrd
    return out


def _forest_score(embedding: np.ndarray, sample: int, random_state: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    Z = np.asarray(embedding, dtype=np.float32)
    n = len(Z)
    rng = np.random.default_rng(random_state)
    fit_rows = np.sort(rng.choice(n, size=sample, replace=False)) if n > sample else np.arange(n)
    trees = int(np.clip(_TREE_ROWS // max(n, 1), _MIN_TREES, _TREES)) if n > 50_000 else _TREES
    forest = IsolationForest(n_estimators=trees, max_samples=min(256, len(fit_rows)),
                             random_state=random_state).fit(Z[fit_rows])
    out: np.ndarray = -forest.score_samples(Z)
    return out


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

    def components(self, evidence: Evidence) -> dict[str, np.ndarray]:
        """The robust z-score of each view of isolation, by name (``knn``, ``lof``, ``forest``)."""
        nb = evidence.neighbors
        out = {"knn": _robust_z(_log_knn(nb.distances)),
               # LOF is a ratio of densities: its log is symmetric, and near-duplicate rows (whose
               # densities explode) no longer give it a tail of millions of "standard deviations"
               "lof": _robust_z(np.log(local_outlier_factor(nb.indices, nb.distances)))}
        if self.forest and evidence.n_rows >= 8:
            sample = max(int(self.forest_sample), 2)
            out["forest"] = _robust_z(_forest_score(evidence.embedding, sample,
                                                    evidence.random_state))
        return out

    def _far_crowded(self, evidence: Evidence) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        parts = self.components(evidence)
        # the median view: with three views a row must be isolated in two of them (one view
        # alone blew up on SMS spam, whose many duplicate messages make LOF's densities explode)
        far: np.ndarray = np.median(np.stack(list(parts.values()), axis=1), axis=1)
        crowded = np.full_like(far, -np.inf)
        if self.crowding:  # only the extreme lower tail: ordinary dense rows keep their far order
            # exact copies (every neighbour at distance 0) are the duplicates detector's business:
            # real text has many (SMS spam: "Sorry, I'll call later" dozens of times)
            copies = knn_distance(evidence.neighbors.distances) == 0
            crowded = np.where((-parts["knn"] >= _CROWDED_Z) & ~copies, -parts["knn"], -np.inf)
        return parts, far, crowded

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        """The larger of the *far* (mean z over the views) and *crowded* scores; higher = more
        suspicious."""
        _, far, crowded = self._far_crowded(evidence)
        out: np.ndarray = np.maximum(far, crowded)
        return out

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        parts, far, crowded = self._far_crowded(evidence)
        nb = evidence.neighbors
        mean_d = knn_distance(nb.distances)
        typical = float(np.median(mean_d))
        lof = local_outlier_factor(nb.indices, nb.distances)
        out = []
        for row in np.asarray(rows, dtype=np.int64):
            ratio = mean_d[row] / typical if typical > 0 else 1.0
            if crowded[row] > far[row]:
                out.append(f"crowded: {ratio:.2g}x the typical distance to its {nb.k} nearest rows "
                           f"in embedding space (z={-crowded[row]:.1f}; collided or copied rows)")
                continue
            views = ", ".join(f"{name} z={z[row]:.1f}" for name, z in parts.items())
            out.append(f"isolated: {ratio:.2g}x the typical distance to its {nb.k} nearest rows in "
                       f"embedding space, LOF {lof[row]:.2f} ({views})")
        return out

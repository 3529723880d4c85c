"""Neural Cleanse (Wang et al., IEEE S&P 2019): is one class reachable by a far smaller trigger
than the others?

For every class ``t`` the audit reverse-engineers the smallest trigger, a mask ``m`` over the
input positions and a pattern ``p`` (``x' = (1 - m) x + m p``), that sends clean inputs of the
other classes to ``t``. A backdoor target needs a much smaller mask than a natural class; the
anomaly index (median absolute deviation of the mask norms over the classes) names it.

Two searches, the same decision rule:

* **gradient** (the model has a torch module): ``m`` and ``p`` in tanh space, Adam on
  cross-entropy to ``t`` plus ``cost`` times the mask's mean, ``cost`` adapted as in the paper
  (zero until the attack first succeeds, then up by ``cost_multiplier`` after ``patience``
  rounds at the success rate, down by its 1.5th power after ``patience`` rounds below);
  the norm is the mask's L1 norm (positions; a mask is shared by the channels of a pixel).
* **query** (any ``predict_proba``: scikit-learn, ONNX): a greedy search over feature-subset
  triggers, each step setting the one more feature, to one of a few candidate values, that
  flips the most inputs to ``t``; the norm is the number of features needed to reach the
  success rate, interpolated between steps (see :func:`query_trigger`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from poisonguard.audits._base import Audit, AuditedModel, AuditReport, register
from poisonguard.dataset import Dataset, Modality
from poisonguard.errors import InputError

__all__ = ["NeuralCleanse", "anomaly_index", "query_trigger"]

_MODES = ("auto", "gradient", "query")
#: Candidate values of a feature in the query search: the clean sample's quantiles, and half
#: the clean range beyond each end (a trigger usually takes a value clean data never takes).
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
_MAD = 1.4826  # makes the MAD a consistent estimator of a normal standard deviation


def anomaly_index(norms: Any) -> np.ndarray:
    """Wang et al.'s anomaly index of each class's trigger norm: ``(median - norm) / (1.4826
    MAD)`` for norms below the median, 0 for the others (a large trigger is no backdoor).
    Higher is more suspicious; the paper flags a class at 2 or more. The MAD is floored at
    1e-3 of the median so that tied norms give a large finite index rather than infinity.

    >>> anomaly_index([10.0, 11.0, 9.0, 10.5, 2.0]).round(2)
    array([0.  , 0.  , 0.67, 0.  , 5.4 ])
    """
    arr = np.asarray(norms, dtype=np.float64)
    med = float(np.median(arr))
    mad = max(_MAD * float(np.median(np.abs(arr - med))), 1e-3 * abs(med), 1e-12)
    out: np.ndarray = np.clip((med - arr) / mad, 0.0, None)
    return out


@dataclass(frozen=True)
class _Reversed:
    mask: np.ndarray  # input shape (broadcast over channels), in [0, 1]
    pattern: np.ndarray  # input shape
    norm: float
    success: float


def query_trigger(predict_proba: Any, X: np.ndarray, target: int, candidates: list[np.ndarray],
                  *, success: float, max_features: int, max_scan: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Greedy feature-subset trigger sending rows ``X`` (``(n, d)``) to class code ``target``.

    Each step tries every remaining feature (a seeded subset of ``max_scan`` of them when there
    are more) at each of its ``candidates[j]`` values on top of the features already set, and
    keeps the one that flips the most rows to ``target`` (ties: the higher mean probability of
    ``target``); it stops at ``success`` or after ``max_features`` features. Returns ``(mask,
    pattern, norm, flip rate)``: ``norm`` is the number of features at which the flip rate
    reaches ``success``, interpolated linearly between steps, or, when it never does,
    ``max_features * success / rate`` (at least ``max_features``), capped at ``d``.
    """
    n, d = X.shape
    current = X.copy()
    chosen: list[int] = []
    values: list[float] = []
    rates = [0.0]
    for _ in range(min(max_features, d)):
        free = np.setdiff1d(np.arange(d), chosen)
        if len(free) > max_scan:
            free = np.sort(rng.choice(free, max_scan, replace=False))
        trials = [(j, v) for j in free for v in candidates[j]]
        batch = np.repeat(current[None], len(trials), axis=0)
        for k, (j, v) in enumerate(trials):
            batch[k, :, j] = v
        proba = np.asarray(predict_proba(batch.reshape(-1, d))).reshape(len(trials), n, -1)
        flips = (proba.argmax(axis=2) == target).mean(axis=1)
        best = int(np.lexsort((-proba[:, :, target].mean(axis=1), -flips))[0])
        j, v = trials[best]
        chosen.append(int(j))
        values.append(float(v))
        current[:, j] = v
        rates.append(float(flips[best]))
        if rates[-1] >= success:
            break
    mask, pattern = np.zeros(d), np.zeros(d)
    mask[chosen], pattern[chosen] = 1.0, values
    k = len(rates) - 1
    if rates[-1] >= success:
        prev = rates[-2]
        norm = (k - 1) + (success - prev) / max(rates[-1] - prev, 1e-12)
    else:
        norm = min(float(d), max(float(max_features), max_features * success / max(rates[-1], 1e-3)))
    return mask, pattern, float(norm), rates[-1]


@register
class NeuralCleanse(Audit):
    """Neural Cleanse: suspicious when the class with the smallest reverse-engineered trigger
    has an anomaly index of at least ``threshold`` (2, the paper's rule); ``score`` is that
    index (higher is more suspicious). ``per_class`` holds each class's ``mask_l1`` (the norm:
    mask L1 or features set), ``anomaly_index`` and the recovered trigger's
    ``attack_success`` on the clean inputs of other classes; ``trigger`` is the ``mask`` and
    ``pattern`` (input shape) of the most anomalous class, named in
    ``details["trigger_class"]``, also when the verdict is not suspicious.

    Parameters
    ----------
    mode : {"auto", "gradient", "query"}
        ``auto``: gradient when the model has a torch module, query otherwise.
    n_samples : int
        Clean inputs used (a seeded subset of the sample when it is larger).
    steps, batch_size, lr, init_cost, cost_multiplier, patience, round_steps
        Gradient search: Adam steps per class, mini-batch, learning rate, the cost on the
        mask's mean once the attack first succeeds (the paper's 1e-3 on the L1 sum of a
        32 x 32 mask), its multiplier, rounds before the cost moves, steps per round.
    success : float
        The attack success a recovered trigger must reach (the paper's 0.99).
    max_features, max_scan
        Query search: the most features a trigger may set, the most features tried per step.
    threshold : float
        Anomaly index at which the model is called suspicious.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.audits._zoo import make_case
    >>> from poisonguard.datasets import make_tabular
    >>> case = make_case(make_tabular(n_rows=300), model="hgb", rate=0.0, n_clean=60)
    >>> report = NeuralCleanse(max_features=3).audit(case.model, case.clean,
    ...                                              rng=np.random.default_rng(0))
    >>> report.details["mode"], len(report.per_class)
    ('query', 2)
    """

    name: ClassVar[str] = "neural-cleanse"
    modalities: ClassVar[tuple[Modality, ...]] = ("tabular", "image")
    summary: ClassVar[str] = "reverse-engineers each class's smallest trigger; flags an outlier"

    def __init__(self, *, mode: str = "auto", n_samples: int = 200, steps: int = 300,
                 batch_size: int = 128, lr: float = 0.1, init_cost: float = 1.0,
                 cost_multiplier: float = 1.5, patience: int = 5, round_steps: int = 10,
                 success: float = 0.99, max_features: int = 8, max_scan: int = 256,
                 beyond: float = 0.5, threshold: float = 2.0) -> None:
        if mode not in _MODES:
            raise InputError(f"'mode' must be one of {', '.join(_MODES)} (got {mode!r})")
        for key, value in (("n_samples", n_samples), ("steps", steps), ("batch_size", batch_size),
                           ("patience", patience), ("round_steps", round_steps),
                           ("max_features", max_features), ("max_scan", max_scan)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"'{key}' must be an integer of at least 1 (got {value!r})")
        if not 0.0 < success <= 1.0:
            raise InputError(f"'success' must be in (0, 1] (got {success!r})")
        if not cost_multiplier > 1.0:
            raise InputError(f"'cost_multiplier' must be above 1 (got {cost_multiplier!r})")
        if not beyond >= 0:
            raise InputError(f"'beyond' must be at least 0 (got {beyond!r})")
        for key, real in (("lr", lr), ("init_cost", init_cost), ("threshold", threshold)):
            if not real > 0:
                raise InputError(f"'{key}' must be positive (got {real!r})")
        self.mode = mode
        self.n_samples = n_samples
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.init_cost = init_cost
        self.cost_multiplier = cost_multiplier
        self.patience = patience
        self.round_steps = round_steps
        self.success = success
        self.max_features = max_features
        self.max_scan = max_scan
        self.beyond = beyond
        self.threshold = threshold

    def check(self, model: AuditedModel, clean: Dataset) -> None:
        super().check(model, clean)
        if self.mode == "gradient" and model.module is None:
            raise InputError(f"audit {self.name} with mode='gradient' needs a torch model; this "
                             "model is query-only (use mode='query' or 'auto')")
        if clean.is_frame:
            raise InputError(f"audit {self.name} needs numeric inputs; the clean sample is a "
                             "table with non-numeric columns")

    def audit(self, model: AuditedModel, clean: Dataset, *,
              rng: np.random.Generator) -> AuditReport:
        """Reverse-engineer a trigger per class and flag an outlier (see the class)."""
        start = time.perf_counter()
        self.check(model, clean)
        X = np.asarray(clean.X, dtype=np.float64)
        if X.shape[1:] != tuple(model.input_shape):
            raise InputError(f"the clean sample's inputs have shape {X.shape[1:]} but the model "
                             f"takes {tuple(model.input_shape)}")
        if len(X) > self.n_samples:
            X = X[np.sort(rng.choice(len(X), self.n_samples, replace=False))]
        mode = self.mode if self.mode != "auto" else (
            "gradient" if model.module is not None else "query")
        predicted = np.asarray(model.predict_proba(X)).argmax(axis=1)
        seeds = rng.integers(2**31, size=model.n_classes)
        found: list[_Reversed | None] = []
        for t in range(model.n_classes):
            others = X[predicted != t]
            if len(others) == 0:
                found.append(None)
                continue
            search = self._gradient if mode == "gradient" else self._query
            found.append(search(model, X, others, t, np.random.default_rng(int(seeds[t]))))
        return self._report(model, found, mode, len(X), time.perf_counter() - start)

    # ------------------------------------------------------------------ the two searches
    def _gradient(self, model: AuditedModel, X: np.ndarray, others: np.ndarray, t: int,
                  rng: np.random.Generator) -> _Reversed:
        from poisonguard.models.cnn import require_torch

        torch = require_torch()
        torch.manual_seed(int(rng.integers(2**31)))
        shape = X.shape[1:]
        image = model.modality == "image"
        # a pixel's channels share one mask entry: (h, w) or (h, w, 1) for channels-last images
        mask_shape = (*shape[:2], 1) if image and len(shape) == 3 else shape
        lo, hi = _value_range(X, image)
        lo_t, span = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi - lo, dtype=torch.float32)

        def raw(size: tuple[int, ...]) -> Any:
            start = np.arctanh((rng.random(size) - 0.5) * (2 - 1e-6))
            return torch.tensor(start, dtype=torch.float32, requires_grad=True)

        m_raw, p_raw = raw(mask_shape), raw(shape)
        opt = torch.optim.Adam([m_raw, p_raw], lr=self.lr, betas=(0.5, 0.9))
        data = torch.from_numpy(others.astype(np.float32))
        rounds = -(-self.steps * self.batch_size // len(others))  # epochs over the inputs
        order = torch.from_numpy(np.concatenate([rng.permutation(len(others)) for _ in range(rounds)]))
        target = torch.full((self.batch_size,), t, dtype=torch.long)
        module = model.module
        cost, up, down, hits = 0.0, 0, 0, 0.0
        best: tuple[float, Any, Any] | None = None
        for step in range(self.steps):
            batch = data[order[step * self.batch_size:(step + 1) * self.batch_size]]
            mask = (torch.tanh(m_raw) + 1) / 2
            pattern = lo_t + span * (torch.tanh(p_raw) + 1) / 2
            logits = module((1 - mask) * batch + mask * pattern)
            loss = torch.nn.functional.cross_entropy(logits, target[:len(batch)]) + cost * mask.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            hits += float((logits.argmax(dim=1) == t).float().mean())
            if (step + 1) % self.round_steps:
                continue
            rate, hits = hits / self.round_steps, 0.0
            l1 = float(mask.detach().sum())
            if rate >= self.success and (best is None or l1 < best[0]):
                best = (l1, mask.detach().clone(), pattern.detach().clone())
            if cost == 0.0:
                if rate >= self.success:
                    cost, up, down = self.init_cost, 0, 0
                continue
            up, down = (up + 1, 0) if rate >= self.success else (0, down + 1)
            if up >= self.patience:
                cost, up = cost * self.cost_multiplier, 0
            elif down >= self.patience:
                cost, down = cost / self.cost_multiplier**1.5, 0
        if best is None:  # never reached the success rate: the last trigger, its norm as is
            mask = (torch.tanh(m_raw) + 1) / 2
            pattern = (lo_t + span * (torch.tanh(p_raw) + 1) / 2).detach()
            best = (float(mask.detach().sum()), mask.detach(), pattern)
        _, m, p = best
        with torch.no_grad():
            flips = module((1 - m) * data + m * p).argmax(dim=1) == t
        m_full = np.broadcast_to(m.numpy().astype(np.float64), shape).copy()
        return _Reversed(m_full, p.numpy().astype(np.float64), best[0], float(flips.float().mean()))

    def _query(self, model: AuditedModel, X: np.ndarray, others: np.ndarray, t: int,
               rng: np.random.Generator) -> _Reversed:
        shape = X.shape[1:]
        flat = X.reshape(len(X), -1)
        lo, hi = flat.min(axis=0), flat.max(axis=0)
        quantiles = np.quantile(flat, QUANTILES, axis=0)
        beyond = np.stack([lo - self.beyond * (hi - lo), hi + self.beyond * (hi - lo)])
        grid = np.concatenate([quantiles, beyond])
        candidates = [np.unique(grid[:, j]) for j in range(flat.shape[1])]

        def proba(rows: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict_proba(rows.reshape(-1, *shape)))

        mask, pattern, norm, rate = query_trigger(
            proba, others.reshape(len(others), -1), t, candidates, success=self.success,
            max_features=self.max_features, max_scan=self.max_scan, rng=rng)
        return _Reversed(mask.reshape(shape), pattern.reshape(shape), norm, rate)

    # ------------------------------------------------------------------------ the verdict
    def _report(self, model: AuditedModel, found: list[_Reversed | None], mode: str,
                n_used: int, seconds: float) -> AuditReport:
        classes = np.asarray(model.classes)
        usable = [i for i, r in enumerate(found) if r is not None]
        notes: list[str] = []
        if len(usable) < 3:
            notes.append(f"only {len(usable)} classes to compare: the anomaly index of the "
                         "smaller of two norms is always 0.67, so the rule cannot fire")
        norms = np.array([found[i].norm for i in usable])  # type: ignore[union-attr]
        index = np.zeros(len(found))
        index[usable] = anomaly_index(norms) if len(usable) else 0.0
        per_class = []
        for i, r in enumerate(found):
            per_class.append({"class": _plain(classes[i]),
                              "mask_l1": None if r is None else round(r.norm, 4),
                              "anomaly_index": round(float(index[i]), 4),
                              "attack_success": None if r is None else round(r.success, 4)})
        top = int(np.argmax(index))
        score = float(index[top])
        suspicious = score >= self.threshold
        chosen = found[top]
        trigger = {} if chosen is None else {"mask": chosen.mask, "pattern": chosen.pattern}
        if any(r is None for r in found):
            notes.append("classes the model never predicts on the clean sample were skipped")
        details = {"mode": mode, "n_samples": n_used, "trigger_class": _plain(classes[top]),
                   "median_norm": round(float(np.median(norms)), 4) if len(norms) else None,
                   "norm": "mask L1 (positions)" if mode == "gradient" else "features set"}
        return AuditReport(self.name, suspicious, score, self.threshold,
                           target=classes[top] if suspicious else None,
                           per_class=tuple(per_class), trigger=trigger, details=details,
                           notes=tuple(notes), seconds=seconds)


def _value_range(X: np.ndarray, image: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where a pattern may take values: the clean sample's pixel range for images; each
    feature's range widened by half of it on both sides otherwise."""
    if image:
        return np.asarray(X.min()), np.asarray(X.max())
    lo, hi = X.min(axis=0), X.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return lo - width / 2, hi + width / 2


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label

"""``self_test``: what the scan can and cannot see *on this data*.

Canaries from our own attack suite (random label flips, class-pair flips, the modality's default
backdoor, a subpopulation attack; each on ``rate`` of the rows) are planted one after another
into a copy of the data, the same scan runs on the copy, and each family's canaries are scored:
the share the scan flags (recall), the AUROC of the combined score against the rows no family
touched, and the share of those untouched rows that were flagged (false-positive rate; it counts
any real poison already in the data as false, so it errs high). Nothing planted ever reaches the
caller's own scan: the copy is scanned and thrown away.

A family whose attack cannot run on the data (a class too small for a class-pair flip, say) is
reported with the reason instead of numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

if TYPE_CHECKING:
    from poisonguard.attacks import Attack

__all__ = ["FAMILIES", "SelfTest", "SelfTestRow", "self_test"]


def _flips(rate: float) -> Attack:
    from poisonguard.attacks import LabelFlip

    return LabelFlip(strategy="random", rate=rate)


def _class_flips(rate: float, dataset: Dataset) -> Attack:
    from poisonguard.attacks import LabelFlip

    y = np.asarray(dataset.y)
    sizes = np.array([(y == c).sum() for c in dataset.classes])
    order = np.argsort(-sizes, kind="stable")  # largest class into the second largest
    source = dataset.classes[int(order[0])]
    target = dataset.classes[int(order[min(1, len(order) - 1)])]
    count = max(1, min(round(rate * dataset.n_rows), int(sizes[order[0]]) // 2))
    return LabelFlip(strategy="class", source_class=source, target_class=target, count=count)


def _backdoor(rate: float) -> Attack:
    from poisonguard.attacks import Backdoor

    return Backdoor(rate=rate)


def _subpopulation(rate: float) -> Attack:
    from poisonguard.attacks import Subpopulation

    return Subpopulation(rate=rate)


# family name -> (what it plants, factory(rate, dataset))
FAMILIES: dict[str, tuple[str, Callable[[float, Dataset], Attack]]] = {
    "random flips": ("label-flip, strategy random", lambda r, d: _flips(r)),
    "class-pair flips": ("label-flip, strategy class (largest class)", _class_flips),
    "backdoor": ("backdoor, the modality's default trigger", lambda r, d: _backdoor(r)),
    "subpopulation": ("subpopulation, a feature-space cluster", lambda r, d: _subpopulation(r)),
}


@dataclass(frozen=True)
class SelfTestRow:
    """One family's canaries: how many were planted, the share flagged (``recall``) and the
    AUROC of the combined score against untouched rows; ``skipped`` says why a family did not
    run (its numbers are then NaN)."""

    family: str
    attack: str
    planted: int
    recall: float
    auroc: float
    skipped: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes ``None``)."""
        def num(v: float) -> float | None:
            return None if v != v else round(float(v), 4)

        return {"family": self.family, "attack": self.attack, "planted": self.planted,
                "recall": num(self.recall), "auroc": num(self.auroc), "skipped": self.skipped}


@dataclass(frozen=True)
class SelfTest:
    """The self-test: one row per family, the false-positive rate on untouched rows, the
    per-family ``rate`` planted, the rows of the copy and the seconds it took."""

    rows: tuple[SelfTestRow, ...]
    false_positive_rate: float
    rate: float
    copy_rows: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"rate": self.rate, "copy_rows": self.copy_rows,
                "false_positive_rate": round(float(self.false_positive_rate), 4),
                "seconds": round(float(self.seconds), 2),
                "families": [r.to_dict() for r in self.rows]}


def _plant(dataset: Dataset, rate: float, random_state: int) -> tuple[Dataset, np.ndarray,
                                                                       dict[str, str]]:
    """Apply every family in turn; ``family[i]`` is the index of the family that last touched
    row ``i`` of the copy (-1: untouched)."""
    rng = np.random.default_rng(random_state)
    current = dataset
    family = np.full(dataset.n_rows, -1, dtype=np.int64)
    skipped: dict[str, str] = {}
    for k, (name, (_, make)) in enumerate(FAMILIES.items()):
        try:
            res = make(rate, current).poison(current, rng=rng)
        except InputError as exc:
            skipped[name] = str(exc)
            continue
        origin = np.asarray(res.source_index, dtype=np.int64)
        carried = np.where(origin >= 0, family[np.clip(origin, 0, None)], -1)
        carried[np.asarray(res.mask, dtype=bool)] = k
        current, family = res.dataset, carried
    return current, family, skipped


def self_test(dataset: Dataset, *, rate: float = 0.02, random_state: int = 0,
              scan_options: dict[str, Any] | None = None) -> SelfTest:
    """Plant canaries of every family in :data:`FAMILIES` (``rate`` of the rows each) into a copy
    of ``dataset``, scan the copy with ``scan_options`` (the keyword arguments of
    :func:`poisonguard.scan.scan`) and measure each family (see the module docstring).

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> result = self_test(load_dataset("wine"), rate=0.05, random_state=0)
    >>> [row.family for row in result.rows]
    ['random flips', 'class-pair flips', 'backdoor', 'subpopulation']
    """
    from poisonguard.evaluation.metrics import detection_metrics
    from poisonguard.scan import scan

    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 < float(rate) <= 0.2:
        raise InputError(f"'rate' of the self-test must be in (0, 0.2] (got {rate!r})")
    options = dict(scan_options or {})
    for key in ("evidence", "budget", "random_state"):
        if key in options:
            raise InputError(f"self_test runs its own scan; '{key}' cannot be passed to it")
    start = time.perf_counter()
    copy, family, skipped = _plant(dataset, rate, random_state)
    report = scan(copy, random_state=random_state, **options)
    untouched = family < 0
    flagged = report.flagged
    rows = []
    for k, (name, (attack, _)) in enumerate(FAMILIES.items()):
        mine = family == k
        if name in skipped or not mine.any():
            rows.append(SelfTestRow(name, attack, 0, float("nan"), float("nan"),
                                    skipped.get(name, "no row was planted")))
            continue
        keep = mine | untouched
        auroc = detection_metrics(mine[keep], report.scores[keep], None)["auroc"]
        rows.append(SelfTestRow(name, attack, int(mine.sum()), float(flagged[mine].mean()),
                                float(auroc)))
    fpr = float(flagged[untouched].mean()) if untouched.any() else float("nan")
    return SelfTest(rows=tuple(rows), false_positive_rate=fpr, rate=float(rate),
                    copy_rows=copy.n_rows, seconds=time.perf_counter() - start)

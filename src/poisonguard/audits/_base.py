"""The audit contract: was a model that is already trained poisoned?

An audit looks at a trained model through an :class:`AuditedModel` (class probabilities for
inputs, and a differentiable torch module when there is one) and at a small clean sample of the
data it should work on, and answers in an :class:`AuditReport`: is the model suspicious, which
class is the suspected backdoor target, how strongly, and what trigger it recovered.

Audits are registered by name in :data:`AUDITS` (``poisonguard audits`` lists them) and built
with :func:`get_audit`. An audit never trains or changes the model it audits; every random
choice comes from the ``rng`` it is given, so the same model, sample and seed give the same
report.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from poisonguard._registry import Registry
from poisonguard.dataset import Dataset, Modality
from poisonguard.errors import InputError

__all__ = ["AUDITS", "Audit", "AuditReport", "AuditedModel", "get_audit", "register"]

AUDITS: Registry[type[Audit]] = Registry("audit")
"""Every audit class by name (see :class:`~poisonguard._registry.Registry`)."""


@dataclass(frozen=True)
class AuditedModel:
    """A trained classifier as an audit sees it.

    ``predict_proba(X)`` maps a batch of inputs in the model's own input space (``(n,
    *input_shape)`` float arrays for tabular and image models; a 1-D object array of strings for
    text models) to ``(n, len(classes))`` probabilities. ``module``, when set, is a
    ``torch.nn.Module`` in eval mode mapping a float tensor of the same inputs to logits (what
    gradient-based audits use); ``None`` for query-only models (ONNX, scikit-learn, any object
    with ``predict_proba``). ``source`` says where it came from (a path, or ``"python"``).
    """

    predict_proba: Callable[[Any], np.ndarray]
    classes: np.ndarray
    modality: Modality
    input_shape: tuple[int, ...]
    module: Any = None
    source: str = "python"
    feature_names: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        labels: np.ndarray = np.asarray(self.classes)[np.argmax(self.predict_proba(X), axis=1)]
        return labels


@dataclass(frozen=True)
class AuditReport:
    """What an audit found.

    ``suspicious``: the audit's verdict at its own decision rule; ``score``: how strongly (higher
    is more suspicious; ``threshold`` is the rule's cut on it, so ``suspicious == score >=
    threshold``); ``target``: the suspected backdoor target class (None when not suspicious or
    the audit cannot say); ``per_class``: one record per class with the audit's statistics;
    ``trigger``: the recovered trigger's arrays (e.g. ``mask`` and ``pattern`` in input shape),
    empty when none; ``details``: anything else a reader needs (JSON-ready values only).
    """

    audit: str
    suspicious: bool
    score: float
    threshold: float
    target: Any = None
    per_class: tuple[Mapping[str, Any], ...] = ()
    trigger: Mapping[str, np.ndarray] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report (the trigger as its shapes; arrays are saved apart)."""
        target = self.target.item() if isinstance(self.target, np.generic) else self.target
        return {"audit": self.audit, "suspicious": bool(self.suspicious),
                "score": float(self.score), "threshold": float(self.threshold),
                "target": target, "per_class": [dict(r) for r in self.per_class],
                "trigger": {k: list(np.shape(v)) for k, v in self.trigger.items()},
                "details": dict(self.details), "notes": list(self.notes),
                "seconds": round(float(self.seconds), 4)}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON atomically."""
        from poisonguard.io import write_text

        return write_text(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")


class Audit(ABC):
    """A model audit: parameters in ``__init__`` (checked there), work in :meth:`audit`.

    ``modalities`` lists the data an audit handles; ``needs_module`` is True when it needs a
    torch module (gradients) and cannot run query-only.
    """

    name: ClassVar[str]
    modalities: ClassVar[tuple[Modality, ...]] = ("tabular", "image", "text")
    needs_module: ClassVar[bool] = False

    def check(self, model: AuditedModel, clean: Dataset) -> None:
        """Refuse, in one line, a model or sample this audit cannot take."""
        if model.modality not in self.modalities:
            raise InputError(f"audit {self.name} does not handle {model.modality} models "
                             f"(it handles {', '.join(self.modalities)})")
        if self.needs_module and model.module is None:
            raise InputError(f"audit {self.name} needs a torch model (gradients); this model is "
                             "query-only")
        if clean.modality != model.modality:
            raise InputError(f"the clean sample is {clean.modality} data but the model takes "
                             f"{model.modality} inputs")

    @abstractmethod
    def audit(self, model: AuditedModel, clean: Dataset, *,
              rng: np.random.Generator) -> AuditReport:
        """Audit ``model`` with the ``clean`` sample."""


def register(cls: type[Audit]) -> type[Audit]:
    """Class decorator adding an audit to :data:`AUDITS` under its ``name``."""
    return AUDITS.register(cls)


def get_audit(name: str, **params: Any) -> Audit:
    """An audit instance by name; unknown names are an error listing the known ones."""
    return AUDITS.get(name)(**params)

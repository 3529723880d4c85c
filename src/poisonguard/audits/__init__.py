"""Model audits: was a trained model poisoned? (Neural Cleanse, STRIP, ...)

``get_audit(name, **params).audit(model, clean, rng=rng) -> AuditReport``; ``AUDITS`` lists them.
"""

from __future__ import annotations

from poisonguard.audits._base import AUDITS, Audit, AuditedModel, AuditReport, get_audit, register
from poisonguard.audits.load import as_audited, inputs_for, load_audited
from poisonguard.audits.neural_cleanse import NeuralCleanse
from poisonguard.audits.strip import Strip, StripFilter, StripVerdict

__all__ = ["AUDITS", "Audit", "AuditReport", "AuditedModel", "NeuralCleanse", "Strip", "StripFilter",
           "StripVerdict", "as_audited", "get_audit", "inputs_for", "load_audited", "register"]

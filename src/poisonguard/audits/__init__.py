"""Model audits: was a trained model poisoned? (Neural Cleanse, STRIP, ...)

``get_audit(name, **params).audit(model, clean, rng=rng) -> AuditReport``; ``AUDITS`` lists them.
"""

from __future__ import annotations

from poisonguard.audits._base import AUDITS, Audit, AuditedModel, AuditReport, get_audit, register

__all__ = ["AUDITS", "Audit", "AuditReport", "AuditedModel", "get_audit", "register"]

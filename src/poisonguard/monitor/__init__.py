"""Monitoring: a reference's profile, drift checks of new batches, their history, canaries.

``Profile.fit(reference)`` precomputes the reference's statistics once (plain JSON, never a
pickle); ``DriftMonitor(...).check(profile, batch)`` tests a batch and returns a
:class:`DriftReport`; :class:`History` stores every check (SQLite, or PostgreSQL through
SQLAlchemy); :class:`CanaryMonitor` tracks a reference-trained model's accuracy on each
labelled batch. Nothing heavy is imported until it is used.
"""

from poisonguard.monitor.canary import CanaryMonitor, CanaryResult
from poisonguard.monitor.drift import DriftMonitor, DriftReport, DriftTest, adjust_p_values
from poisonguard.monitor.history import History, HistoryRow, LabelShare, TrendPoint
from poisonguard.monitor.profile import ColumnProfile, Profile

__all__ = ["CanaryMonitor", "CanaryResult", "ColumnProfile", "DriftMonitor", "DriftReport", "DriftTest",
           "History", "HistoryRow", "LabelShare", "Profile", "TrendPoint", "adjust_p_values"]

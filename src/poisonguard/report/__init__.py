"""Reports for people: self-contained HTML pages of a scan (:func:`render_scan`), a drift
check (:func:`render_drift`) and the monitoring history (:func:`render_history`)."""

from poisonguard.report.html import render_scan
from poisonguard.report.monitor import render_drift, render_history

__all__ = ["render_drift", "render_history", "render_scan"]

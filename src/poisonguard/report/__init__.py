"""Reports for people: the self-contained HTML page of a scan (:func:`render_scan`)."""

from poisonguard.report.html import render_scan

__all__ = ["render_scan"]

"""Puts tests/ on sys.path (pytest's default import mode), so tests can share ``_data``."""

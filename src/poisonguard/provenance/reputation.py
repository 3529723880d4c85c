"""Contributor reputation: how likely each source is to send poisoned rows.

Per source, ``flagged`` of ``rows`` rows were flagged (summed over scans). Its poisoning rate
gets a Beta posterior under the Jeffreys prior Beta(1/2, 1/2): Beta(1/2 + flagged,
1/2 + rows - flagged), with a 90 % equal-tailed interval. A source is *named* when the lower end
of that interval is more than twice the base rate (all flagged rows over all rows): with 90 %
confidence its rows are flagged at least twice as often as everyone's. Sources are ranked by
that lower end, so a big source with a steady excess outranks a tiny one with one unlucky row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EXCESS", "LEVEL", "reputation"]

LEVEL = 0.90
EXCESS = 2.0


def reputation(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rank sources from ``{"source", "rows", "flagged"}`` records (several per source add up).

    Returns one row per source: ``source, rows, flagged, flagged_share, rate, rate_low,
    rate_high, named`` sorted by ``rate_low`` (highest first), then source name.

    Examples
    --------
    >>> table = reputation([{"source": "vendor", "rows": 200, "flagged": 40},
    ...                     {"source": "crowd", "rows": 800, "flagged": 8}])
    >>> table[["source", "named"]].to_dict(orient="records")
    [{'source': 'vendor', 'named': True}, {'source': 'crowd', 'named': False}]
    """
    from scipy.stats import beta

    frame = pd.DataFrame(list(records), columns=["source", "rows", "flagged"])
    if frame.empty:
        return pd.DataFrame(columns=["source", "rows", "flagged", "flagged_share", "rate",
                                     "rate_low", "rate_high", "named"])
    frame["source"] = frame["source"].astype(str)
    grouped = frame.groupby("source", sort=True)[["rows", "flagged"]].sum().reset_index()
    rows = grouped["rows"].to_numpy(dtype=np.float64)
    flagged = grouped["flagged"].to_numpy(dtype=np.float64)
    a, b = 0.5 + flagged, 0.5 + rows - flagged
    base = float(flagged.sum() / max(rows.sum(), 1.0))
    tail = (1.0 - LEVEL) / 2.0
    out = pd.DataFrame({
        "source": grouped["source"], "rows": rows.astype(np.int64),
        "flagged": flagged.astype(np.int64), "flagged_share": flagged / np.maximum(rows, 1.0),
        "rate": a / (a + b), "rate_low": beta.ppf(tail, a, b),
        "rate_high": beta.ppf(1.0 - tail, a, b)})
    out["named"] = out["rate_low"] > EXCESS * base
    out = out.sort_values(["rate_low", "source"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)

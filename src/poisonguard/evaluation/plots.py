"""Red-team plots: accuracy, attack success and subgroup accuracy by attack and budget.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global
backend switch), written atomically, and depend only on the table: same table, same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.io import atomic_path

__all__ = ["plot_accuracy", "plot_subgroups", "plot_success"]

SIZE = (7.5, 4.2)
DPI = 100


def _figure() -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def _series(table: pd.DataFrame, column: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(label, budgets, values)`` per attack and variant, in table order, NaN rows dropped."""
    out = []
    keys = table[["attack", "variant"]].drop_duplicates().itertuples(index=False)
    for attack, variant in keys:
        rows = table[(table["attack"] == attack) & (table["variant"] == variant)]
        rows = rows[rows[column].notna()]
        if len(rows):
            label = f"{attack} ({variant})" if variant else str(attack)
            out.append((label, rows["budget"].to_numpy(float) * 100,
                        rows[column].to_numpy(float)))
    return out


def _lines(table: pd.DataFrame, column: str, path: Path, *, title: str, ylabel: str,
           baseline: float | None = None) -> Path:
    fig = _figure()
    ax = fig.add_subplot()
    for k, (label, x, y) in enumerate(_series(table, column)):
        ax.plot(x, y, marker="os^Dvx<>p"[k % 9], label=label)
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle="--", linewidth=1, label="clean model")
    ax.set_xlabel("poison budget (% of training rows)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return _save(fig, path)


def plot_accuracy(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Poisoned-model test accuracy by attack and budget, the clean model as a dashed line."""
    clean = table["clean_accuracy"].dropna()
    return _lines(table, "poisoned_accuracy", Path(path), title=f"test accuracy: {title}",
                  ylabel="accuracy on clean test data",
                  baseline=float(clean.iloc[0]) if len(clean) else None)


def plot_success(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Attack success (see :class:`~poisonguard.evaluation.AttackOutcome`) by attack and budget."""
    return _lines(table, "attack_success", Path(path), title=f"attack success: {title}",
                  ylabel="attack success")


def plot_subgroups(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Group vs rest accuracy, clean and poisoned, for subpopulation rows by budget."""
    rows = table[table["group_accuracy"].notna()]
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title(f"subpopulation: group vs rest accuracy: {title}")
    if not len(rows):
        ax.text(0.5, 0.5, "no subpopulation attack in this run", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, Path(path))
    bars = (("clean_group_accuracy", "group, clean"), ("group_accuracy", "group, poisoned"),
            ("clean_rest_accuracy", "rest, clean"), ("rest_accuracy", "rest, poisoned"))
    labels = [f"{v} {b:.0%}" if v else f"{b:.0%}" for v, b in zip(rows["variant"], rows["budget"],
                                                                   strict=True)]
    x = np.arange(len(rows))
    width = 0.8 / len(bars)
    for k, (col, name) in enumerate(bars):
        ax.bar(x + (k - 1.5) * width, rows[col].to_numpy(float), width, label=name)
    ax.set_xticks(x, labels)
    ax.set_xlabel("variant and poison budget")
    ax.set_ylabel("accuracy on clean test data")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return _save(fig, Path(path))

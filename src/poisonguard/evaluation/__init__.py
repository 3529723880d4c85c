"""Evaluation against ground truth: metrics, the red-team runner and its report.

Examples
--------
>>> from poisonguard.datasets import load_dataset
>>> train, test = split(load_dataset("wine"), test_size=0.3, random_state=0)
>>> train.n_rows, test.n_rows
(125, 53)
"""

from poisonguard.evaluation.metrics import accuracy, attack_success_rate, group_accuracy, split
from poisonguard.evaluation.redteam import (
    AttackOutcome,
    RedteamReport,
    evaluate_attack,
    markdown_table,
    publish,
    run_redteam,
)

__all__ = ["AttackOutcome", "RedteamReport", "accuracy", "attack_success_rate", "evaluate_attack",
           "group_accuracy", "markdown_table", "publish", "run_redteam", "split"]

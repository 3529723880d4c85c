"""Robust training and certified defences: scikit-learn estimators, registered by name.

``get_defense(name, **params)`` builds one; ``DEFENSES`` lists them. Certifying defences have
``certify(X) -> Certificate``.
"""

from __future__ import annotations

from poisonguard.defenses import abl as _abl
from poisonguard.defenses import dpsgd as _dpsgd
from poisonguard.defenses import partition as _partition
from poisonguard.defenses import robust as _robust
from poisonguard.defenses import robust_net as _robust_net
from poisonguard.defenses._base import DEFENSES, Certificate, get_defense, register
from poisonguard.defenses.abl import AntiBackdoorLearning
from poisonguard.defenses.dpsgd import DPSGDClassifier
from poisonguard.defenses.partition import (
    FiniteAggregation,
    PartitionEnsemble,
    bucket_radius,
    certificate_radius,
    copies_into_parts,
    partition_index,
)
from poisonguard.defenses.robust import LOSSES, RobustLinear
from poisonguard.defenses.robust_net import RobustNet

__all__ = ["DEFENSES", "LOSSES", "AntiBackdoorLearning", "Certificate", "DPSGDClassifier",
           "FiniteAggregation", "PartitionEnsemble", "RobustLinear", "RobustNet", "bucket_radius",
           "certificate_radius", "copies_into_parts", "get_defense", "partition_index",
           "register"]

_ = (_abl, _dpsgd, _partition, _robust, _robust_net)

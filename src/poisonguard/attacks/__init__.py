"""Poisoning attacks, one module per family, registered by name in :data:`ATTACKS`.

Every attack keeps one contract: ``Attack(**params).poison(dataset, rng=rng)`` returns a
:class:`PoisonResult` with the poisoned copy, the mask of poisoned rows and where each row
came from; the input is never changed and the same seed gives the same bytes.
"""

from poisonguard.attacks._base import ATTACKS, Attack, PoisonResult, Target, get_attack
from poisonguard.attacks.adaptive import (
    Adaptation,
    AdaptiveBackdoor,
    AdaptiveBlend,
    AdaptivePatch,
    AdaptiveRound,
    SpreadBackdoor,
    adapt,
)
from poisonguard.attacks.availability import Availability
from poisonguard.attacks.backdoor import Backdoor
from poisonguard.attacks.clean_label import CleanLabelBackdoor
from poisonguard.attacks.feature_collision import FeatureCollision
from poisonguard.attacks.gradient_matching import GradientMatching
from poisonguard.attacks.label_flip import LabelFlip
from poisonguard.attacks.subpopulation import Subpopulation
from poisonguard.attacks.triggers import (
    BlendTrigger,
    FeatureTrigger,
    PatchTrigger,
    TokenTrigger,
    Trigger,
    fit_trigger,
    load_trigger,
)
from poisonguard.attacks.truth_serum import TruthSerum

__all__ = ["ATTACKS", "Adaptation", "AdaptiveBackdoor", "AdaptiveBlend", "AdaptivePatch",
           "AdaptiveRound", "Attack", "Availability", "Backdoor", "BlendTrigger",
           "CleanLabelBackdoor", "FeatureCollision", "FeatureTrigger", "GradientMatching",
           "LabelFlip", "PatchTrigger",
           "PoisonResult", "SpreadBackdoor", "Subpopulation", "Target", "TokenTrigger", "Trigger",
           "TruthSerum", "adapt", "fit_trigger", "get_attack", "load_trigger"]

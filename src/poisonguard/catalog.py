"""The field's map: every attack family, what it is after, and which detectors answer it.

Attacks and detectors describe themselves in their registries (``family`` / ``summary`` on
attacks; ``summary`` / ``answers`` / ``papers`` on detectors). What a *family* is — its goal,
scope, stealth, what the attacker needs, and the papers that define it — lives here, in
:data:`FAMILIES`, keyed by the attacks' ``family`` names. :func:`catalog` joins the three.

Examples
--------
>>> entries = catalog()
>>> sorted(e.family for e in entries)
['availability', 'backdoor', 'privacy', 'subpopulation', 'targeted']
>>> [a["name"] for a in next(e for e in entries if e.family == "privacy").attacks]
['truth-serum']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FAMILIES", "SURVEY", "CatalogEntry", "FamilyInfo", "catalog"]


@dataclass(frozen=True)
class FamilyInfo:
    """What an attack family is: ``goal``, ``scope``, ``stealth``, what the attacker ``needs``,
    and reference ``papers``."""

    goal: str
    scope: str
    stealth: str
    needs: str
    papers: tuple[str, ...]


FAMILIES: dict[str, FamilyInfo] = {
    "availability": FamilyInfo(
        goal="degrade the model everywhere (denial of service on accuracy)",
        scope="indiscriminate: every test input",
        stealth="low to moderate: a clean validation set shows the accuracy drop; mislabelled "
                "or out-of-place rows stand out to label and outlier checks",
        needs="control of a share of rows (labels, or injected rows); the strongest variants "
              "also need a surrogate model and data like the victim's",
        papers=("Biggio, Nelson, Laskov. Poisoning Attacks against Support Vector Machines. "
                "ICML 2012",
                "Xiao, Xiao, Eckert. Adversarial Label Flips Attack on Support Vector Machines. "
                "ECAI 2012",
                "Koh, Steinhardt, Liang. Stronger Data Poisoning Attacks Break Data Sanitization "
                "Defenses. Machine Learning 2022"),
    ),
    "backdoor": FamilyInfo(
        goal="make the model output a chosen class whenever a trigger is present",
        scope="any input carrying the trigger; accuracy on clean inputs holds",
        stealth="high: clean accuracy and validation metrics do not move; dirty-label rows carry "
                "wrong labels, clean-label rows look correctly labelled",
        needs="a few percent of rows inserted or changed, and the means to stamp the trigger on "
              "inputs at test time",
        papers=("Gu, Dolan-Gavitt, Garg. BadNets: Identifying Vulnerabilities in the Machine "
                "Learning Model Supply Chain. arXiv 2017",
                "Chen, Liu, Li, Lu, Song. Targeted Backdoor Attacks on Deep Learning Systems "
                "Using Data Poisoning. arXiv 2017",
                "Turner, Tsipras, Madry. Label-Consistent Backdoor Attacks. arXiv 2019"),
    ),
    "targeted": FamilyInfo(
        goal="flip the model's decision on chosen target inputs",
        scope="one or a few specific inputs; everything else unchanged",
        stealth="high: the poison rows are correctly labelled and overall accuracy holds",
        needs="the target input, a surrogate feature extractor close to the victim's (grey or "
              "white box), and rows injected into training",
        papers=("Shafahi, Huang, Najibi, Suciu, Studer, Dumitras, Goldstein. Poison Frogs! "
                "Targeted Clean-Label Poisoning Attacks on Neural Networks. NeurIPS 2018",
                "Koh, Liang. Understanding Black-box Predictions via Influence Functions. "
                "ICML 2017",
                "Geiping, Fowl, Huang, Czaja, Taylor, Moeller, Goldstein. Witches' Brew: "
                "Industrial Scale Data Poisoning via Gradient Matching. ICLR 2021"),
    ),
    "privacy": FamilyInfo(
        goal="make the model leak its training data: whether a target row was in the training "
             "set (membership), or a secret value of it",
        scope="a few chosen target inputs; test accuracy drops a little (the poison is a few "
              "mislabelled rows per target)",
        stealth="low to moderate: the poison rows are exact copies of the targets with "
                "conflicting labels, which the scan's duplicate and label checks pick out",
        needs="the target inputs (not their membership), rows injected into training, and query "
              "access to the trained model's confidences; shadow models on similar data help",
        papers=("Tramèr, Shokri, San Joaquin, Le, Jagielski, Hong, Carlini. Truth Serum: "
                "Poisoning Machine Learning Models to Reveal Their Secrets. ACM CCS 2022",
                "Carlini, Chien, Nasr, Song, Terzis, Tramèr. Membership Inference Attacks From "
                "First Principles. IEEE S&P 2022"),
    ),
    "subpopulation": FamilyInfo(
        goal="make the model fail on one group while the rest holds",
        scope="a natural subgroup (a feature filter or a cluster of similar inputs)",
        stealth="moderate: aggregate accuracy barely moves; only per-group evaluation shows it",
        needs="a description of the group and the means to inject or relabel rows in it",
        papers=("Jagielski, Severi, Pousette Harger, Oprea. Subpopulation Data Poisoning "
                "Attacks. ACM CCS 2021",),
    ),
}

SURVEY = ("Goldblum, Tsipras, Xie, Chen, Schwarzschild, Song, Madry, Li, Goldstein. Dataset "
          "Security for Machine Learning: Data Poisoning, Backdoor Attacks, and Defenses. "
          "IEEE TPAMI 2022")


@dataclass(frozen=True)
class CatalogEntry:
    """One attack family: its :class:`FamilyInfo`, its registered ``attacks`` (name, summary,
    data) and the registered ``detectors`` that answer it (name, summary, papers)."""

    family: str
    info: FamilyInfo
    attacks: tuple[dict[str, Any], ...]
    detectors: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"family": self.family, **asdict(self.info), "papers": list(self.info.papers),
                "attacks": [dict(a) for a in self.attacks],
                "detectors": [dict(d) for d in self.detectors]}


def catalog() -> list[CatalogEntry]:
    """Every attack family in the registry, sorted by name, with its attacks and detectors.

    Raises ``RuntimeError`` when a registered attack's family has no :data:`FAMILIES` entry
    (a bug: the table must grow with the registry).
    """
    from poisonguard.attacks import ATTACKS
    from poisonguard.detectors import DETECTORS

    families = sorted({cls.family for cls in ATTACKS.values()})
    missing = [f for f in families if f not in FAMILIES]
    if missing:
        raise RuntimeError(f"attack families without a catalog entry: {', '.join(missing)}")
    out = []
    for family in families:
        attacks = tuple({"name": name, "summary": cls.summary, "data": list(cls.modalities)}
                        for name, cls in sorted(ATTACKS.items()) if cls.family == family)
        detectors = tuple({"name": name, "summary": cls.summary, "papers": list(cls.papers)}
                          for name, cls in sorted(DETECTORS.items()) if family in cls.answers)
        out.append(CatalogEntry(family, FAMILIES[family], attacks, detectors))
    return out

"""A reference's statistics, computed once and stored as plain JSON: :class:`Profile`.

Per column the profile keeps what the drift tests need and nothing that must be unpickled:

* numeric: interior bin edges at the deciles of the reference's present values (duplicates
  merged, so a column with few distinct values gets fewer bins), the reference rows per bin
  (PSI and its chi-square) and the rows where the value is missing (tracked as one more bin);
* categorical (a non-numeric DataFrame column): the ``max_categories`` most frequent values and
  their counts, the rest pooled as ``(other)``; a missing value is the category ``<missing>``;
* one seeded subsample of at most ``sample_size`` whole reference rows with their labels. Its
  columns feed the KS tests, its rows the domain classifier (fitted at check time, seeded) and
  the canary model;
* the label counts.

Images are monitored through a linear embedding: the flattened pixels are projected on the
reference's first ``components`` principal axes (mean and axes stored in the profile), and the
columns ``pc1..pcK`` are then treated as numeric features. Text is refused: embed it first and
monitor the embedding as a tabular file.

The file starts with ``"format": "poisonguard-profile/1"`` and carries a ``digest``, the
SHA-256 of the canonical JSON of everything else; :meth:`Profile.read` refuses a file whose
content does not match it (exit 3). Same reference and seed, same bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from poisonguard._validation import column_difference
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError, IntegrityError

__all__ = ["FORMAT", "OTHER", "ColumnProfile", "Profile"]

FORMAT = "poisonguard-profile/1"
OTHER = "(other)"  # categories outside the kept ones, in the reference or a batch
MISSING = "<missing>"  # a missing categorical value (the featurizer's category of the same name)
MISSING_BIN = "(missing)"  # the bin of missing numeric values in a drift test's shares


@dataclass(frozen=True)
class ColumnProfile:
    """One column: ``kind``, its bins (``edges``, numeric) or ``categories``, and ``counts``.

    ``counts`` has ``len(edges) + 1`` entries for a numeric column (its present values) and
    ``len(categories) + 1`` (the last one ``(other)``) for a categorical one. ``missing``: the
    reference rows where a numeric value is missing.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    missing: int = 0

    def bin_counts(self, values: np.ndarray) -> np.ndarray:
        """Rows of ``values`` per bin (numeric, missing values left out) or per kept category
        and ``(other)``."""
        if self.kind == "numeric":
            values = np.asarray(values, dtype=np.float64)
            index = np.searchsorted(np.asarray(self.edges), values[~np.isnan(values)], side="left")
        else:
            index = self.codes(values)
        return np.bincount(index, minlength=len(self.counts))

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Categorical: each value's position in ``categories``, ``len(categories)`` if other."""
        codes = np.asarray(pd.Index(self.categories, dtype=object).get_indexer(values))
        return np.where(codes < 0, len(self.categories), codes)

    def bin_names(self) -> list[str]:
        """A readable name per bin: ``<= e1``, ``(e1, e2]``, ..., ``> ek``; or the categories."""
        if self.kind == "categorical":
            return [*self.categories, OTHER]
        e = [f"{v:.4g}" for v in self.edges]
        return [f"<= {e[0]}", *(f"({a}, {b}]" for a, b in itertools.pairwise(e)), f"> {e[-1]}"]


def _str_values(values: Any) -> np.ndarray:
    """Values as Python strings (categories and labels are compared as text); a missing value
    is ``<missing>``."""
    series = pd.Series(np.asarray(values, dtype=object))
    text = series.astype(str).to_numpy(dtype=object)
    text[series.isna().to_numpy()] = MISSING
    out: np.ndarray = text
    return out


def _numeric_column(name: str, values: np.ndarray, bins: int) -> ColumnProfile:
    missing = np.isnan(values)
    present = values[~missing]
    edges = np.unique(np.quantile(present, np.arange(1, bins) / bins)) if present.size else \
        np.zeros(1)
    col = ColumnProfile(name, "numeric", counts=(0,) * (len(edges) + 1),
                        edges=tuple(float(e) for e in edges))
    return ColumnProfile(name, "numeric", tuple(int(c) for c in col.bin_counts(present)), col.edges,
                         missing=int(missing.sum()))


def _categorical_column(name: str, values: np.ndarray, max_categories: int) -> ColumnProfile:
    uniq, counts = np.unique(values, return_counts=True)
    order = np.lexsort((uniq, -counts))[:max_categories]  # most frequent first, ties by value
    kept = tuple(str(uniq[i]) for i in order)
    return ColumnProfile(name, "categorical", (*(int(counts[i]) for i in order),
                                               int(len(values) - counts[order].sum())),
                         categories=kept)


def canonical(obj: Any) -> bytes:
    """Sorted keys, no spaces: the bytes the digest covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, eq=False)
class Profile:
    """Statistics of a trusted reference, made by :meth:`fit`, stored by :meth:`to_json`.

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> profile = Profile.fit(load_dataset("wine"), random_state=0)
    >>> profile.n_rows, len(profile.columns), profile.labels
    (178, 13, (('0', 59), ('1', 71), ('2', 48)))
    """

    name: str
    modality: Literal["tabular", "image"]
    n_rows: int
    columns: tuple[ColumnProfile, ...]
    labels: tuple[tuple[str, int], ...]
    sample: pd.DataFrame
    sample_labels: np.ndarray
    random_state: int
    embedding: tuple[tuple[int, ...], np.ndarray, np.ndarray] | None = None  # shape, mean, axes
    roles: tuple[tuple[str, str], ...] = ()  # the reference file's label / id / source columns

    # ------------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, reference: Dataset, *, random_state: int = 0, sample_size: int = 5000,
            bins: int = 10, max_categories: int = 50, components: int = 10) -> Profile:
        """Profile ``reference``; the same data and ``random_state`` give the same profile."""
        for key, value, low in (("sample_size", sample_size, 10), ("bins", bins, 2),
                                ("max_categories", max_categories, 1), ("components", components, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"'{key}' must be an integer >= {low} (got {value!r})")
        if not isinstance(reference, Dataset):
            raise InputError(f"'reference' must be a Dataset (got {type(reference).__name__})")
        if reference.modality == "text":
            raise InputError(f"{reference.name}: drift monitoring needs tabular or image data; "
                             "embed the text first and monitor the embedding as a tabular file")
        rng = np.random.default_rng(random_state)
        embedding = None
        if reference.modality == "image":
            flat = np.asarray(reference.X, dtype=np.float64).reshape(reference.n_rows, -1)
            fit_rows = flat[np.sort(rng.permutation(len(flat))[:sample_size])]
            mean = fit_rows.mean(axis=0)
            k = min(components, flat.shape[1], len(fit_rows))
            _, _, vt = np.linalg.svd(fit_rows - mean, full_matrices=False)
            axes = vt[:k] * np.where(vt[:k].sum(axis=1, keepdims=True) < 0, -1.0, 1.0)  # fixed sign
            embedding = (tuple(int(s) for s in reference.X.shape[1:]), mean, axes)
            frame = pd.DataFrame((flat - mean) @ axes.T, columns=[f"pc{j + 1}" for j in range(k)])
        else:
            frame = reference.frame()
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InputError(f"{reference.name}: column '{dup}' appears twice")
        columns = []
        for name in names:
            col = frame[name]
            if col.dtype.kind in "iufb":
                columns.append(_numeric_column(name, col.to_numpy(dtype=np.float64), bins))
            else:
                columns.append(_categorical_column(name, _str_values(col), max_categories))
        keep = rng.permutation(reference.n_rows)[:sample_size]
        sample = pd.DataFrame({c.name: (frame[c.name].to_numpy(dtype=np.float64)[keep]
                                        if c.kind == "numeric" else _str_values(frame[c.name])[keep])
                               for c in columns})
        labels = _str_values(reference.y)
        values, counts = np.unique(labels, return_counts=True)
        origin = reference.origin
        roles = tuple((k, str(v)) for k, v in (("label", origin.label), ("id_col", origin.id_col),
                                                ("source_col", origin.source_col))
                      if v) if origin is not None and origin.format in ("csv", "parquet", "jsonl") else ()
        return cls(reference.name, "image" if embedding else "tabular", reference.n_rows,
                   tuple(columns), tuple((str(v), int(c)) for v, c in zip(values, counts, strict=True)),
                   sample, labels[keep], random_state, embedding, roles)

    def role(self, name: str) -> str | None:
        """The reference file's ``label``, ``id_col`` or ``source_col`` column, if it had one."""
        return dict(self.roles).get(name)

    # ------------------------------------------------------------- batch view
    def features(self, batch: Dataset) -> pd.DataFrame:
        """``batch`` as this profile's columns (images: their embedding), in profile order.

        Raises :class:`InputError` naming the batch when its schema differs from the profile's.
        """
        where = f"batch '{batch.name}'"
        expected = "image" if self.embedding is not None else "tabular"
        if batch.modality != expected:
            raise InputError(f"{where}: {batch.modality} data, but the profile of '{self.name}' "
                             f"is of {expected} data")
        if self.embedding is not None:
            shape, mean, axes = self.embedding
            if tuple(batch.X.shape[1:]) != shape:
                raise InputError(f"{where}: images of shape {tuple(batch.X.shape[1:])}, but the "
                                 f"profile's are {shape}")
            flat = np.asarray(batch.X, dtype=np.float64).reshape(batch.n_rows, -1)
            return pd.DataFrame((flat - mean) @ axes.T, columns=[c.name for c in self.columns])
        frame = batch.frame()
        have, want = [str(c) for c in frame.columns], [c.name for c in self.columns]
        differ = column_difference(have, want)
        if differ is not None and differ != "same columns in another order":
            raise InputError(f"{where}: columns differ from the profile of '{self.name}' "
                             f"({differ})")
        out = {}
        for col in self.columns:
            values = frame[col.name]
            if col.kind == "numeric":
                if values.dtype.kind not in "iufb":
                    raise InputError(f"{where}, column '{col.name}': text values, but the column "
                                     "is numeric in the profile")
                out[col.name] = values.to_numpy(dtype=np.float64)
            else:  # integers where the reference had text categories are compared as text
                out[col.name] = _str_values(values)
        return pd.DataFrame(out)

    # ---------------------------------------------------------------- storage
    @cached_property
    def digest(self) -> str:
        """``sha256:<hex>`` of the profile's canonical JSON: which reference a check used."""
        return "sha256:" + hashlib.sha256(canonical(self._content())).hexdigest()

    def _content(self) -> dict[str, Any]:
        cols = [{"name": c.name, "kind": c.kind, "counts": list(c.counts),
                 **({"edges": list(c.edges)} if c.kind == "numeric" else
                    {"categories": list(c.categories)}),
                 **({"missing": c.missing} if c.missing else {})} for c in self.columns]
        emb = None if self.embedding is None else {
            "shape": list(self.embedding[0]), "mean": self.embedding[1].tolist(),
            "axes": self.embedding[2].tolist()}
        sample = {c.name: [None if isinstance(v, float) and np.isnan(v) else v
                           for v in self.sample[c.name].tolist()] for c in self.columns}
        return {"format": FORMAT, "name": self.name, "modality": self.modality,
                "n_rows": self.n_rows, "random_state": self.random_state, "columns": cols,
                "labels": [[v, c] for v, c in self.labels], "embedding": emb,
                "sample": {"labels": self.sample_labels.tolist(), "columns": sample},
                **({"roles": dict(self.roles)} if self.roles else {})}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: ``format`` and ``digest`` first, then the content."""
        content = self._content()
        return {"format": FORMAT, "digest": self.digest, **content}

    def to_json(self, path: str | Path) -> Path:
        """Write the profile (atomically); one top-level key per line."""
        from poisonguard.io import write_text

        lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'), ensure_ascii=False)}"
                 for k, v in self.to_dict().items()]
        return write_text(path, "{\n" + ",\n".join(lines) + "\n}\n")

    @classmethod
    def read(cls, path: str | Path) -> Profile:
        """Load a profile written by :meth:`to_json`; anything else raises a one-line error."""
        from poisonguard.io import read_json
        from poisonguard.provenance.hashing import require_regular_file

        if Path(path).exists():
            require_regular_file(path, "drift profile")
        doc = read_json(path, "drift profile")
        if not isinstance(doc, dict) or "format" not in doc:
            raise InputError(f"{path}: not a drift profile (no \"format\": \"{FORMAT}\"; "
                             "make one with `poisonguard monitor init`)")
        if doc["format"] != FORMAT:
            raise InputError(f"{path}: profile format {doc['format']!r} is not supported "
                             f"(expected {FORMAT!r})")
        try:
            profile = cls._from_content(doc)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise InputError(f"{path}: not a valid drift profile ({type(exc).__name__}: "
                             f"{first[:200]})") from None
        if doc.get("digest") != profile.digest:
            raise IntegrityError(f"{path}: content does not match the profile's digest "
                                 "(edited or corrupted); make it again with `monitor init`")
        return profile

    @classmethod
    def _from_content(cls, doc: dict[str, Any]) -> Profile:
        columns = []
        for c in doc["columns"]:
            kind = c["kind"]
            if kind not in ("numeric", "categorical"):
                raise ValueError(f"column {c['name']!r} has unknown kind {kind!r}")
            col = ColumnProfile(str(c["name"]), kind, tuple(int(v) for v in c["counts"]),
                                tuple(float(v) for v in c.get("edges", ())),
                                tuple(str(v) for v in c.get("categories", ())),
                                int(c.get("missing", 0)))
            bins = len(col.edges) if kind == "numeric" else len(col.categories)
            if len(col.counts) != bins + 1 or (kind == "numeric" and not col.edges):
                raise ValueError(f"column {col.name!r}: {len(col.counts)} counts for {bins + 1} bins")
            columns.append(col)
        raw = doc["sample"]["columns"]
        if [c.name for c in columns] != list(raw):
            raise ValueError("the sample's columns differ from the profile's columns")
        sample = pd.DataFrame({c.name: np.asarray(raw[c.name], dtype=np.float64 if c.kind == "numeric"
                                                  else object) for c in columns})
        sample_labels = np.asarray([str(v) for v in doc["sample"]["labels"]], dtype=object)
        if len(sample_labels) != len(sample) or len(sample) == 0:
            raise ValueError("the sample's labels and rows differ in number")
        emb = doc["embedding"]
        embedding = None if emb is None else (
            tuple(int(s) for s in emb["shape"]), np.asarray(emb["mean"], dtype=np.float64),
            np.asarray(emb["axes"], dtype=np.float64).reshape(len(columns), -1))
        modality = doc["modality"]
        if modality not in ("tabular", "image") or (modality == "image") != (embedding is not None):
            raise ValueError(f"bad modality {modality!r}")
        roles = doc.get("roles", {})
        if not isinstance(roles, dict) or not set(roles) <= {"label", "id_col", "source_col"}:
            raise ValueError("'roles' must map label, id_col, source_col to column names")
        return cls(str(doc["name"]), modality, int(doc["n_rows"]), tuple(columns),
                   tuple((str(v), int(c)) for v, c in doc["labels"]), sample, sample_labels,
                   int(doc["random_state"]), embedding,
                   tuple((k, str(roles[k])) for k in ("label", "id_col", "source_col") if k in roles))

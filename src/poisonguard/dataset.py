"""The one data model every capability shares: :class:`Dataset`."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, cast

import numpy as np

from poisonguard.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FEATURE_MAX", "Dataset", "Modality", "Origin"]

Modality = Literal["tabular", "image", "text"]
MODALITIES: tuple[Modality, ...] = ("tabular", "image", "text")
#: Largest feature magnitude accepted. Squares, products and sums of a billion of them stay far
#: inside float64 (1e308), so no scaler, distance or covariance overflows; larger values are no
#: measurement anyway.
FEATURE_MAX = 1e100
_TOO_LARGE = f"is too large to compute with (|value| must be at most {FEATURE_MAX:g})"


@dataclass(frozen=True)
class Origin:
    """Where a dataset was read from, so that saving can keep the file's format and columns.

    ``format`` also names data read by :mod:`poisonguard.formats`: a JSON Lines file, an image
    folder, a Hugging Face ``save_to_disk`` folder, or a pandas DataFrame (``path`` its name).
    ``columns`` is the file's column order (CSV / Parquet); ``dtypes`` the original dtype of
    each feature column by name; ``npz_keys`` the arrays an NPZ file held. ``dates`` names the
    columns read as dates and now held as days since 1970-01-01: ``(column, format, unread)``,
    with the date format recognised (``""`` for a native date column) and how many present
    values were not dates in that format and became missing.

    ``stamp`` is the CSV file's ``(size, mtime_ns)`` when it was read, set only when its rows
    map one to one onto the dataset's. ``file_rows``, when set, gives for each row of the
    dataset the row of that file it is an unchanged copy of (-1: changed or added), so a copy
    can be written with the file's own cell text (e.g. ``01419`` stays ``01419``). Changing the
    rows of a dataset (:meth:`Dataset.replace`, :meth:`Dataset.take`) drops it.
    """

    path: str
    format: Literal["csv", "parquet", "npz", "jsonl", "images", "hf", "frame"]
    label: str = "label"
    id_col: str | None = None
    source_col: str | None = None
    columns: tuple[str, ...] = ()
    dtypes: tuple[tuple[str, str], ...] = ()
    npz_keys: tuple[str, ...] = ()
    dates: tuple[tuple[str, str, int], ...] = ()
    stamp: tuple[int, int] | None = None
    file_rows: np.ndarray | None = field(default=None, compare=False, repr=False)


def _is_frame(X: Any) -> TypeGuard[pd.DataFrame]:
    """Whether ``X`` is a DataFrame. pandas is imported only where a frame is built: none can
    exist before it is, so arrays alone never import it (``import poisonguard`` stays fast)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(X, pandas.DataFrame)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _as_labels(y: Any, n: int) -> np.ndarray:
    pandas = sys.modules.get("pandas")
    arr = np.asarray(y.to_numpy() if pandas is not None and isinstance(y, pandas.Series) else y)
    if arr.ndim != 1:
        raise InputError(f"'y' must be one-dimensional (got shape {arr.shape})")
    if len(arr) != n:
        raise InputError(f"length mismatch: X has {n} rows but y has {len(arr)}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            raise InputError(f"label of row {int(np.flatnonzero(bad)[0])} is missing or not finite")
        big = np.abs(arr) > 2.0**53
        if big.any():
            i = int(np.flatnonzero(big)[0])
            raise InputError(f"label of row {i} ({arr[i]:g}) is too large for an integer label")
        if np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise InputError("labels must be integers or strings (got non-integer floats)")
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    import pandas as pd

    as_obj = arr.astype(object)
    missing = pd.isna(as_obj)
    if missing.any():
        raise InputError(f"label of row {int(np.flatnonzero(missing)[0])} is missing")
    return np.asarray([str(v) for v in as_obj], dtype=str)


def _as_float_column(values: pd.Series) -> pd.Series:
    """A pandas nullable numeric or boolean column (``Int64``, ``Float64``, ``boolean``) as
    float64 with NaN for ``pd.NA``; any other column unchanged."""
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(
            dtype, pd.CategoricalDtype | pd.DatetimeTZDtype | pd.PeriodDtype | pd.IntervalDtype) \
            and (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        return pd.Series(values.to_numpy(dtype=np.float64, na_value=np.nan), name=values.name)
    return values


def _beyond_max(X: np.ndarray) -> bool:
    """Whether any value lies beyond :data:`FEATURE_MAX` (NaN ignored; no copy of ``X``)."""
    if X.size == 0:
        return False
    hi, lo = np.fmax.reduce(X, axis=None), np.fmin.reduce(X, axis=None)
    return bool(hi > FEATURE_MAX or lo < -FEATURE_MAX)


def _check_finite_frame(X: pd.DataFrame) -> None:
    """Missing values are allowed in tabular features; infinities and values beyond
    :data:`FEATURE_MAX` are not."""
    for j, col in enumerate(X.columns):
        values = X.iloc[:, j]
        if values.dtype.kind not in "iuf":
            continue
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"row {i}, column '{col}': value is {v[i]}; features must be "
                             "finite (missing values are allowed)")
        if _beyond_max(v):
            i = int(np.flatnonzero(np.abs(v) > FEATURE_MAX)[0])
            raise InputError(f"row {i}, column '{col}': value {v[i]:g} {_TOO_LARGE}")


def _check_finite_array(X: np.ndarray, names: Sequence[str], kind: Modality) -> None:
    """Tabular arrays may hold NaN (missing) but not infinities; images must be finite; no
    value may lie beyond :data:`FEATURE_MAX`."""
    if X.dtype.kind != "f":
        return
    bad = np.isinf(X) if kind == "tabular" else ~np.isfinite(X)
    if bad.any():
        flat = np.argwhere(bad)[0]
        i = int(flat[0])
        pixel = tuple(int(v) for v in flat[1:])
        if X.ndim == 2:
            raise InputError(f"row {i}, column '{names[int(flat[1])]}': value is {X[tuple(flat)]}; "
                             "features must be finite (missing values are allowed)")
        raise InputError(f"row {i}, pixel {pixel}: value is {X[tuple(flat)]}; features must be finite")
    if X.dtype.itemsize >= 8 and _beyond_max(X):  # float16 / float32 cannot get there
        flat = np.argwhere(np.abs(X) > FEATURE_MAX)[0]
        i, value = int(flat[0]), float(X[tuple(flat)])
        where = (f"column '{names[int(flat[1])]}'" if X.ndim == 2
                 else f"pixel {tuple(int(v) for v in flat[1:])}")
        raise InputError(f"row {i}, {where}: value {value:g} {_TOO_LARGE}")


def _infer_modality(X: Any) -> Modality:
    if _is_frame(X):
        return "tabular"
    if X.ndim == 1:
        return "text"
    if X.ndim == 2:
        return "tabular"
    if X.ndim in (3, 4):
        return "image"
    raise InputError(f"'X' must have 1 (text), 2 (tabular) or 3-4 (image) dimensions (got {X.ndim})")


@dataclass(frozen=True, init=False, eq=False)
class Dataset:
    """A labelled training set: features, labels, row ids and optional per-row sources.

    ``X`` is a numeric array ``(n, d)`` (tabular), ``(n, h, w[, c])`` (image), a 1-D array of
    strings (text), or a DataFrame for tabular data with categorical columns. Arrays are copied
    and made read-only; ``ids`` default to the row numbers as strings.

    Tabular features may be missing (NaN, None, ``pd.NA``; nullable numeric columns become
    float64 with NaN); infinities are refused, and so is any non-finite pixel. Labels and ids
    are never missing.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(np.eye(3), [0, 1, 1])
    >>> ds.n_rows, ds.modality, ds.ids.tolist(), ds.classes.tolist()
    (3, 'tabular', ['0', '1', '2'], [0, 1])
    """

    X: Any
    y: np.ndarray
    ids: np.ndarray
    sources: np.ndarray | None
    modality: Modality
    feature_names: tuple[str, ...]
    name: str
    origin: Origin | None = field(default=None)

    def __init__(
        self,
        X: Any,
        y: Any,
        *,
        ids: Any = None,
        sources: Any = None,
        modality: Modality | None = None,
        feature_names: Sequence[str] | None = None,
        name: str = "dataset",
        origin: Origin | None = None,
    ) -> None:
        if _is_frame(X):
            Xv: Any = X.copy(deep=True).reset_index(drop=True)
            Xv.columns = [str(c) for c in Xv.columns]
            for j in range(Xv.shape[1]):
                Xv.isetitem(j, _as_float_column(Xv.iloc[:, j]))
            names: tuple[str, ...] = tuple(Xv.columns)
            n = len(Xv)
        else:
            Xa = np.asarray(X)
            if Xa.ndim == 0:
                raise InputError("'X' must be an array of rows (got a scalar)")
            n = Xa.shape[0]
            kind = _infer_modality(Xa) if modality is None else modality
            if kind == "text":
                if Xa.ndim != 1:
                    raise InputError(f"text 'X' must be one string per row (got shape {Xa.shape})")
                Xa = np.asarray([str(t) for t in Xa], dtype=object)
            elif Xa.dtype.kind not in "iufb":
                raise InputError(f"'X' must be numeric for {kind} data (got dtype {Xa.dtype})")
            Xv = Xa
            width = Xa.shape[1] if Xa.ndim == 2 else 0
            names = tuple(str(c) for c in feature_names) if feature_names is not None else tuple(
                f"x{j}" for j in range(width))
        if n == 0:
            raise InputError("the dataset has no rows")
        kind = modality or _infer_modality(Xv)
        if kind not in MODALITIES:
            raise InputError(f"'modality' must be one of {', '.join(MODALITIES)} (got {kind!r})")
        if _is_frame(Xv):
            if kind != "tabular":
                raise InputError(f"a DataFrame 'X' must be tabular (got modality {kind!r})")
            _check_finite_frame(Xv)
        else:
            if kind == "tabular" and Xv.ndim != 2:
                raise InputError(f"tabular 'X' must be 2-D (got shape {Xv.shape})")
            if kind == "image" and Xv.ndim not in (3, 4):
                raise InputError(f"image 'X' must be (n, h, w) or (n, h, w, c) (got {Xv.shape})")
            if kind == "tabular" and len(names) != Xv.shape[1]:
                raise InputError(f"'feature_names' has {len(names)} names for {Xv.shape[1]} columns")
        repeated = [c for c, k in Counter(names).items() if k > 1]
        if repeated:
            raise InputError(f"feature name {', '.join(repr(c) for c in repeated)} appears more "
                             "than once; feature names must be unique")
        if not _is_frame(Xv):
            _check_finite_array(Xv, names, kind)
            Xv = _readonly(Xv)
        labels = _readonly(_as_labels(y, n))
        if ids is None:
            id_arr = np.arange(n).astype(f"U{len(str(max(n - 1, 0)))}")  # no wider than needed
        else:
            id_arr = np.asarray([str(v) for v in np.asarray(ids, dtype=object)], dtype=str)
            if len(id_arr) != n:
                raise InputError(f"length mismatch: X has {n} rows but ids has {len(id_arr)}")
            uniq, counts = np.unique(id_arr, return_counts=True)
            if (counts > 1).any():
                dup = uniq[np.argmax(counts > 1)]
                rows = np.flatnonzero(id_arr == dup)[:2]
                raise InputError(f"duplicate id {str(dup)!r} at rows {rows[0]} and {rows[1]}; "
                                 "ids must be unique")
        src = None
        if sources is not None:
            src = np.asarray([str(v) for v in np.asarray(sources, dtype=object)], dtype=str)
            if len(src) != n:
                raise InputError(f"length mismatch: X has {n} rows but sources has {len(src)}")
            src = _readonly(src)
        for key, value in (("X", Xv), ("y", labels), ("ids", _readonly(id_arr)), ("sources", src),
                           ("modality", kind), ("feature_names", names), ("name", name),
                           ("origin", origin)):
            object.__setattr__(self, key, value)

    # ----------------------------------------------------------------- views
    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.y)

    def __len__(self) -> int:
        return self.n_rows

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct labels."""
        return np.unique(self.y)

    @property
    def is_frame(self) -> bool:
        """True when ``X`` is a DataFrame (tabular data with categorical columns)."""
        return _is_frame(self.X)

    @property
    def has_default_ids(self) -> bool:
        """True when the ids are the row numbers ``0 .. n-1``."""
        return bool(np.array_equal(self.ids, np.arange(self.n_rows).astype(str)))

    def frame(self, rows: slice | None = None) -> pd.DataFrame:
        """Features as a DataFrame (text: one column ``text``; images: one column per pixel);
        only the rows ``rows`` (a slice) when given."""
        import pandas as pd

        part = slice(None) if rows is None else rows
        if _is_frame(self.X):
            return cast(pd.DataFrame, self.X.iloc[part].copy())
        X = self.X[part]
        if self.modality == "text":
            return pd.DataFrame({"text": X})
        flat = X.reshape(len(X), -1)
        names = list(self.feature_names) if self.modality == "tabular" else [
            f"px{j}" for j in range(flat.shape[1])]
        return pd.DataFrame(flat, columns=names)

    # ----------------------------------------------------------- new copies
    def replace(self, **changes: Any) -> Dataset:
        """A new dataset with some fields replaced (the input is untouched)."""
        fields = {"X": self.X, "y": self.y, "ids": self.ids, "sources": self.sources,
                  "modality": self.modality, "feature_names": self.feature_names,
                  "name": self.name, "origin": self.origin}
        fields.update(changes)
        origin = fields["origin"]
        if (origin is not None and origin.file_rows is not None and "origin" not in changes
                and changes.keys() & {"X", "y", "ids", "sources"}):
            fields["origin"] = dataclasses.replace(origin, file_rows=None)  # rows changed
        X, y = fields.pop("X"), fields.pop("y")
        return Dataset(X, y, **fields)

    def take(self, index: Any) -> Dataset:
        """Rows ``index`` (integer positions or a boolean mask) as a new dataset."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        X = self.X.iloc[idx] if _is_frame(self.X) else self.X[idx]
        return self.replace(X=X, y=self.y[idx], ids=self.ids[idx],
                            sources=None if self.sources is None else self.sources[idx])

    def features_like(self, X: Any) -> Any:
        """``X`` cast back to this dataset's feature dtype (integers rounded and clipped)."""
        if self.modality == "text":
            return X
        if _is_frame(self.X):
            import pandas as pd

            frame = pd.DataFrame(X, columns=self.X.columns).copy()
            for col in self.X.columns:
                kind = self.X[col].dtype.kind
                if kind in "iu" and frame[col].dtype != self.X[col].dtype:
                    frame[col] = np.rint(frame[col].to_numpy(dtype=np.float64)).astype(self.X[col].dtype)
            return frame
        arr = np.asarray(X)
        if self.X.dtype.kind in "iu":
            info = np.iinfo(self.X.dtype)
            arr = np.clip(np.rint(arr), info.min, info.max)
        elif self.X.dtype.kind == "b":
            arr = arr > 0.5
        return arr.astype(self.X.dtype)

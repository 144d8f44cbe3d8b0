"""Numbers for the explainers, the original values for the model.

shap's maskers and LIME's sampler do arithmetic on rows (``x * mask + background * ~mask``),
which on strings silently concatenates. So categorical columns travel as integer codes and
are decoded back to their values, with their dtypes, just before the model sees them: the
explanation stays in the input feature space of a pipeline that one-hot encodes inside.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aiwarden.errors import DataError

__all__ = ["FrameCodec", "as_frame", "summarise_background"]


def as_frame(data: Any, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A DataFrame of ``data`` (DataFrame, 2-D array, dict of columns, row dicts, Arrow)."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise DataError(f"The {name} must be a 2-D array of rows; got {data.ndim} "
                            "dimension(s).")
        cols = columns if columns and len(columns) == data.shape[1] else [
            f"f{i}" for i in range(data.shape[1])]
        frame = pd.DataFrame(data, columns=cols)
    elif hasattr(data, "to_pandas"):
        frame = data.to_pandas()
    else:
        try:
            frame = pd.DataFrame(data)
        except (TypeError, ValueError) as exc:
            raise DataError(f"The {name} cannot be read as a table: {exc}") from None
    if len(frame) == 0:
        raise DataError(f"The {name} have no rows.")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def summarise_background(reference: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``size`` reference rows without replacement (all when fewer).

    Every SHAP value is a contribution relative to the mean output over these rows, so the
    sample is drawn once per call from the seed: the same seed gives the same base value.
    """
    if len(reference) <= size:
        return reference.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(reference), size=size, replace=False))
    return reference.iloc[idx].reset_index(drop=True)


class FrameCodec:
    """Codes for non-numeric columns, learned from the frames it will encode."""

    def __init__(self, *frames: pd.DataFrame) -> None:
        first = frames[0]
        self.columns = list(first.columns)
        self.dtypes = dict(first.dtypes)
        self.categories: dict[int, np.ndarray] = {}
        for j, col in enumerate(self.columns):
            if _numeric(first[col]):
                continue
            values = pd.concat([f[col] for f in frames], ignore_index=True)
            uniq = pd.unique(values.dropna())
            if values.isna().any():
                uniq = np.append(uniq.astype(object), [None])
            self.categories[j] = np.asarray(uniq, dtype=object)

    @property
    def categorical(self) -> list[int]:
        return sorted(self.categories)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, col in enumerate(self.columns):
            series = frame[col]
            if j in self.categories:
                cats = self.categories[j]
                lookup = {v: i for i, v in enumerate(cats) if v is not None}
                codes = series.map(lookup)
                if cats[-1] is None:
                    codes = codes.where(series.notna(), len(cats) - 1)
                out[:, j] = codes.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def decode(self, arr: np.ndarray) -> pd.DataFrame:
        """Rows of codes back to a frame with the original values and dtypes."""
        data: dict[str, Any] = {}
        for j, col in enumerate(self.columns):
            if j in self.categories:
                cats = self.categories[j]
                codes = np.clip(np.rint(arr[:, j]), 0, len(cats) - 1).astype(np.intp)
                values = cats[codes]
                dtype = self.dtypes[col]
                if isinstance(dtype, pd.CategoricalDtype):
                    data[col] = pd.Categorical(values, categories=dtype.categories)
                else:
                    data[col] = pd.Series(values, dtype=object)
            elif pd.api.types.is_bool_dtype(self.dtypes[col]):
                data[col] = arr[:, j] > 0.5
            else:
                data[col] = arr[:, j]
        return pd.DataFrame(data, columns=self.columns)


def _numeric(series: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(series.dtype)
            and not isinstance(series.dtype, pd.CategoricalDtype))

"""Notebook display shared by result objects: ``to_frame()`` as an HTML table under a one-line title."""

from __future__ import annotations

import html

import pandas as pd


class FrameRepr:
    """Mixin: results that define ``to_frame()`` and ``__repr__`` render in notebooks as title + table."""

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_html_(self) -> str:
        title = html.escape(repr(self))
        return f"<div><p><b>{title}</b></p>{self.to_frame().to_html(index=False)}</div>"

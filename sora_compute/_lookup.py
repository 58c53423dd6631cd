"""Name lookups shared by the catalogs (presets, GPUs, scenarios): a did-you-mean hint for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest known name (a prefix match first), or '' when none is close."""
    if not isinstance(name, str):
        return ""
    names = list(known)
    key = name.strip().lower()
    close = [n for n in names if n.startswith(key)] or difflib.get_close_matches(key, names, n=1, cutoff=0.4)
    return f"; did you mean {close[0]!r}?" if close else ""

"""Human-readable numbers with their units (engineering notation for counts, SI-ish money)."""

from __future__ import annotations

import math

__all__ = ["fmt_flops", "fmt_usd", "fmt_int", "fmt_sci", "fmt_duration_days", "fmt_multiple"]


def fmt_sci(x: float, digits: int = 3) -> str:
    """2.574e+24 -> '2.57e24'."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    mantissa, exp = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exp)}"


def fmt_flops(x: float) -> str:
    return f"{fmt_sci(x)} FLOPs"


def fmt_usd(x: float) -> str:
    """1.23e7 -> '$12.3M'; from 1e15 on in scientific notation ('$2.5e+22', not '$2.5e+10T')."""
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1e15:
        return f"${x:.3g}"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"${x / scale:,.3g}{unit}"
    return f"${x:,.2f}"


def fmt_int(x: float) -> str:
    """1234.4 -> '1,234'; below 1 two significant digits (0.0135 -> '0.014', never a '0' that is not zero)."""
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.2g}" if 0 < abs(x) < 0.5 else f"{x:,.0f}"


def fmt_mwh(x: float) -> str:
    """Energy in MWh: '2,595 MWh', '1.66 MWh', '0.00187 MWh' (three significant digits below 100); 'n/a MWh' when
    unknown (a GPU without a board power in the catalog)."""
    if not math.isfinite(x):
        return "n/a MWh"
    return f"{x:,.0f} MWh" if abs(x) >= 100 else f"{x:.3g} MWh"


def fmt_duration_days(days: float) -> str:
    """A wall-clock time given in days, in the unit that shows it: '31.4 days', '6.1 hours', '12.5 minutes',
    '1.8 s' (never '0.0 hours')."""
    if not math.isfinite(days):
        return "n/a"
    if days >= 1:
        return f"{days:,.1f} days"
    if days * 24 >= 1:
        return f"{days * 24:,.1f} hours"
    if days * 1440 >= 1:
        return f"{days * 1440:,.1f} minutes"
    return f"{days * 86400:.2g} s"


def fmt_multiple(x: float) -> str:
    """A multiple (of GPT-3, of a baseline) with the digits that matter: '8.21x', '0.0037x', '1,055x' (never 0.00x)."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0x"
    if abs(x) >= 100:
        return f"{x:,.0f}x"
    if abs(x) >= 0.1:
        return f"{x:.2f}x"
    return f"{x:.2g}x"


def fmt_seconds(x: float) -> str:
    """Seconds for people: '0.74 s', '45.0 s', '1,904 s' ('—' for a missing value)."""
    if x != x:
        return "—"
    return f"{x:.2g} s" if x < 10 else f"{x:.1f} s" if x < 100 else f"{x:,.0f} s"

"""Number and text formatting shared by the report's HTML writers."""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["escape", "format_p", "p_phrase", "format_number"]


def escape(x: Any) -> str:
    """HTML-escaped ``str(x)`` (quotes too).

    Parameters
    ----------
    x : Any
        Anything with a ``str``.

    Returns
    -------
    str
        The escaped text.
    """
    return html.escape(str(x), quote=True)


def format_p(p: Any) -> str:
    """p-value for humans: 3 significant digits, '< 0.001' below that, '—' when undefined.

    Parameters
    ----------
    p : float or None
        The p-value (anything :class:`float` accepts); None or a non-finite
        float is undefined.

    Returns
    -------
    str
        ``"—"``, ``"< 0.001"`` or the value with 3 significant digits (``"0.0312"``).
    """
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "—"
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def p_phrase(p: Any) -> str:
    """'p = 0.03' or 'p < 0.001' (:func:`format_p` with its relation).

    Parameters
    ----------
    p : float or None
        The p-value.

    Returns
    -------
    str
        ``"p = 0.0312"``, ``"p < 0.001"`` or ``"p = —"``.
    """
    f = format_p(p)
    return f"p {f}" if f.startswith("<") else f"p = {f}"


def format_number(x: Any, digits: int = 3) -> str:
    """A number for a table: ints as they are, floats with ``digits`` decimals, bools yes/no.

    Parameters
    ----------
    x : Any
        The value (None and non-finite floats give ``"—"``; other types are escaped text).
    digits : int, default 3
        Decimals of a float (significant digits below 1e-3 or from 1e4 on).

    Returns
    -------
    str
        The formatted (HTML-safe) text.
    """
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "—"
        if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3):
            return f"{x:.{digits}g}"
        return f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return escape(x)

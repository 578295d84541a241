"""Dollar amounts as the Usage page, the status bar and ``homefire usage`` show them.

Cents from $1 up; below that, enough places that a day of light use never reads as $0.00
(the JSON output and the ledger keep exact values; this is display only).
"""

from __future__ import annotations

from decimal import Decimal

_CENT = Decimal("0.01")


def format_dollars(amount: Decimal) -> str:
    """``$1,234.50``, ``$0.0412``, ``$0.000600``, ``-$2.10``."""
    size = abs(amount)
    places = "0.01" if size >= 1 else "0.0001" if size >= _CENT or not size else "0.000001"
    sign = "-" if amount < 0 else ""
    return f"{sign}${size.quantize(Decimal(places)):,}"

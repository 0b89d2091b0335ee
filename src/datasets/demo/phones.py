"""Demo phone numbers that libphonenumber accepts: the drawn digits mapped into valid number ranges.

Uniform random subscriber digits fall outside a country's numbering plan about one time in ten (London
numbers do not start 020 0, 020 2 or 020 5, ...), and ``profiles`` reads only valid numbers. The demo's
guests have valid numbers; its planted problems are elsewhere (formats, duplicates, typos).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import phonenumbers
import pyarrow as pa


@functools.cache
def _prefix_table(fmt: str) -> np.ndarray:
    """(100,) the two leading digits to render for each drawn pair, so that numbers of phone format
    ``fmt`` are valid for libphonenumber (a drawn pair that is already valid maps to itself)."""

    def valid(prefix: int) -> bool:
        return all(
            phonenumbers.is_valid_number(
                phonenumbers.parse(
                    fmt.replace("#", f"{prefix:02d}", 1).replace("#", "", 1).replace("#", fill)
                )
            )
            for fill in "059"
        )

    ok = [p for p in range(100) if valid(p)]
    return np.array([p if p in ok else ok[p % len(ok)] for p in range(100)])


def valid_phones(phones: np.ndarray, city: np.ndarray, formats: Sequence[str]) -> pa.Array:
    """The rendered phones (fixed-width bytes, ``formats[city]``) with their two leading subscriber digits
    moved into ranges libphonenumber knows as valid: the digits drawn stay the same (the random stream
    is unchanged), a pair outside the country's numbering plan is replaced by a valid one."""
    digits = phones.view(np.uint8).reshape(len(phones), phones.dtype.itemsize).copy()
    for c, fmt in enumerate(formats):
        rows = np.flatnonzero(city == c)
        first = fmt.index("#")
        second = fmt.index("#", first + 1)
        drawn = (digits[rows, first] - 48).astype(np.int64) * 10 + (digits[rows, second] - 48)
        fixed = _prefix_table(fmt)[drawn]
        digits[rows, first], digits[rows, second] = 48 + fixed // 10, 48 + fixed % 10
    return pa.array(digits.view(phones.dtype).ravel()).cast(pa.string())

"""Kubernetes resource quantities ("100m", "0.5Gi", 2) as numbers, for checks and capacity sums."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from bereit.api.common import QUANTITY_PATTERN

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units (cores, bytes); ValueError when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = value.strip()
    if not re.fullmatch(QUANTITY_PATTERN, text):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as '500m', '2' or '512Mi'")
    number = re.match(r"^[0-9.]+", text).group(0)
    suffix = text[len(number):]
    try:
        if suffix.startswith("e"):
            return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
        return Decimal(number) * _SUFFIXES[suffix]
    except (InvalidOperation, KeyError) as error:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from error


def cpu_cores(value: str | int | float) -> float:
    return float(parse_quantity(value))


def memory_bytes(value: str | int | float) -> int:
    return int(parse_quantity(value))


def format_cores(cores: float) -> str:
    """Cores for messages: '8', '0.5', '12.25'."""
    return f"{cores:.3f}".rstrip("0").rstrip(".")


def format_bytes(size: int) -> str:
    for unit, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size >= factor:
            return f"{size / factor:.1f}".rstrip("0").rstrip(".") + unit
    return str(size)

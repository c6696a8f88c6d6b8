"""Checks of the JSON values a record reads: a reader keeps a value only of its declared type
(JSON has no int/bool/float split of its own: ``true`` is not a number here)."""

from __future__ import annotations

from typing import Any, TypeGuard


def is_number(value: Any) -> TypeGuard[int | float]:
    """An int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_integer(value: Any) -> TypeGuard[int]:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def number(value: Any) -> float | None:
    """``value`` as a float, None when it is not a number."""
    return float(value) if is_number(value) else None


def integer(value: Any) -> int | None:
    """``value`` when it is an int, else None."""
    return value if is_integer(value) else None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """``value`` when it is a string, else None."""
    return value if isinstance(value, str) else None

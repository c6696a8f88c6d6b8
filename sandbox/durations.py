"""Parse human durations (``90``, ``90s``, ``2m``, ``1h30m``, ``500ms``, ``7d``) and sizes
(``4096``, ``512K``, ``64M``, ``1G``): one parser per kind of unit, for the command line and
scenario files alike. A bare number is in the option's documented unit (seconds; bytes, or MB
where the option says so)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; a bare number is seconds. Raises ValueError on anything else."""
    text = str(text).strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 2m, 1h30m)")
    return total


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*((?:([kmgt])i?)?b?)")
MiB = 2**20


def parse_size(text: str | int | float, bare: int = 1) -> int:
    """Bytes in ``text``: K, M, G, T are powers of 1024 (``512M``, ``1GiB``); a bare number
    is counted in ``bare`` bytes (1: bytes). Raises ValueError on anything else."""
    match = _SIZE.fullmatch(str(text).strip().lower())
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 4096, 512K, 64M, 1G)")
    scale = 1024 ** " kmgt".index(match.group(3) or " ") if match.group(2) else bare
    return int(float(match.group(1)) * scale)


def parse_megabytes(text: str | int | float) -> float:
    """MB (2^20 bytes) in ``text``: a size such as ``512M`` or ``1G``; a bare number is MB."""
    return parse_size(text, bare=MiB) / MiB

"""Parse human durations (``90``, ``90s``, ``2m``, ``1h30m``, ``500ms``, ``7d``) and sizes
(``4096``, ``512K``, ``64M``, ``1G``)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a bare number is seconds. Raises ValueError on anything else."""
    text = text.strip().lower()
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


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?")


def parse_size(text: str) -> int:
    """Bytes in ``text``: a bare number is bytes; K, M, G, T are powers of 1024. Raises
    ValueError on anything else."""
    match = _SIZE.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 4096, 512K, 64M, 1G)")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " "))

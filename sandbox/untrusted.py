"""Names the workload made (process titles, command lines, file names), made safe to show.

A workload chooses its process titles and file names: they may hold control characters
(``\\x1b[2J``, ``\\a``, ``\\r``, newlines), bytes that are not UTF-8 (read from /proc or a
directory as ``str`` with surrogateescapes, or as ``bytes``), rich markup (``[/]``), HTML or
markdown links. Every output goes through one of these helpers:

- :func:`shown`: one printable line; control, format and undecodable characters escaped
  (``\\x1b``, ``\\xff``, ``\\n``, ``\\u202e``), a backslash doubled so an escape cannot be
  forged. It is also XML 1.0-safe (junit.xml) and encodes as UTF-8.
- :func:`rich_text`: a rich ``Text`` of :func:`shown`, never read as markup.
- :func:`markup`: :func:`shown` escaped for a rich markup string.
- :func:`html_text`: :func:`shown`, HTML-escaped.
- :func:`md_text`: :func:`shown` as a markdown literal: no HTML, no link, image, emphasis or
  autolink, no table cell break.
"""

from __future__ import annotations

import html
import os
import unicodedata

from rich.markup import escape as _markup_escape
from rich.text import Text

#: Unicode categories shown escaped: controls, formats (bidi overrides, zero-width), lone
#: surrogates (undecodable bytes), private use, unassigned (U+FFFE, U+FFFF), line and
#: paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
#: Characters markdown (CommonMark, GFM) gives a meaning inside a line; ``:`` and ``@``
#: break GFM's bare autolinks (``http://``, ``a@b.c``), as ``www\.`` does ``www.``.
_MD_SPECIAL = frozenset("\\`*_[]|~!:@")


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    if unicodedata.category(ch) not in _ESCAPED_CATEGORIES:
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def shown(name: object) -> str:
    """``name`` (str, bytes, a path or any object's str) as one printable line: control
    characters and undecodable bytes escaped; None is empty."""
    if name is None:
        return ""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "surrogateescape")
    name = name if isinstance(name, str) else str(name)
    if name.isprintable() and "\\" not in name:
        return name
    return "".join(_escape_char(ch) for ch in name)


def rich_text(name: object, style: str = "") -> Text:
    """A rich Text of :func:`shown` (a Text is never parsed as markup)."""
    return Text(shown(name), style=style)


def markup(name: object) -> str:
    """:func:`shown`, escaped to sit inside a rich markup string."""
    return _markup_escape(shown(name))


def html_text(name: object) -> str:
    """:func:`shown`, HTML-escaped (quotes too, for attributes)."""
    return html.escape(shown(name))


def md_text(name: object) -> str:
    """:func:`shown` as a literal in markdown text or a table cell: ``<`` ``>`` ``&`` as
    entities, markdown punctuation backslash-escaped."""
    text = "".join(f"\\{ch}" if ch in _MD_SPECIAL else ch for ch in shown(name))
    return html.escape(text.replace("www.", "www\\."), quote=False)

"""Text for a terminal: untrusted strings shown, never obeyed, and columns that line up.

Ids and names come from span attributes, stored rows (any writer of a ClickHouse server, the
call id a span names), provider export files and mapping files. The processor cleans ids as
they arrive, but a terminal is where an escape sequence (``\\x1b[2J``), a carriage return or
a bidi override (U+202E) would act: redraw the screen, overwrite a number, reverse a line.
So every table cell and error line is passed through ``terminal_text`` on its way out.
"""

from __future__ import annotations

import unicodedata

# Control (Cc), format (Cf: bidi controls, zero-width), line/paragraph separators and lone
# surrogates (which would also fail to encode). Other characters, non-ASCII letters and
# emoji included, are shown as they are.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def terminal_text(text: str) -> str:
    """``text`` with control, format and separator characters written as visible escapes
    (``\\x1b``, ``\\x0d``, ``\\u202e``), in Python's notation: the reader sees that they
    are there, and the terminal does not act on them. Backslashes are left as they are."""
    if text.isprintable():  # fast path: the usual id has nothing to escape
        return text
    return "".join(
        _escape(c) if unicodedata.category(c) in _ESCAPED_CATEGORIES else c for c in text
    )


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and fullwidth characters take
    two, combining marks none, others one (wcwidth's rule, without its tables)."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` display columns (left-aligned by default)."""
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill

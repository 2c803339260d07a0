"""Text for a terminal: strings from files shown escaped, never acted on.

Feature names, target names, class labels and any other string read from a model file or a
CSV file may hold characters a terminal acts on: escape sequences (``ESC [ ... m``, ``ESC ]``
window titles), C1 controls (``\\x9b``), bidirectional overrides (U+202E), line separators.
:func:`printable` writes each such character as a Python escape (``\\x1b``, ``\\u202e``);
ordinary text, including every printable non-ASCII letter, is left alone.  :func:`json_text`
does the same inside JSON with JSON's own ``\\uXXXX`` escapes, so the document still parses
to exactly the original strings.

Examples
--------
>>> from deltaprop.terminal import printable, json_text
>>> printable("température"), printable("red\\x1b[31m")
('température', 'red\\\\x1b[31m')
>>> import json
>>> text = json_text({"name": "a\\u202eb"})
>>> "\\u202e" in text, json.loads(text)["name"] == "a\\u202eb"
(False, True)
"""

from __future__ import annotations

import json
from typing import Any


def _python_escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable(text: str) -> str:
    """``text`` with every non-printable character (``str.isprintable``) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _python_escape(c) for c in text)


def json_text(document: Any, indent: int | None = 2) -> str:
    """``json.dumps(document)`` (strict, UTF-8 letters kept) with every non-printable
    character other than the layout's newlines written as a ``\\uXXXX`` escape."""
    text = json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)

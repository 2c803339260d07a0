"""Terminal text: control characters from files are escaped, data stays exact."""

from __future__ import annotations

import json

import pytest

from deltaprop.terminal import json_text, printable

NASTY = ["red\x1b[31m", "title\x1b]0;pwned\x07", "csi\x9b2J", "rtl\u202eevil", "line\u2028sep",
         "tag\U000e0041", "nul\x00", "del\x7f"]


@pytest.mark.parametrize("text", NASTY)
def test_printable_escapes_what_a_terminal_acts_on(text):
    shown = printable(text)
    assert shown.isprintable()
    assert shown.encode("unicode_escape").decode() == shown.replace("\\", "\\\\")  # ASCII-safe


def test_printable_leaves_ordinary_text_alone():
    for text in ("plain", "température", "R²", "日本語", "a b\tc".replace("\t", " ")):
        assert printable(text) is text


@pytest.mark.parametrize("text", NASTY)
def test_json_text_escapes_and_round_trips(text):
    doc = {"name": text, "list": [text, 1.5, None]}
    out = json_text(doc)
    assert all(c.isprintable() or c == "\n" for c in out)
    assert json.loads(out) == doc


def test_json_text_keeps_letters():
    assert json_text({"a": "R² température"}, indent=None) == '{"a": "R² température"}'

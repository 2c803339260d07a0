"""CSV tables: exact labels, numbers beyond float64, and where a quote was left open."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop.tabular import (
    LabelRangeError,
    TableError,
    label_column,
    numeric_matrix,
    read_csv,
)


def _table(tmp_path, text: str):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return read_csv(str(path))


# ---------------------------------------------------------------------- labels
def test_integer_labels_beyond_2_53_are_kept_exactly(tmp_path):
    """Through a float, 9007199254740993 became 9007199254740992 (issue 13, item 7)."""
    table = _table(tmp_path, "x,y\n1,9007199254740993\n2,9007199254740992\n3,-4\n")
    labels = label_column(table, "y")
    assert labels.dtype == np.int64
    assert labels.tolist() == [9007199254740993, 9007199254740992, -4]


def test_integral_floats_are_integer_labels(tmp_path):
    labels = label_column(_table(tmp_path, "x,y\n1,1.0\n2,2.0\n3,2\n4,1e17\n"), "y")
    assert labels.dtype == np.int64 and labels.tolist() == [1, 2, 2, 10**17]


def test_non_integral_numbers_are_float_labels(tmp_path):
    labels = label_column(_table(tmp_path, "x,y\n1,0.5\n2,9007199254740993\n"), "y")
    assert labels.dtype == np.float64 and labels[0] == 0.5


@pytest.mark.parametrize("cells, match", [
    (["18446744073709551616", "1"], "beyond the 64-bit range"),
    (["1e20", "2"], "'1e20' is beyond the 64-bit range"),  # was -9223372036854775808
    (["2.0000000000000001", "1"], "not exactly a float64 number"),
    (["9007199254740993.0", "1"], "not exactly a float64 number"),
])
def test_labels_that_cannot_be_kept_exactly_are_refused(tmp_path, cells, match):
    text = "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells))
    with pytest.raises(LabelRangeError, match=match) as info:
        label_column(_table(tmp_path, text), "y")
    assert "line 2, column 'y'" in str(info.value)


def test_text_labels_stay_text(tmp_path):
    labels = label_column(_table(tmp_path, "x,y\n1,a\n2,10\n"), "y")
    assert labels.tolist() == ["a", "10"]


# ---------------------------------------------------------------------- numbers
def test_a_finite_number_beyond_float64_is_not_called_non_finite(tmp_path):
    table = _table(tmp_path, "a,b\n1,1e309\n")
    with pytest.raises(TableError, match=r"line 2, column 'b': '1e309' is beyond the range "
                                         "of float64") as info:
        numeric_matrix(table, ["a", "b"])
    assert "not a finite" not in str(info.value)
    with pytest.raises(TableError, match="'inf' is not a finite number"):
        numeric_matrix(_table(tmp_path, "a,b\n1,inf\n"), ["a", "b"])


# ---------------------------------------------------------------------- quotes and lines
def test_an_unterminated_quote_is_reported_where_it_opens(tmp_path):
    """It was reported as "line 62 has 2 fields" (issue 13, item 10)."""
    text = 'a,b,y\n1,"2,3\n' + "".join(f"{i},{i},{i}\n" for i in range(60))
    with pytest.raises(TableError) as info:
        _table(tmp_path, text)
    message = str(info.value)
    assert "line 2, column 'b'" in message and "never closed" in message
    assert "line 62" not in message and "62 has" not in message


def test_an_unterminated_quote_in_the_header(tmp_path):
    with pytest.raises(TableError, match="line 1, field 2: a quoted field opens here"):
        _table(tmp_path, 'a,"b\n1,2\n')


def test_records_spanning_lines_are_named_by_their_first_line(tmp_path):
    table = _table(tmp_path, 'a,note\n1,"two\nlines"\n2,x\n')
    assert table.rows == [["1", "two\nlines"], ["2", "x"]] and table.lines == [2, 4]
    with pytest.raises(TableError, match="line 2 has 3 fields"):
        _table(tmp_path, 'a,note\n1,"two\nlines",3\n2,x\n')


def test_a_stray_quote_inside_a_field_is_an_error(tmp_path):
    """RFC 4180: a closing quote must end its field (strict parsing)."""
    with pytest.raises(TableError, match="line 2"):
        _table(tmp_path, 'a,b\n1,"2"3\n')

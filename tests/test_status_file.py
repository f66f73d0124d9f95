"""The account status file (a day's payments): one id per line, an optional note, bad lines
reported with their line number and reason."""

from __future__ import annotations

import io

import pytest

from dialer.formats.status_file import read_status_file


def read(text: bytes) -> list[tuple[int, str, str, str | None]]:
    return list(read_status_file(io.BytesIO(text)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"A1\nA2\n", [(1, "A1", "", None), (2, "A2", "", None)]),
        (b"account_id,note\nA1,pix 1\n", [(2, "A1", "pix 1", None)]),
        (
            b"\xef\xbb\xbfconta;ref\r\nA1;ref; with; separators\r\n",
            [(2, "A1", "ref; with; separators", None)],
        ),
        (b'"A1"\t"boleto 2"\n', [(1, "A1", "boleto 2", None)]),
        (b"# payments of 2026-11-23\n\nA1\n", [(3, "A1", "", None)]),
        (b";pix\n", [(1, "", "", "account_id is empty")]),
        (b"A" * 65 + b"\n", [(1, "A" * 65, "", "account_id is longer than 64 characters")]),
        (b"A\x071\n", [(1, "A\x071", "", "control characters are not allowed")]),
        (b"A1;" + b"x" * 501 + b"\n", [(1, "A1", "", "note is longer than 500 characters")]),
        (b"A1\nA1\n", [(1, "A1", "", None), (2, "A1", "", "duplicate of line 1")]),
        ("Jo\u00e3o;refer\u00eancia\n".encode("cp1252"), [(1, "Jo\u00e3o", "refer\u00eancia", None)]),
    ],
)
def test_status_file_lines(text, expected):
    assert read(text) == expected

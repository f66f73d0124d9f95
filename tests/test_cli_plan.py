"""`python -m dialer plan`: the contract, run as a supervisor would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.cli.main import main

CSV = """account_id;name;phone;due_date;amount;consent_voice;consent_sms;status
A1;Maria Silva;(11) 98765-4321;01/11/2026;1.234,56;sim;sim;open
A1;Maria Silva;(21) 98765-4321;01/11/2026;1.234,56;sim;não;open
A2;João;11 91234-5678;2026-11-20;10;sim;sim;open
A3;Pago;11 91234-0000;2026-11-01;10;sim;sim;paid
A4;Bad;11 91234-0001;2026-02-30;10;sim;sim;open
"""


@pytest.fixture
def run(capsys):
    """``python -m dialer ARGS`` in this process, its output captured."""

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out.out, out.err)

    return call


def test_the_entry_point_runs_as_python_dash_m(tmp_path: Path):
    """The one run as its own process: ``python -m dialer`` is what people type."""
    f = tmp_path / "c.csv"
    f.write_text(CSV)
    out = subprocess.run(
        [sys.executable, "-m", "dialer", "plan", str(f), "--now", "2026-11-23T10:00:00-03:00", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 8 and "line 6, column due_date" in out.stderr


def test_plan_json(run, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(CSV, encoding="cp1252")
    h = tmp_path / "h.jsonl"
    h.write_text(
        json.dumps(
            {
                "account_id": "A1",
                "phone": "+5511987654321",
                "channel": "voice",
                "at": "2026-11-23T08:30:00-03:00",
                "outcome": "no_answer",
            }
        )
        + "\n"
    )
    out = run("plan", str(f), "--now", "2026-11-23T10:00:00-03:00", "--history", str(h), "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    by = {(r["account_id"], r["phone"], r["channel"]): r for r in rows}
    assert len(rows) == 8
    for r in rows:
        assert {"account_id", "phone", "channel", "allowed", "reasons", "not_before", "time_zones"} <= set(r)
    assert by[("A1", "+5511987654321", "voice")]["reasons"] == ["attempt_cap"]
    assert by[("A1", "+5511987654321", "voice")]["not_before"] == "2026-11-24T08:00:00-03:00"
    assert by[("A1", "+5511987654321", "sms")]["allowed"] is True
    assert by[("A1", "+5521987654321", "voice")]["allowed"] is True
    assert by[("A1", "+5521987654321", "sms")]["reasons"] == ["no_consent"]
    assert by[("A1", "+5521987654321", "sms")]["not_before"] is None
    assert by[("A2", "+5511912345678", "voice")]["reasons"] == ["before_min_days_past_due"]
    assert by[("A2", "+5511912345678", "voice")]["not_before"] == "2026-11-30T08:00:00-03:00"
    assert by[("A3", "+5511912340000", "sms")]["reasons"] == ["account_closed"]
    assert by[("A1", "+5511987654321", "voice")]["time_zones"] == ["America/Sao_Paulo"]
    assert "line 6, column due_date: is not a real calendar date" in out.stderr


def test_plan_table_and_errors(run, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(CSV)
    out = run("plan", str(f), "--now", "2026-11-23T10:00:00-03:00")
    assert out.returncode == 0
    assert "attempt_cap" not in out.stdout and "before_min_days_past_due" in out.stdout
    bad = run("plan", str(f), "--now", "2026-11-23T10:00:00")
    assert bad.returncode == 2 and "has no UTC offset" in bad.stderr
    missing = run("plan", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "h.csv").write_text("conta;nome\n1;2\n")
    header = run("plan", str(tmp_path / "h.csv"))
    assert header.returncode == 2 and "missing required column(s)" in header.stderr
    (tmp_path / "bad.jsonl").write_text('{"account_id": "A1"}\n')
    hist = run("plan", str(f), "--history", str(tmp_path / "bad.jsonl"))
    assert hist.returncode == 2 and "line 1: field 'phone'" in hist.stderr

"""Hostile or odd input, end to end: formulas in the report, old Mac line ends, binary
files and huge cells — through the command line and the HTTP upload, never a traceback."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dialer.cli.main import main
from dialer.runtime.wiring import Runtime
from dialer.web import auth
from dialer.web.app import create_app
from dialer.web.common import Services
from tests.runtime_helpers import HEADER, make_rig

ROWS = (
    "A1;Ana;11987654320;10/11/2026;10;sim;sim;1980",
    '@A2;=HYPERLINK("x");11987654321;10/11/2026;10;sim;sim;1980',
)
BIG = "x" * 100_000


@pytest.fixture
def cli(redis_url, tmp_path, monkeypatch, capsys):
    """``python -m dialer ARGS`` in this process (``main([...])``), with its output captured."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DIALER_DATA_DIR", str(tmp_path / "var"))

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse refused the arguments
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        out = subprocess.CompletedProcess(list(args), code, captured.out, captured.err)
        if ok:
            assert out.returncode == 0, out.stderr
        return out

    return run


def test_report_neutralises_formulas_and_has_an_excel_variant(cli, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + "\n".join(ROWS) + "\n")
    cli("load", str(f), "--campaign", "nov")
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    cli("report", "nov", "--out", str(plain))
    cli("report", "nov", "--out", str(excel), "--excel")

    data = plain.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and data.startswith(b"account_id,name,")
    by_id = {r["account_id"]: r for r in csv.DictReader(io.StringIO(data.decode()))}
    assert sorted(by_id) == ["'@A2", "A1"]
    assert by_id["'@A2"]["name"] == '\'=HYPERLINK("x")' and by_id["A1"]["amount"] == "10.00"

    data = excel.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfaccount_id;name;status;")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert {r["account_id"]: r["name"] for r in rows} == {"A1": "Ana", "'@A2": '\'=HYPERLINK("x")'}
    assert cli("report", "nov", "--excel").stdout.startswith("\ufeffaccount_id;name;")
    assert "as Excel in a Brazilian" in cli("report", "--help").stdout


def test_load_old_mac_file(cli, tmp_path: Path):
    f = tmp_path / "mac.csv"
    f.write_bytes(
        (HEADER.rstrip("\n") + "\r" + "\r".join(ROWS) + "\rA3;;1;x;y;sim;sim;1980\r").encode("cp1252")
    )
    errors = tmp_path / "errors.csv"
    out = cli("load", str(f), "--campaign", "mac", "--errors", str(errors))
    assert "3 rows read, 2 accepted" in out.stdout
    assert "4,name,,is required" in errors.read_text()


def test_load_binary_file_is_a_clear_error(cli, tmp_path: Path):
    f = tmp_path / "noise.csv"
    f.write_bytes(os.urandom(2_000_000))
    out = cli("load", str(f), "--campaign", "noise", ok=False)
    assert out.returncode == 2 and out.stderr.startswith("error: line 1: ") and "Traceback" not in out.stderr
    assert len(out.stderr) < 500


def test_load_huge_cell_is_reported_short(cli, tmp_path: Path):
    f = tmp_path / "big.csv"
    big = '"' + "\n".join(BIG[i : i + 1000] for i in range(0, len(BIG), 1000)) + '"'
    f.write_text(HEADER + f"A1;{big};11987654320;10/11/2026;10;sim;sim;1980\n{ROWS[0]}\n")
    errors = tmp_path / "errors.csv"
    out = cli("load", str(f), "--campaign", "big", "--errors", str(errors))
    assert "1 rejected" in out.stdout
    text = errors.read_text()
    assert len(text) < 500 and "is longer than 120 characters" in text and "…" in text
    header = tmp_path / "header.csv"
    header.write_text("account_id;name;phone;due_date;" + BIG[:60_000] + "\n")
    refused = cli("load", str(header), "--campaign", "big", ok=False)
    assert refused.returncode == 2 and len(refused.stderr) < 500


# ------------------------------------------------------------------ the HTTP upload

TOKENS = {"admin": "a" * 24, "supervisor": "s" * 24, "operator": "o" * 24}
SUPERVISOR = {"Authorization": f"Bearer {TOKENS['supervisor']}"}


@pytest.fixture
async def api(redis_url, settings):
    rig = await make_rig(redis_url, settings, datetime.fromisoformat("2026-11-23T10:00:00-03:00"))
    runtime = Runtime(settings, rig.policy, rig.cadence, rig.clock, b"test")
    services = Services(runtime, rig.store, rig.telephony, rig.sms, auth.TokenBook.from_pairs(TOKENS))
    client = TestClient(TestServer(create_app(services)))
    await client.start_server()
    yield client
    await client.close()
    await rig.close()


async def test_upload_old_mac_file_and_binary(api):
    body = (HEADER.rstrip("\n") + "\r" + "\r".join(ROWS) + "\r").encode()
    r = await api.post("/api/campaigns/mac/upload", data=body, headers=SUPERVISOR)
    assert r.status == 200 and (await r.json())["accepted"] == 2
    r = await api.post("/api/campaigns/noise/upload", data=io.BytesIO(os.urandom(60_000)), headers=SUPERVISOR)
    answer = await r.json()
    assert r.status == 400 and answer["error"].startswith("line 1: ") and len(answer["error"]) < 400

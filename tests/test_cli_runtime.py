"""The runtime commands, run as a supervisor runs them, against the test redis-server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.cli.main import main
from tests.runtime_helpers import HEADER


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


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_load_status_lifecycle_audit(cli, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(
        HEADER + "A1;Ana;11987654320;10/11/2026;10;sim;sim;1980\n"
        "A2;Bia;11987654323;10/11/2026;10;sim;sim;1980\nA3;;123;x;y;sim;sim;1980\n"
    )
    errors = tmp_path / "errors.csv"
    out = cli("load", str(f), "--campaign", "nov", "--json", "--errors", str(errors))
    summary = json.loads(out.stdout)
    assert (summary["rows_read"], summary["accepted"], summary["rejected"]) == (3, 2, 1)
    assert "line" in errors.read_text() and "4,name,,is required" in errors.read_text()
    again = json.loads(cli("load", str(f), "--campaign", "nov", "--json").stdout)
    assert (again["unchanged"], again["new"]) == (2, 0)

    status = json.loads(cli("status", "nov", "--json").stdout)
    assert (status["state"], status["accounts"], status["contacts"], status["scheduled"]) == (
        "created",
        2,
        2,
        2,
    )
    assert "nov -" not in cli("pause", "nov", ok=False).stdout
    refused = cli("pause", "nov", ok=False)
    assert refused.returncode == 1 and "it is created" in refused.stderr
    cli("start", "nov")
    cli("pause", "nov")
    assert json.loads(cli("status", "nov", "--json").stdout)["state"] == "paused"
    campaigns = jsonl(cli("campaigns", "--json").stdout)
    assert [c["name"] for c in campaigns] == ["nov"]
    lifecycle = jsonl(cli("audit", "--campaign", "nov", "--json").stdout)
    assert [e["kind"] for e in lifecycle] == ["created", "loaded", "loaded", "start", "pause"]
    assert lifecycle[3]["actor"].startswith("cli:")
    missing = cli("status", "nope", "--json", ok=False)
    assert missing.returncode == 1 and "no campaign named 'nope'" in missing.stderr


def test_account_status_command(cli, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + "A1;Ana;11987654320;10/11/2026;10;sim;sim;1980\n")
    cli("load", str(f), "--campaign", "nov")
    out = cli("account", "A1", "--status", "paid", "--note", "boleto 0042")
    assert out.stdout.strip() == "A1 in nov: open -> paid"
    again = json.loads(cli("account", "A1", "--status", "paid", "--json").stdout)
    assert again["campaigns"] == [{"campaign": "nov", "from": "paid", "to": "paid", "changed": False}]
    (event,) = [e for e in jsonl(cli("audit", "--account", "A1", "--json").stdout) if e["kind"] == "status"]
    assert event["note"] == "boleto 0042" and event["actor"].startswith("cli:")
    missing = cli("account", "B9", "--status", "paid", ok=False)
    assert missing.returncode == 1 and "account 'B9' is not in any campaign" in missing.stderr
    bad = cli("account", "A1", "--status", "settled", ok=False)
    assert bad.returncode == 2 and "invalid choice: 'settled'" in bad.stderr


def test_account_status_from_a_payments_file(cli, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(
        HEADER + "A1;Ana;11987654320;10/11/2026;10;sim;sim;1980\n"
        "A2;Bia;11987654321;10/11/2026;10;sim;sim;1980\nA3;Caio;11987654322;10/11/2026;10;sim;sim;1980\n"
    )
    cli("load", str(f), "--campaign", "nov")
    cli("account", "A3", "--status", "paid")
    payments = tmp_path / "pagamentos.csv"
    payments.write_text("conta;referencia\nA1;pix E2E1\nA2\nA3;boleto 9\nZZ9;pix E2E2\nA1;again\n")
    errors = tmp_path / "errors.csv"
    out = cli("account", "--file", str(payments), "--status", "paid", "--errors", str(errors), "--json")
    summary = json.loads(out.stdout)
    assert (summary["rows"], summary["changed"], summary["unchanged"], summary["rejected"]) == (5, 2, 1, 2)
    assert summary["errors"] == [
        {"line": 5, "value": "ZZ9", "reason": "not in any campaign"},
        {"line": 6, "value": "A1", "reason": "duplicate of line 2"},
    ]
    assert errors.read_text().splitlines()[1:] == ["5,ZZ9,not in any campaign", "6,A1,duplicate of line 2"]
    (event,) = [e for e in jsonl(cli("audit", "--account", "A1", "--json").stdout) if e["kind"] == "status"]
    assert event["note"] == "pix E2E1"
    both = cli("account", "A1", "--file", str(payments), "--status", "paid", ok=False)
    assert both.returncode == 2 and "one account id or --file FILE" in both.stderr


def test_report_command(cli, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(
        HEADER
        + "A1;Ana;11987654320;10/11/2026;10;sim;sim;1980\nA2;Bia;11987654321;10/11/2026;10;sim;sim;1980\n"
    )
    cli("load", str(f), "--campaign", "nov")
    cli("account", "A2", "--status", "disputed")
    out = tmp_path / "report.csv"
    cli("report", "nov", "--out", str(out))
    lines = out.read_text().splitlines()
    assert lines[0].startswith("account_id,name,status,due_date,amount,")
    by_id = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert sorted(by_id) == ["A1", "A2"] and by_id["A2"][2] == "disputed" and by_id["A1"][2] == "open"
    assert cli("report", "nov").stdout.splitlines()[0] == lines[0]  # standard output by default
    missing = cli("report", "nope", ok=False)
    assert missing.returncode == 1 and "no campaign named 'nope'" in missing.stderr


def test_wrong_header_refused(cli, tmp_path: Path):
    f = tmp_path / "bad.csv"
    f.write_text("conta;nome\n1;2\n")
    out = cli("load", str(f), "--campaign", "x", ok=False)
    assert out.returncode == 2 and "missing required column(s)" in out.stderr
    assert jsonl(cli("campaigns", "--json").stdout) == []


def test_suppression_commands(cli, tmp_path: Path):
    reg = tmp_path / "nao-me-ligue.csv"
    reg.write_text(
        "telefone;data_cadastro\n(11) 98765-4321;01/11/2026\n11 91234-5678;\nnot a phone;\n"
        "21 98765-4321;2026-13-01\n"
    )
    out = json.loads(
        cli(
            "suppress",
            "import",
            str(reg),
            "--source",
            "nao-me-ligue-sp",
            "--effective-after-days",
            "30",
            "--json",
        ).stdout
    )
    assert (out["imported"], out["rejected"]) == (2, 2)
    cli("suppress", "add", "+55 21 99999-0000", "--channel", "sms", "--reason", "opt_out")
    entries = {(e["number"], e["channel"]): e for e in jsonl(cli("suppress", "list", "--json").stdout)}
    assert entries[("+5511987654321", "*")]["effective_from"] == "2026-12-01T00:00:00-03:00"
    assert entries[("+5511912345678", "*")]["effective_from"] is None
    assert entries[("+5521999990000", "sms")]["reason"] == "opt_out"
    assert cli("suppress", "remove", "+5521999990000", "--channel", "sms").returncode == 0
    assert cli("suppress", "remove", "+5521999990000", "--channel", "sms", ok=False).returncode == 1
    kinds = [e["kind"] for e in jsonl(cli("audit", "--json").stdout)]
    assert kinds == ["suppress_import", "suppress", "unsuppress", "unsuppress"]


def test_serve_then_audit_answers_why(cli, redis_url, tmp_path: Path):
    """A debtor past D+10 whose phone has no voice consent: the audit says why nobody called."""
    import signal
    import time

    f = tmp_path / "c.csv"
    f.write_text(HEADER + "A1;Ana;11987654320;10/11/2026;10;não;sim;1980\n")
    cli("load", str(f), "--campaign", "c", "--start")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER")}
    env.update({"REDIS_URL": redis_url, "DIALER_DATA_DIR": str(tmp_path / "var")})
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dialer",
                "serve",
                "--no-api",
                "--no-progress",
                "--clock-start",
                "2026-11-23T10:00:00-03:00",
                "--speed",
                "60",
            ],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            events: list[dict] = []
            while time.monotonic() < deadline and not any(e["kind"] == "step_skipped" for e in events):
                time.sleep(0.3)
                out = cli("audit", "--account", "A1", "--json", ok=False)
                events = jsonl(out.stdout) if out.returncode == 0 else []
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    decisions = [e for e in events if e["kind"] == "decision" and e["channel"] == "voice"]
    assert decisions and decisions[0]["reasons"] == ["no_consent"] and decisions[0]["not_before"] is None
    assert any(e["kind"] == "step_skipped" and e["step"] == "d10_call" for e in events)
    text = log.read_text()
    assert "stopping" in text
    # without a terminal, progress is a log line per campaign (the last one written at stop)
    lines = [line for line in text.splitlines() if "regua.progress" in line]
    assert lines and "campaign c running: 1 contacts" in lines[-1]
    assert re.search(r"held back by the rules: no_consent \d+", lines[-1]), lines[-1]


def test_summary_line_says_what_a_supervisor_asks():
    from dialer.runtime.console import summary_line

    status = {
        "name": "nov",
        "state": "running",
        "contacts": 400,
        "scheduled": 300,
        "queued": 5,
        "in_flight": 2,
        "counters": {
            "attempts:voice": 90,
            "outcome:answered_verified": 20,
            "outcome:voicemail": 10,
            "outcome:no_answer": 30,
            "outcome:busy": 5,
            "outcome:sms_sent": 40,
            "done": 7,
            "blocked:outside_calling_hours": 50,
            "blocked:no_consent": 3,
            "blocked:holiday": 60,
            "blocked:attempt_cap": 1,
        },
    }
    line = summary_line(status)
    assert line.startswith("campaign nov running: 400 contacts, 300 scheduled, 5 queued, 2 in flight; ")
    assert "90 calls (20 verified, 10 machine, 35 no answer/busy), 40 SMS, 7 done" in line
    # the three biggest reasons, biggest first
    assert line.endswith("held back by the rules: holiday 60, outside_calling_hours 50, no_consent 3")
    empty = summary_line({**status, "counters": {}})
    assert "0 calls" in empty and empty.endswith("held back by the rules: nothing")


def test_commands_run_on_the_sandbox_services_clock(cli, redis_url):
    """While a sandbox service runs on a simulated clock it publishes it; a command run
    meanwhile is stamped with that time, not the wall clock's. Withdrawn, the wall clock."""
    import asyncio
    import time
    from datetime import datetime

    from dialer.store import Store

    async def publish(at: datetime | None) -> None:
        store = await Store.connect(redis_url)
        await store.publish_clock(at, 60.0, time.time(), 30)
        await store.close()

    asyncio.run(publish(datetime.fromisoformat("2026-11-23T10:00:00-03:00")))
    cli("suppress", "add", "+55 11 91234-5678")
    asyncio.run(publish(None))
    cli("suppress", "add", "+55 11 91234-5679")
    first, second = [e for e in jsonl(cli("audit", "--json").stdout) if e["kind"] == "suppress"]
    assert first["at"].startswith("2026-11-23T13:0")  # 10:00 in São Paulo, a few simulated minutes on
    assert abs(datetime.fromisoformat(second["at"]).timestamp() - time.time()) < 60  # the wall clock


def test_payments_commands_list_charges_and_report(cli, tmp_path: Path, monkeypatch):
    """A signed-webhook company: load, a payment arrives, every view shows it."""
    import asyncio
    from datetime import UTC, datetime
    from decimal import Decimal

    from dialer.formats.config_file import load_settings
    from dialer.rules.charges import EventKind, PaymentEvent
    from dialer.runtime.wiring import Runtime, open_store, payments_for

    monkeypatch.setenv("DIALER__PAYMENTS__PROVIDER", "signed://?secret_env=PAY_SECRET")
    monkeypatch.setenv("PAY_SECRET", "a-secret-of-enough-length")
    f = tmp_path / "c.csv"
    f.write_text(
        "account_id;name;phone;due_date;amount;document\n"
        "A-1;Maria;11987654321;01/11/2026;150,00;529.982.247-25\n"
        "A-2;João;11987654322;01/11/2026;80,00;\n"
    )
    loaded = jsonl(cli("load", str(f), "--campaign", "c1", "--json").stdout)[0]
    assert loaded["charges"] == 2

    async def pay() -> None:
        settings = load_settings()
        async with open_store(settings) as store:
            payments = payments_for(Runtime.build(settings), store)
            now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
            await payments.receive(
                [
                    PaymentEvent(
                        "signed:e1", EventKind.PAID, "signed", "", Decimal("150.00"), now, account_id="A-1"
                    )
                ],
                now,
            )

    asyncio.run(pay())
    listed = jsonl(cli("payments", "list", "--json").stdout)
    assert [(p["account"], p["amount"], p["kind"]) for p in listed] == [("A-1", "150.00", "paid")]
    charges = jsonl(cli("payments", "charges", "A-1", "--json").stdout)
    assert charges[0]["standing"] == "paid" and charges[0]["balance"] == "0.00"
    assert cli("payments", "charges", "NOBODY", ok=False).returncode != 0
    status = json.loads(cli("status", "c1", "--json").stdout)
    assert (status["recovered"], status["payments"]) == ("150.00", 1)
    report = cli("report", "c1").stdout.splitlines()
    header = report[0].split(",")
    rows = {r.split(",")[0]: dict(zip(header, r.split(","), strict=True)) for r in report[1:]}
    assert (rows["A-1"]["paid"], rows["A-1"]["balance"], rows["A-1"]["status"]) == ("150.00", "0.00", "paid")
    assert (rows["A-2"]["paid"], rows["A-2"]["balance"]) == ("0.00", "80.00")
    assert "signed" in cli("payments", "webhook").stdout


def test_agreements_commands_offers_special_and_every_view(cli, tmp_path: Path, monkeypatch):
    """Offers for an account, a special offer (validated), an agreement made, and the views:
    ``agreements``, ``agreements show``, ``status`` and the report."""
    import asyncio

    from dialer.formats.config_file import load_settings
    from dialer.runtime.wiring import Runtime, open_store, payments_for

    f = tmp_path / "c.csv"
    f.write_text("account_id;name;phone;due_date;amount\nA-1;Maria;11987654321;01/09/2026;600,00\n")
    cli("load", str(f), "--campaign", "c1", "--json")
    offers = json.loads(cli("agreements", "offers", "c1", "A-1", "--json").stdout)
    assert offers and offers[0]["kind"] == "cash"  # past due on any date: a band applies
    refused = cli("agreements", "special", "A-1", "--interest", "3", ok=False)
    assert refused.returncode != 0 and "above what the contract allows" in refused.stderr
    assert "made" in cli("agreements", "special", "A-1", "--discount", "40", "--installments", "4").stdout
    offers = json.loads(cli("agreements", "offers", "c1", "A-1", "--json").stdout)
    special = offers[0]
    assert special["kind"] == "special" and len(special["installments"]) == 4

    async def accept() -> None:
        settings = load_settings()
        async with open_store(settings) as store:
            runtime = Runtime.build(settings)
            payments = payments_for(runtime, store)
            (state,) = await store.load_accounts("c1", ["A-1"])
            await payments.agreements.accept(
                "c1", state, special["id"], runtime.clock.now(), via="page", actor="test"
            )

    asyncio.run(accept())
    (summary,) = json.loads(cli("agreements", "--json").stdout)
    assert (summary["campaign"], summary["made"], summary["current"]) == ("c1", 1, 1)
    (shown,) = json.loads(cli("agreements", "show", "A-1", "--json").stdout)
    assert shown["status"] == "current" and shown["installments"] == "0/4"
    status = json.loads(cli("status", "c1", "--json").stdout)
    assert status["agreements"]["made"] == 1 and status["agreements"]["current"] == 1
    assert "agreements: 1 made" in cli("status", "c1").stdout
    report = cli("report", "c1").stdout.splitlines()
    header = report[0].split(",")
    row = dict(zip(header, report[1].split(","), strict=True))
    assert (row["status"], row["agreement"], row["agreement_installments"]) == ("agreement", "current", "0/4")
    assert "current" in cli("agreements", "list").stdout

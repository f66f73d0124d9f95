"""Payments end to end on a real Redis: charges per debt, webhooks through the real web app,
reconciliation, attribution; and the pure rules beneath them (tables and properties).

The provider here is the generic signed webhook and the sandbox (no provider server
needed); the Pix API and Asaas adapters are tested against servers shaped like their APIs in
``test_payment_providers`` and end to end in ``test_payment_flows``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain import AccountStatus, Attempt, Channel, Outcome
from dialer.rules.attribution import attribute
from dialer.rules.cadence import Cadence
from dialer.rules.charges import (
    TXID_LENGTH,
    ChargeStatus,
    EventKind,
    PaymentEvent,
    standing,
    totals,
    txid,
    valid_txid,
)
from dialer.rules.documents import cnpj_valid, cpf_valid, normalise_document, with_check_digits
from dialer.rules.policy import Policy
from dialer.runtime.ingest import load_file
from dialer.runtime.payments import Payments
from dialer.runtime.wiring import Runtime
from dialer.store import keys
from dialer.store.codec import to_ms
from dialer.web import auth
from dialer.web.app import create_app
from dialer.web.common import Services
from payments.base import MAX_WEBHOOK_BODY
from payments.sandbox import SandboxPayments
from payments.signed import HEADER, SignedWebhookProvider, sign
from tests.runtime_helpers import make_rig

MON_0700 = datetime.fromisoformat("2026-11-23T07:00:00-03:00")
SECRET = "s3cret-for-the-tests-0123456789"
CPF = "52998224725"


# ------------------------------------------------------------------ documents


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("529.982.247-25", "52998224725"),
        ("52998224725", "52998224725"),
        (" 529 982 247 25 ", "52998224725"),
        ("11.222.333/0001-81", "11222333000181"),
        ("12.ABC.345/01DE-35", "12ABC34501DE35"),  # the Receita's alphanumeric example (2026)
        ("12.abc.345/01de-35", "12ABC34501DE35"),
    ],
)
def test_documents_are_normalised(text, expected):
    assert normalise_document(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("529.982.247-24", "not a valid CPF"),
        ("111.111.111-11", "not a valid CPF"),  # passes the arithmetic, never issued
        ("11.222.333/0001-82", "not a valid CNPJ"),
        ("12.ABC.345/01DE-36", "not a valid CNPJ"),
        ("1234", "must be a CPF (11 digits) or a CNPJ (14 characters)"),
        ("5299822472A", "a CPF has 11 digits"),
        ("", "must be a CPF"),
    ],
)
def test_bad_documents_say_why_without_quoting_the_number(text, reason):
    with pytest.raises(ValueError) as err:
        normalise_document(text)
    assert reason in str(err.value)
    digits = "".join(c for c in text if c.isalnum())
    assert not digits or digits not in str(err.value)


@given(st.from_regex(r"[0-9]{9}", fullmatch=True))
def test_any_cpf_base_with_its_check_digits_is_valid_and_one_changed_digit_is_not(base):
    full = with_check_digits(base)
    if len(set(full)) == 1:
        return
    assert cpf_valid(full)
    for i in (9, 10):
        wrong = full[:i] + str((int(full[i]) + 1) % 10) + full[i + 1 :]
        assert not cpf_valid(wrong)


@given(st.from_regex(r"[0-9A-Z]{12}", fullmatch=True))
def test_any_cnpj_base_letters_included_with_its_check_digits_is_valid(base):
    full = with_check_digits(base)
    if len(set(full)) == 1:
        return
    assert cnpj_valid(full)
    wrong = full[:13] + str((int(full[13]) + 1) % 10)
    assert not cnpj_valid(wrong)


# ------------------------------------------------------------------ charge ids and standing


@given(
    st.text(alphabet="ABC123-_.", min_size=1, max_size=64),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    st.integers(min_value=0, max_value=60),
)
def test_a_txid_is_stable_valid_for_the_pix_api_and_names_one_debt(account, amount, due, installment):
    a = txid(b"k", account, amount, due, installment)
    assert a == txid(b"k", account, amount, due, installment)
    assert len(a) == TXID_LENGTH and valid_txid(a) and a.isalnum() and a.isascii()
    assert a != txid(b"k", account + "x", amount, due, installment)
    assert a != txid(b"k", account, amount + Decimal("0.01"), due, installment)
    assert a != txid(b"k", account, amount, due, installment + 1)
    assert a != txid(b"other key", account, amount, due, installment)


@pytest.mark.parametrize(
    ("amount", "events", "status", "balance", "overpaid"),
    [
        (10000, [], ChargeStatus.ACTIVE, 10000, 0),
        (10000, [("paid", 10000)], ChargeStatus.PAID, 0, 0),
        (10000, [("paid", 4000)], ChargeStatus.PARTIAL, 6000, 0),
        (10000, [("paid", 4000), ("paid", 6000)], ChargeStatus.PAID, 0, 0),
        (10000, [("paid", 10000), ("refund", 10000)], ChargeStatus.ACTIVE, 10000, 0),
        (10000, [("refund", 10000), ("paid", 10000)], ChargeStatus.ACTIVE, 10000, 0),  # refund first
        (10000, [("paid", 10000), ("refund", 2500)], ChargeStatus.PARTIAL, 2500, 0),
        (10000, [("paid", 15000)], ChargeStatus.PAID, 0, 5000),
        (10000, [("paid", 10001)], ChargeStatus.PAID, 0, 0),  # within the 0.01 tolerance below
    ],
)
def test_standing_table(amount, events, status, balance, overpaid):
    paid, refunded = totals([(EventKind(k), c) for k, c in events])
    got = standing(amount, paid, refunded, tolerance_cents=1)
    assert (got.status, got.balance_cents, got.overpaid_cents) == (status, balance, overpaid)


@given(
    st.integers(min_value=1, max_value=10**9),
    st.lists(
        st.tuples(st.sampled_from(list(EventKind)), st.integers(min_value=1, max_value=10**8)), max_size=12
    ),
    st.randoms(),
)
def test_standing_does_not_depend_on_the_order_of_events(amount, events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, b = standing(amount, *totals(events)), standing(amount, *totals(shuffled))
    assert a == b
    assert (a.status is ChargeStatus.PAID) == (a.net_cents >= amount)
    assert a.balance_cents == max(0, amount - a.net_cents) >= 0


def _attempt(step: str, channel: Channel, at: str, outcome: Outcome) -> Attempt:
    return Attempt("A1", "+5511987654321", channel, datetime.fromisoformat(at), outcome, f"{step}-x", step)


@pytest.mark.parametrize(
    ("history", "step", "channel"),
    [
        ([], "", ""),
        ([_attempt("d1", Channel.SMS, "2026-11-20T10:00:00-03:00", Outcome.SMS_DELIVERED)], "d1", "sms"),
        (
            [
                _attempt("d1", Channel.SMS, "2026-11-20T10:00:00-03:00", Outcome.SMS_DELIVERED),
                _attempt("d10_call", Channel.VOICE, "2026-11-22T10:00:00-03:00", Outcome.ANSWERED_VERIFIED),
            ],
            "d10_call",
            "voice",
        ),
        (  # a call nobody answered is listed, not credited
            [
                _attempt("d1", Channel.SMS, "2026-11-20T10:00:00-03:00", Outcome.SMS_SENT),
                _attempt("d10_call", Channel.VOICE, "2026-11-22T10:00:00-03:00", Outcome.NO_ANSWER),
            ],
            "d1",
            "sms",
        ),
        (  # a contact after the payment is not what brought it
            [_attempt("d20_call", Channel.VOICE, "2026-11-25T10:00:00-03:00", Outcome.ANSWERED_VERIFIED)],
            "",
            "",
        ),
    ],
)
def test_attribution_credits_the_last_contact_that_reached_someone(history, step, channel):
    got = attribute(history, datetime.fromisoformat("2026-11-23T12:00:00-03:00"))
    assert (got.step, got.channel) == (step, channel)
    assert all(t.hours_before >= 0 for t in got.touches)


# ------------------------------------------------------------------ the runtime


HEADER_CSV = "account_id;name;phone;due_date;amount;consent_voice;consent_sms;verify_birth_year;document\n"


def csv_file(tmp_path, rows, name="c.csv"):
    """rows: (account, phone, due dd/mm/yyyy, amount)."""
    path = tmp_path / name
    body = "".join(f"{a};Pessoa {a};{p};{d};{m};sim;sim;1980;{CPF}\n" for a, p, d, m in rows)
    path.write_text(HEADER_CSV + body)
    return path


class Harness:
    """The rig (store, clock, worker) with the payment side and the web app on top."""

    def __init__(self, rig, provider, settings):
        self.rig = rig
        self.runtime = Runtime(
            settings, Policy.from_settings(settings), Cadence.from_settings(settings), rig.clock, b"test"
        )
        self.payments = Payments(rig.store, provider, self.runtime)
        self.client: TestClient | None = None

    async def load(self, path, campaign="c1", start=True):
        summary = await load_file(
            self.rig.store,
            path,
            campaign,
            defaults=self.payments.row_defaults(True, True),
            secret=b"test",
            cadence=self.rig.cadence,
            now=self.rig.clock.now(),
            actor="test",
            errors_to=io.StringIO(),
            charges=self.payments.on_load,
        )
        if start:
            await self.rig.store.transition(campaign, "start", self.rig.clock.now(), "test")
        return summary

    async def web(self) -> TestClient:
        services = Services(
            self.runtime,
            self.rig.store,
            None,
            None,
            auth.TokenBook.from_pairs({"supervisor": "s" * 24}),
            payments=self.payments,
        )
        self.client = TestClient(TestServer(create_app(services)))
        await self.client.start_server()
        return self.client

    async def post_signed(self, doc, *, at=None, secret=SECRET, headers=None):
        body = json.dumps(doc).encode()
        ts = int(time.time()) if at is None else at
        h = {HEADER: sign(secret, body, ts), "Content-Type": "application/json", **(headers or {})}
        return await self.client.post("/webhooks/payments/signed", data=body, headers=h)

    async def close(self):
        if self.client is not None:
            await self.client.close()


@pytest.fixture
async def harness(redis_url, settings):
    rig = await make_rig(redis_url, settings, MON_0700)
    h = Harness(rig, SignedWebhookProvider(SECRET), settings)
    await h.web()
    yield h
    await h.close()
    await rig.close()


def payment(event_id, account, amount, *, kind="payment", at="2026-11-23T10:00:00-03:00", **extra):
    return {"id": event_id, "type": kind, "account_id": account, "amount": amount, "paid_at": at, **extra}


async def statuses(store, account, campaigns=("c1",)):
    out = {}
    for c in campaigns:
        (state,) = await store.load_accounts(c, [account])
        out[c] = state.account.status if state else None
    return out


async def test_one_charge_per_debt_however_often_the_file_is_loaded(harness, tmp_path):
    path = csv_file(
        tmp_path,
        [("A1", "11987654321", "10/11/2026", "100,00"), ("A2", "11987654322", "10/11/2026", "50,00")],
    )
    first = await harness.load(path)
    again = await harness.load(path)
    await harness.load(path, campaign="c2")  # the same debts in a second campaign
    assert (first.charges, again.charges) == (2, 0)
    charges = await harness.rig.store.account_charges("A1")
    assert len(charges) == 1 and charges[0].amount == Decimal("100.00")
    assert valid_txid(charges[0].txid)
    # the signed provider makes no charges: nothing is queued, the CPF is not kept
    assert await harness.rig.store.charge_queue_length() == 0
    packed = await harness.rig.raw.hget(keys.CampaignKeys("c1").account("A1"), "a")
    assert CPF not in packed and CPF not in json.dumps(charges[0].request)


async def test_a_paid_webhook_stops_every_campaign_at_once(harness, tmp_path):
    path = csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")])
    await harness.load(path)
    await harness.load(path, campaign="c2")
    store = harness.rig.store
    # a worker has planned a contact (its claim was read at this history version)
    (before,) = await store.load_accounts("c1", ["A1"])
    resp = await harness.post_signed(payment("evt-1", "A1", "100.00"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["accepted"] == 1 and body["paid_accounts"] == ["A1"]
    # by the time the provider has its 200, the account is paid in both campaigns
    assert await statuses(store, "A1", ("c1", "c2")) == {"c1": AccountStatus.PAID, "c2": AccountStatus.PAID}
    (after,) = await store.load_accounts("c1", ["A1"])
    assert after.hv > before.hv  # the claim planned on the old version is stale
    # and the worker, now, calls nobody
    harness.rig.clock.set(datetime.fromisoformat("2026-11-23T10:00:00-03:00"))
    await harness.rig.drive(harness.rig.clock.now())
    assert harness.rig.telephony.placed == 0
    timeline = await store.timeline("A1", "c1")
    assert [e["kind"] for e in timeline if e["kind"] in ("payment", "status")] == ["payment", "status"]
    audit = [e for e in await store.global_audit() if e["kind"] == "payment"]
    assert audit and audit[0]["data"]["amount"] == "100.00" and audit[0]["actor"] == "payments:signed"
    status = await store.status("c1")
    assert status["counters"]["recovered_cents"] == 10000 and status["counters"]["payments"] == 1


async def test_the_same_event_twice_counts_once_and_order_does_not_matter(harness, tmp_path):
    await harness.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
    store = harness.rig.store
    refund_first = await harness.post_signed(payment("evt-r", "A1", "100.00", kind="refund"))
    assert (await refund_first.json())["accepted"] == 1
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.OPEN  # nothing was paid yet
    for i in range(2):  # the provider retries later: a new signature, the same event
        resp = await harness.post_signed(payment("evt-p", "A1", "100.00"), at=int(time.time()) - 10 * i)
        assert resp.status == 200
    assert (await resp.json())["duplicates"] == 1
    charge = await store.current_charge("A1")
    assert (charge.paid_cents, charge.refunded_cents) == (10000, 10000)  # once each
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.OPEN  # paid and given back
    counters = (await store.status("c1"))["counters"]
    assert counters["recovered_cents"] == 0 and counters["payments"] == 1


async def test_a_partial_payment_leaves_the_balance_open_and_shown(harness, tmp_path):
    await harness.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
    store = harness.rig.store
    await harness.post_signed(payment("evt-1", "A1", "40.00"))
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.OPEN
    event = next(e for e in await store.timeline("A1") if e["kind"] == "payment")
    assert (event["amount"], event["balance"], event["standing"]) == ("40.00", "60.00", "partial")
    await harness.post_signed(payment("evt-2", "A1", "60.00"))
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.PAID


async def test_a_refund_reopens_the_account_on_its_regua(harness, tmp_path):
    await harness.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
    store, raw = harness.rig.store, harness.rig.raw
    await harness.post_signed(payment("evt-1", "A1", "100.00"))
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.PAID
    resp = await harness.post_signed(
        payment("evt-2", "A1", "100.00", kind="refund", at="2026-11-23T11:00:00-03:00")
    )
    assert resp.status == 200
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.OPEN
    due = await raw.zscore(keys.CampaignKeys("c1").schedule, "A1")
    assert due is not None and due <= to_ms(harness.rig.clock.now())  # back on the régua, due now
    status_events = [e for e in await store.timeline("A1") if e["kind"] == "status"]
    assert [e["to"] for e in status_events] == ["paid", "open"]


async def test_an_overpayment_is_flagged(harness, tmp_path):
    await harness.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
    await harness.post_signed(payment("evt-1", "A1", "150.00"))
    audit = next(e for e in await harness.rig.store.global_audit() if e["kind"] == "payment")
    assert audit["data"]["overpaid"] == "50.00"
    event = next(e for e in await harness.rig.store.timeline("A1") if e["kind"] == "payment")
    assert event["overpaid"] == "50.00"


async def test_a_payment_for_an_unknown_charge_is_answered_2xx_and_audited(harness):
    resp = await harness.post_signed(payment("evt-x", "NOBODY", "10.00"))
    assert resp.status == 200
    assert (await resp.json())["unknown"] == 1
    audit = [e for e in await harness.rig.store.global_audit() if e["kind"] == "payment_unknown_charge"]
    assert audit and audit[0]["data"]["account"] == "NOBODY"
    # the event is kept: nothing a provider sent is lost
    assert (await harness.rig.store.payment_events())[0]["unknown"] is True


def _signed_headers(body: bytes, *, ts=None, secret=SECRET):
    return {HEADER: sign(secret, body, int(time.time()) if ts is None else ts)}


BAD = [
    (
        "forged",
        lambda b: (b, _signed_headers(b, secret="not-the-secret-at-all")),
        401,
        "signature does not match",
    ),
    ("no signature", lambda b: (b, {}), 401, "header is missing"),
    ("malformed header", lambda b: (b, {HEADER: "sha256=abc"}), 401, "malformed"),
    ("too old", lambda b: (b, _signed_headers(b, ts=int(time.time()) - 3600)), 401, "from our clock"),
    ("from the future", lambda b: (b, _signed_headers(b, ts=int(time.time()) + 3600)), 401, "from our clock"),
    ("not JSON", lambda b: (b"{oops", _signed_headers(b"{oops")), 400, "not JSON"),
    (
        "no amount",
        lambda b: (
            x := json.dumps(
                {"id": "e", "type": "payment", "account_id": "A1", "paid_at": "2026-11-23T10:00:00-03:00"}
            ).encode(),
            _signed_headers(x),
        ),
        400,
        "amount",
    ),
    (
        "negative amount",
        lambda b: (x := json.dumps(payment("e", "A1", "-5.00")).encode(), _signed_headers(x)),
        400,
        "amount must be positive",
    ),
    (
        "three decimals",
        lambda b: (x := json.dumps(payment("e", "A1", "5.001")).encode(), _signed_headers(x)),
        400,
        "two decimals",
    ),
    (
        "no offset",
        lambda b: (
            x := json.dumps(payment("e", "A1", "5.00", at="2026-11-23T10:00:00")).encode(),
            _signed_headers(x),
        ),
        400,
        "paid_at",
    ),
    (
        "bad type",
        lambda b: (
            x := json.dumps(payment("e", "A1", "5.00", kind="chargeback")).encode(),
            _signed_headers(x),
        ),
        400,
        "type must be",
    ),
    (
        "nobody named",
        lambda b: (
            x := json.dumps(
                {"id": "e", "type": "payment", "amount": "5.00", "paid_at": "2026-11-23T10:00:00-03:00"}
            ).encode(),
            _signed_headers(x),
        ),
        400,
        "txid or account_id",
    ),
    (
        "bad id",
        lambda b: (x := json.dumps(payment("e v e n t <x>", "A1", "5.00")).encode(), _signed_headers(x)),
        400,
        "id is required",
    ),
    (
        "empty batch",
        lambda b: (x := json.dumps({"events": []}).encode(), _signed_headers(x)),
        400,
        "non-empty",
    ),
]


@pytest.mark.parametrize(("case", "make", "status", "reason"), BAD, ids=[b[0] for b in BAD])
async def test_bad_webhooks_are_refused_audited_and_record_nothing(
    harness, tmp_path, case, make, status, reason
):
    await harness.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
    good = json.dumps(payment("evt-1", "A1", "100.00")).encode()
    body, headers = make(good)
    resp = await harness.client.post("/webhooks/payments/signed", data=body, headers=headers)
    assert resp.status == status
    assert reason in (await resp.json())["error"]
    refusals = [e for e in await harness.rig.store.global_audit() if e["kind"] == "payment_webhook_refused"]
    assert len(refusals) == 1 and refusals[0]["data"]["status"] == status
    assert await harness.rig.store.payment_events() == []
    assert (await statuses(harness.rig.store, "A1"))["c1"] is AccountStatus.OPEN


async def test_a_replayed_delivery_is_refused(harness, tmp_path):
    await harness.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
    body = json.dumps(payment("evt-1", "A1", "100.00")).encode()
    headers = _signed_headers(body)
    first = await harness.client.post("/webhooks/payments/signed", data=body, headers=headers)
    second = await harness.client.post("/webhooks/payments/signed", data=body, headers=headers)
    assert (first.status, second.status) == (200, 409)
    assert "replay" in (await second.json())["error"]


async def test_an_oversized_webhook_is_refused_unread(harness):
    big = b"[" + b"0," * (MAX_WEBHOOK_BODY // 2) + b"0]"
    resp = await harness.client.post(
        "/webhooks/payments/signed", data=io.BytesIO(big), headers=_signed_headers(big)
    )
    assert resp.status == 413

    async def chunks():  # no Content-Length: counted while it streams
        for _ in range(MAX_WEBHOOK_BODY // 65536 + 2):
            yield b" " * 65536

    resp = await harness.client.post(
        "/webhooks/payments/signed", data=chunks(), headers={HEADER: "t=1,v1=" + "0" * 64}
    )
    assert resp.status == 413
    refusals = [e for e in await harness.rig.store.global_audit() if e["kind"] == "payment_webhook_refused"]
    assert [e["data"]["status"] for e in refusals] == [413, 413]


async def test_a_webhook_for_a_provider_not_configured_here_is_404(harness):
    resp = await harness.client.post(
        "/webhooks/payments/asaas", data=b"{}", headers={"asaas-access-token": "x"}
    )
    assert resp.status == 404


async def test_a_crash_between_recording_and_settling_is_finished_by_the_job(harness, tmp_path):
    await harness.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
    store, now = harness.rig.store, harness.rig.clock.now()
    charge = await store.current_charge("A1")
    event = PaymentEvent("signed:evt-1", EventKind.PAID, "signed", charge.txid, Decimal("100.00"), now)
    await store.record_payment(event, charge.txid, now)  # ... and the process died here
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.OPEN
    result = await harness.payments.reconcile(now + timedelta(minutes=1))
    assert result.resettled == 1
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.PAID
    # the provider retrying it now counts nothing twice
    again = await harness.payments.receive([event], now + timedelta(minutes=2))
    assert again.duplicates == 1 and (await store.status("c1"))["counters"]["payments"] == 1


async def test_payments_are_credited_to_the_step_that_preceded_them(harness, tmp_path):
    await harness.load(
        csv_file(tmp_path, [(f"A{d}", f"1198765432{d}", "10/11/2026", "100,00") for d in range(4)])
    )
    rig = harness.rig
    await rig.drive(MON_0700.replace(hour=20))  # a day of the régua: calls, SMS fallbacks
    store = rig.store
    for d in range(4):
        (state,) = await store.load_accounts("c1", [f"A{d}"])
        paid_at = rig.clock.now()
        await harness.payments.receive(
            [
                PaymentEvent(
                    f"signed:p{d}",
                    EventKind.PAID,
                    "signed",
                    "",
                    Decimal("100.00"),
                    paid_at,
                    account_id=f"A{d}",
                )
            ],
            paid_at,
        )
        expected = attribute(state.history, paid_at)
        event = next(e for e in await store.timeline(f"A{d}") if e["kind"] == "payment")
        assert (event["step"], event["channel"]) == (expected.step, expected.channel)
    counters = (await store.status("c1"))["counters"]
    by_step = {k.split(":")[-1]: v for k, v in counters.items() if k.startswith("recovered_cents:step:")}
    assert sum(by_step.values()) + 0 <= counters["recovered_cents"] == 40000
    assert by_step  # the day's contacts reached people: some step brought money


async def test_no_cpf_reaches_the_logs(redis_url, settings, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rig = await make_rig(redis_url, settings, MON_0700)
    provider = SandboxPayments()
    provider.needs_document = True  # as the Pix API and Asaas do: the CPF is kept for the charge
    h = Harness(rig, provider, settings)
    try:
        await h.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
        record = await rig.store.current_charge("A1")
        assert record.request["document"] == CPF  # kept until the provider has it ...
        await h.payments.make_due(rig.clock.now())
        made = await rig.store.charge(record.txid)
        assert made.state is ChargeStatus.ACTIVE and "document" not in made.request  # ... then dropped
        assert made.copy_paste.startswith("000201") and "6304" in made.copy_paste
        await h.payments.receive(
            [provider.pay(record.txid, Decimal("100.00"), rig.clock.now())], rig.clock.now()
        )
        await h.payments.reconcile(rig.clock.now())
    finally:
        await rig.close()
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert CPF not in text and "529.982.247-25" not in text
    assert hashlib.sha256(CPF.encode()).hexdigest() not in text


async def test_the_sandbox_makes_charges_and_its_debtors_pay(redis_url, settings, tmp_path):
    rig = await make_rig(redis_url, settings, MON_0700)
    provider = SandboxPayments(pay_ratio=1.0)
    h = Harness(rig, provider, settings)
    try:
        await h.load(
            csv_file(tmp_path, [(f"A{d}", f"1198765432{d}", "10/11/2026", "100,00") for d in range(6)])
        )
        assert await h.payments.make_due(rig.clock.now()) == 6
        worker = rig.worker()
        worker.payments = h.payments
        await rig.drive(MON_0700.replace(hour=20), worker=worker)
        full = [m for m in await rig.store.outbox(500) if m.get("level") == "full"]
        assert full  # the debtor who asked for the payment link got the charge's own code with it
        assert all("Pix copia e cola: 000201" in m["text"] for m in full)
        rig.clock.advance(hours=60)
        result = await h.payments.reconcile(rig.clock.now())
        assert result.received.accepted >= 1  # the verified debtors paid (some in part)
        events = await rig.store.payment_events()
        assert events and all(e["sandbox"] for e in events)
        paid = [
            a
            for a in (f"A{d}" for d in range(6))
            if (await statuses(rig.store, a))["c1"] is AccountStatus.PAID
        ]
        audit = [e for e in await rig.store.global_audit() if e["kind"] == "payment"]
        assert all("SANDBOX" in e["actor"] for e in audit)
        assert len(paid) <= len(audit)
    finally:
        await rig.close()


async def test_a_charge_refused_for_good_is_kept_with_its_reason(redis_url, settings, tmp_path):
    from dialer.errors import PaymentPermanent

    class Refusing(SandboxPayments):
        async def create_charge(self, request):
            raise PaymentPermanent("pix: HTTP 400: devedor.cpf inválido")

    rig = await make_rig(redis_url, settings, MON_0700)
    h = Harness(rig, Refusing(), settings)
    try:
        await h.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
        await h.payments.make_due(rig.clock.now())
        record = await rig.store.current_charge("A1")
        assert record.state is ChargeStatus.FAILED and "devedor.cpf" in record.error
        assert await rig.store.charge_queue_length() == 0
        audit = [e for e in await rig.store.global_audit() if e["kind"] == "charge_failed"]
        assert audit and audit[0]["data"]["account"] == "A1"
    finally:
        await rig.close()


async def test_a_transient_provider_failure_is_retried_later(redis_url, settings, tmp_path):
    from dialer.errors import PaymentRetryable

    class Flaky(SandboxPayments):
        calls = 0

        async def create_charge(self, request):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise PaymentRetryable("pix: HTTP 503")
            return await super().create_charge(request)

    rig = await make_rig(redis_url, settings, MON_0700)
    h = Harness(rig, Flaky(), settings)
    try:
        await h.load(csv_file(tmp_path, [("A1", "11987654321", "10/11/2026", "100,00")]))
        await h.payments.make_due(rig.clock.now())
        record = await rig.store.current_charge("A1")
        assert record.state is ChargeStatus.PENDING and record.attempts == 1 and "503" in record.error
        assert await h.payments.make_due(rig.clock.now()) == 0  # not before its back-off
        rig.clock.advance(minutes=2)
        assert await h.payments.make_due(rig.clock.now()) == 1
        assert (await rig.store.current_charge("A1")).state is ChargeStatus.ACTIVE
    finally:
        await rig.close()


def test_replace_keeps_charge_records_immutable():
    """ChargeRecord is frozen: the runtime changes records only through ``replace``."""
    from dialer.store import ChargeRecord

    r = ChargeRecord("t" * 32, "A1", "c1", "sandbox", ChargeStatus.PENDING, Decimal("1.00"), "2026-12-01")
    with pytest.raises(AttributeError):
        r.state = ChargeStatus.ACTIVE  # type: ignore[misc]
    assert replace(r, state=ChargeStatus.ACTIVE).state is ChargeStatus.ACTIVE


async def test_the_dashboard_shows_what_was_recovered_and_by_which_step(harness, tmp_path):
    await harness.load(
        csv_file(tmp_path, [(f"A{d}", f"1198765432{d}", "10/11/2026", "100,00") for d in range(3)])
    )
    rig = harness.rig
    await rig.drive(MON_0700.replace(hour=20))
    for d in range(3):
        await harness.post_signed(payment(f"evt-{d}", f"A{d}", "100.00", at=rig.clock.now().isoformat()))
    resp = await harness.client.get(
        "/campaigns/c1/part/counters",
        headers={"Authorization": "Bearer " + "s" * 24, "Accept-Language": "pt-BR"},
    )
    page = await resp.text()
    assert resp.status == 200
    assert "R$\xa0300,00" in page or "R$ 300,00" in page
    counters = (await rig.store.status("c1"))["counters"]
    steps = [k.split(":")[-1] for k in counters if k.startswith("recovered_cents:step:")]
    assert steps and all(step in page for step in steps)
    assert page.count("<rect") == len(steps)
    account = await harness.client.get(
        "/accounts/A0", headers={"Authorization": "Bearer " + "s" * 24, "Accept-Language": "pt-BR"}
    )
    text = await account.text()
    assert account.status == 200 and "pagamento de R$" in text and "100,00 recebido por signed" in text


async def test_the_mutual_tls_listener_takes_only_the_banks_certificate(redis_url, settings, tmp_path):
    """``service.webhook_tls_port``: TLS that requires a client certificate from the bank's CA;
    the Pix webhook with ``mtls=required`` accepts only what came through it, verified."""
    import ssl

    import aiohttp
    import trustme

    from payments.http import ProviderHttp
    from payments.pix_api import PixApiProvider
    from tests.browser import free_port

    ours, bank, stranger = trustme.CA(), trustme.CA(), trustme.CA()
    server_cert = ours.issue_cert("127.0.0.1")
    server_pem, key_pem, bank_ca = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "bank-ca.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(server_pem))
    server_cert.private_key_pem.write_to_path(str(key_pem))
    bank.cert_pem.write_to_path(str(bank_ca))
    http_port, tls_port = free_port(), free_port()
    service = settings.service.model_copy(
        update={
            "http_port": http_port,
            "webhook_tls_port": tls_port,
            "webhook_tls_cert": str(server_pem),
            "webhook_tls_key": str(key_pem),
            "webhook_tls_client_ca": str(bank_ca),
        }
    )
    tuned = settings.model_copy(update={"service": service})
    rig = await make_rig(redis_url, tuned, MON_0700)
    h = Harness(rig, SignedWebhookProvider(SECRET), tuned)
    h.payments.provider = PixApiProvider(
        "http://psp.invalid/v2",
        client_id="id",
        client_secret="secret",
        token_url="http://psp.invalid/oauth/token",
        chave="pix@loja.com.br",
        webhook_token="tok-" + "x" * 20,
        http=ProviderHttp("pix"),
        mtls="required",
    )
    from dialer.web.app import start_api

    runner = await start_api(h.runtime, rig.store, None, None, h.payments)
    body = json.dumps({"pix": []}).encode()
    path = "/webhooks/payments/pix/tok-" + "x" * 20 + "/pix"

    def client_context(ca: trustme.CA | None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ours.configure_trust(context)
        if ca is not None:
            ca.issue_cert("psp.example").configure_cert(context)
        return context

    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"https://127.0.0.1:{tls_port}{path}", data=body, ssl=client_context(bank)
            ) as resp:
                assert resp.status == 200, await resp.text()
            for ca in (None, stranger):  # no certificate, or one the bank's CA did not sign
                with pytest.raises(aiohttp.ClientError):
                    async with session.post(
                        f"https://127.0.0.1:{tls_port}{path}", data=body, ssl=client_context(ca)
                    ) as resp:
                        await resp.read()
            # the same webhook on the plain listener: refused, it carries no verified certificate
            async with session.post(f"http://127.0.0.1:{http_port}{path}", data=body) as resp:
                assert resp.status == 403
                assert "client certificate" in (await resp.json())["error"]
    finally:
        await runner.cleanup()
        await h.close()
        await rig.close()

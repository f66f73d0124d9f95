"""Agreements over a simulated month, on a real Redis with the real worker, scheduler and
web app: accept → installments reminded by SMS through ``decide()`` → one paid by webhook →
one missed → broken → back on the régua; every installment paid → kept, the account paid;
a refund reopens it; two accepts at once make one agreement."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest

from dialer.domain import AccountStatus
from dialer.rules.agreements import AgreementStatus
from dialer.rules.charges import money
from dialer.runtime.agreements import OfferRefused
from dialer.store import keys
from payments.signed import SignedWebhookProvider
from tests.runtime_helpers import make_rig
from tests.test_payments import MON_0700, SECRET, Harness, csv_file, payment

DUE = "10/09/2026"  # 74 days past due on 2026-11-23: 10 % cash, up to 6 installments, 20 % down
PHONE = "11987654323"  # calls to …3 go unanswered; SMS reach it


@pytest.fixture
async def world(redis_url, settings, tmp_path):
    rig = await make_rig(redis_url, settings, MON_0700)
    h = Harness(rig, SignedWebhookProvider(SECRET), settings)
    h.runtime.policy = rig.policy
    h.payments.agreements.sms = rig.sms
    await h.web()
    await h.load(csv_file(tmp_path, [("A1", PHONE, DUE, "500,00")]))
    worker = rig.worker()
    worker.payments = h.payments
    yield h, worker
    await h.close()
    await rig.close()


async def state_of(h, account="A1"):
    (state,) = await h.rig.store.load_accounts("c1", [account])
    return state


async def live(h, worker, until: datetime, step=timedelta(hours=1)):
    """The service for a while: scheduler and worker rounds, the agreements' keeper, the
    payment maker, as the clock walks to ``until``."""
    while h.rig.clock.now() < until:
        await h.rig.drive(h.rig.clock.now(), worker=worker)
        await h.payments.agreements.review_due(h.rig.clock.now())
        h.rig.clock.advance(seconds=step.total_seconds())


async def texts(h):
    return [f for _, f in await h.rig.raw.xrange(keys.OUTBOX) if f["to"] == "+55" + PHONE]


def local(text):
    return datetime.fromisoformat(text + "-03:00")


async def pay(h, charge, event_id, amount=None, kind="payment", ts=None):
    r = await h.post_signed(
        payment(
            event_id,
            "",
            str(amount or charge.amount),
            kind=kind,
            at=h.rig.clock.now().isoformat(),
            txid=charge.txid,
        ),
        at=ts,
    )
    assert r.status == 200, await r.text()


async def installment_charges(h, account="A1"):
    return sorted(
        (c for c in await h.rig.store.account_charges(account) if c.agreement), key=lambda c: c.installment
    )


async def test_a_month_accept_reminded_one_paid_one_missed_broken_back_on_the_regua(world):
    h, worker = world
    agreements = h.payments.agreements
    await live(h, worker, local("2026-11-23T07:00"))  # before SMS hours: the régua waits too
    state = await state_of(h)
    offers = await agreements.offers(state, h.rig.clock.now())
    plan = next(o for o in offers if o.count == 3)
    assert [i.due.isoformat() for i in plan.installments] == ["2026-11-26", "2026-12-26", "2027-01-26"]
    accepted = await agreements.accept("c1", state, plan.offer_id, h.rig.clock.now(), via="page", actor="t")
    assert accepted.created and (await state_of(h)).account.status is AccountStatus.AGREEMENT
    held = [e for e in await h.rig.store.global_audit() if e["kind"] == "agreement_summary_held"]
    assert held and "outside_calling_hours" in held[0]["data"]["reasons"]  # 07:00: decide() said no
    charges = await installment_charges(h)
    assert [money(c.amount_cents) for c in charges] == [money(i.amount_cents) for i in plan.installments]

    await live(h, worker, local("2026-11-26T21:00"))
    sent = await texts(h)
    days = [f["at"][:10] for f in sent]
    assert days == ["2026-11-23", "2026-11-26"]  # D−3 and D0 of the first installment, nothing else
    for f in sent:
        assert f["level"] == "limited" and "/a/" in f["text"] and "R$" not in f["text"]
        at = datetime.fromisoformat(f["at"]).astimezone(local("2026-11-23T00:00").tzinfo)
        assert 8 <= at.hour < 20  # within the hours decide() allows for SMS
    history = (await state_of(h)).history
    assert not [a for a in history if a.channel.value == "voice"]  # the régua's calls wait
    await pay(h, charges[0], "e1")
    record = (await h.rig.store.current_agreements(["A1"]))["A1"]
    assert record.paid == {1} and (await state_of(h)).account.status is AccountStatus.AGREEMENT

    await live(h, worker, local("2027-01-05T12:00"), step=timedelta(hours=2))  # installment 2 unpaid
    sent = await texts(h)
    assert [f["at"][:10] for f in sent][2:4] == ["2026-12-23", "2026-12-26"]  # installment 2's
    assert all(f["at"][:10] >= "2027-01-05" and "/a/" not in f["text"] for f in sent[4:])  # the régua's SMS
    record = await h.rig.store.agreement(accepted.agreement.agreement_id)
    assert record.status is AgreementStatus.BROKEN
    audit = [e for e in await h.rig.store.global_audit() if e["kind"] == "agreement_broken"]
    assert len(audit) == 1 and "installment 2" in audit[0]["data"]["why"]
    state = await state_of(h)
    assert state.account.status is AccountStatus.OPEN  # back on its régua
    stats = (await h.rig.store.agreement_stats())["c1"]
    assert stats == {
        "made": 1, "current": 0, "kept": 0, "broken": 1,
        "made_cents": plan.total_cents, "paid_cents": plan.installments[0].amount_cents,
    }  # fmt: skip
    before = len(state.history)
    await live(h, worker, local("2027-01-08T12:00"))
    after = (await state_of(h)).history
    assert any(not a.step_id.startswith(record.agreement_id[2:10]) for a in after[before:])  # the régua again


async def test_every_installment_paid_keeps_it_and_a_refund_reopens_it(world):
    h, worker = world
    agreements = h.payments.agreements
    h.rig.clock.advance(seconds=3 * 3600)  # 10:00
    state = await state_of(h)
    plan = next(o for o in await agreements.offers(state, h.rig.clock.now()) if o.count == 2)
    accepted = await agreements.accept("c1", state, plan.offer_id, h.rig.clock.now(), via="page", actor="t")
    summary = await texts(h)
    assert len(summary) == 1 and "/a/" in summary[0]["text"] and "R$" not in summary[0]["text"]
    charges = await installment_charges(h)
    await pay(h, charges[0], "p1")
    await pay(h, charges[1], "p2")
    record = await h.rig.store.agreement(accepted.agreement.agreement_id)
    assert record.status is AgreementStatus.KEPT and record.paid == {1, 2}
    assert (await state_of(h)).account.status is AccountStatus.PAID
    await pay(h, charges[1], "p2", ts=int(time.time()) - 5)  # the same event delivered again: counted once
    assert (await h.rig.store.agreement_stats())["c1"]["paid_cents"] == plan.total_cents
    await pay(h, charges[1], "r2", kind="refund")
    record = await h.rig.store.agreement(accepted.agreement.agreement_id)
    assert record.status is AgreementStatus.CURRENT and record.paid == {1}
    assert (await state_of(h)).account.status is AccountStatus.AGREEMENT


async def test_two_accepts_at_once_make_one_agreement(world):
    h, _ = world
    agreements = h.payments.agreements
    state = await state_of(h)
    offers = await agreements.offers(state, h.rig.clock.now())
    now = h.rig.clock.now()
    tries = [
        agreements.accept("c1", state, offers[i].offer_id, now, via=v, actor="t")
        for i, v in ((1, "page"), (1, "page"), (2, "ivr"), (1, "page"))
    ]
    results = await asyncio.gather(*tries, return_exceptions=True)
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, OfferRefused)]
    assert len(made) + len(refused) == 4 and sum(1 for r in made if r.created) == 1
    assert len({r.agreement.agreement_id for r in made}) == 1
    assert all(r.code == "conflict" for r in refused)
    (current,) = (await h.rig.store.current_agreements(["A1"])).values()
    assert len(await installment_charges(h)) == current.offer.count
    assert (await h.rig.store.agreement_stats())["c1"]["made"] == 1


async def test_an_account_not_open_cannot_make_an_agreement(world):
    h, _ = world
    state = await state_of(h)
    offer = (await h.payments.agreements.offers(state, h.rig.clock.now()))[0]
    await h.rig.store.set_account_status("A1", AccountStatus.DISPUTED, h.rig.clock.now(), "t")
    with pytest.raises(OfferRefused, match="disputed"):
        await h.payments.agreements.accept(
            "c1", await state_of(h), offer.offer_id, h.rig.clock.now(), via="page", actor="t"
        )


async def test_special_offers_through_the_api_only_for_the_roles_allowed_and_validated(world):
    from aiohttp.test_utils import TestClient, TestServer

    from dialer.web import auth
    from dialer.web.app import create_app
    from dialer.web.common import Services

    h, _ = world
    negotiation = h.runtime.settings.negotiation.model_copy(update={"special_offer_roles": ("admin",)})
    h.runtime.settings = h.runtime.settings.model_copy(update={"negotiation": negotiation})
    tokens = {"admin": "a" * 24, "supervisor": "s" * 24}
    services = Services(
        h.runtime, h.rig.store, None, None, auth.TokenBook.from_pairs(tokens), payments=h.payments
    )
    client = TestClient(TestServer(create_app(services)))
    await client.start_server()
    try:
        admin = {"Authorization": "Bearer " + tokens["admin"]}
        boss = {"Authorization": "Bearer " + tokens["supervisor"]}
        body = {"discount_percent": "35", "installments": 3, "until": "2026-11-30"}
        r = await client.put("/api/accounts/A1/special-offer", json=body, headers=boss)
        assert r.status == 403 and "special_offer_roles" in (await r.json())["error"]
        for bad, reason in (
            ({**body, "interest_percent_month": "2"}, "above what the contract allows"),
            ({**body, "installments": 0}, "from 1 to 48"),
            ({**body, "discount_percent": "100"}, "below 100"),
            ({**body, "until": "30/11/2026"}, "YYYY-MM-DD"),
            ({**body, "fine_percent": "5"}, "unknown field"),
        ):
            r = await client.put("/api/accounts/A1/special-offer", json=bad, headers=admin)
            assert r.status == 400 and reason in (await r.json())["error"], bad
        r = await client.put("/api/accounts/A1/special-offer", json=body, headers=admin)
        assert r.status == 200
        offers = await (await client.get("/api/campaigns/c1/accounts/A1/offers", headers=boss)).json()
        assert offers[0]["kind"] == "special" and len(offers[0]["installments"]) == 3
        audit = [e for e in await h.rig.store.global_audit() if e["kind"] == "special_offer"]
        assert audit and audit[0]["actor"] == "env-token:admin"
        state = await state_of(h)
        await h.payments.agreements.accept(
            "c1", state, offers[0]["id"], h.rig.clock.now(), via="page", actor="t"
        )
        summary = await (await client.get("/api/agreements", headers=boss)).json()
        assert summary["c1"]["made"] == 1 and summary["c1"]["current"] == 1
        (doc,) = await (await client.get("/api/accounts/A1/agreements", headers=boss)).json()
        assert doc["status"] == "current" and doc["offer"]["kind"] == "special"
        r = await client.delete("/api/accounts/A1/special-offer", headers=admin)
        assert r.status == 200 and await h.rig.store.special_offer("A1") is None
        # the offer rules are configuration: validated and audited like the rest
        r = await client.put(
            "/api/config", data="[negotiation]\nmax_interest_percent_month = 2\n", headers=admin
        )
        assert r.status == 400 and "max_interest_percent_month" in (await r.json())["error"]
        r = await client.put("/api/config", data="[negotiation]\noffer_valid_days = 5\n", headers=admin)
        assert r.status == 200 and h.runtime.settings.negotiation.offer_valid_days == 5
    finally:
        await client.close()


async def test_an_offer_accepted_on_a_call_after_the_account_was_paid_meanwhile_makes_nothing(world):
    h, _ = world
    read_before_the_call = await state_of(h)
    offer = (await h.payments.agreements.offers(read_before_the_call, h.rig.clock.now()))[0]
    await h.rig.store.set_account_status("A1", AccountStatus.PAID, h.rig.clock.now(), "payments:pix")
    made = await h.payments.agreements.accept_on_call(
        "c1", read_before_the_call, offer.offer_id, h.rig.clock.now(), read_before_the_call.phones[0], "c1:x"
    )
    assert made is None and await h.rig.store.current_agreements(["A1"]) == {}
    assert not [c for c in await h.rig.store.account_charges("A1") if c.agreement]


async def test_after_a_break_the_money_paid_counts_offers_are_on_the_balance_and_paying_it_closes(world):
    h, worker = world
    agreements = h.payments.agreements
    h.rig.clock.advance(seconds=3 * 3600)
    state = await state_of(h)
    plan = next(o for o in await agreements.offers(state, h.rig.clock.now()) if o.count == 3)
    accepted = await agreements.accept("c1", state, plan.offer_id, h.rig.clock.now(), via="page", actor="t")
    charges = await installment_charges(h)
    assert all(c.request["valid_after_due_days"] == 10 for c in charges)  # payable until it would break
    await pay(h, charges[0], "i1")
    h.rig.clock.advance(seconds=(3 + 10) * 86400)  # installment 1 paid; the first due +10 days passes
    h.rig.clock.advance(seconds=31 * 86400)  # installment 2 unpaid 10 days after its due date
    done = await agreements.review_due(h.rig.clock.now())
    assert done.broken == 1 and (await state_of(h)).account.status is AccountStatus.OPEN
    state = await state_of(h)
    offers = await agreements.offers(state, h.rig.clock.now())
    first = plan.installments[0].amount_cents
    assert offers and all(o.principal_cents == 50000 - first for o in offers)  # on the balance
    # the broken agreement's second installment is paid late after all, then the third
    await pay(h, charges[1], "i2")
    assert (await state_of(h)).account.status is AccountStatus.OPEN
    await pay(h, charges[2], "i3")
    assert (await state_of(h)).account.status is AccountStatus.PAID  # paid in full, though late
    record = await h.rig.store.agreement(accepted.agreement.agreement_id)
    assert record.status is AgreementStatus.BROKEN and record.paid == {1, 2, 3}


async def test_a_person_who_changes_an_account_in_agreement_ends_the_agreement(world):
    from dialer.runtime import operations

    h, _ = world
    state = await state_of(h)
    offer = (await h.payments.agreements.offers(state, h.rig.clock.now()))[1]
    await h.payments.agreements.accept("c1", state, offer.offer_id, h.rig.clock.now(), via="page", actor="t")
    await operations.set_account_status(
        h.rig.store, "A1", AccountStatus.DISPUTED, h.rig.clock.now(), "user:sara", note="contests the debt"
    )
    assert await h.rig.store.current_agreements(["A1"]) == {}
    audit = [e for e in await h.rig.store.global_audit() if e["kind"] == "agreement_broken"]
    assert audit and "disputed by user:sara" in audit[0]["data"]["why"]

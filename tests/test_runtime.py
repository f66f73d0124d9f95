"""The Redis runtime end to end: ingest, lifecycle, scheduler, workers, sandbox outcomes, audit.

Everything here runs against the real redis-server the test session started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections import Counter
from datetime import datetime, timedelta

import pytest

from dialer.domain import AccountStatus, Attempt, Channel, Decision, Outcome
from dialer.errors import HeaderError, SmsPermanent, SmsRetryable
from dialer.formats.campaign_file import RowDefaults
from dialer.runtime.ingest import load_file
from dialer.runtime.scheduler import Scheduler
from dialer.store import Store, keys
from dialer.store.keys import CampaignKeys
from dialer.telephony.sandbox import SandboxTelephony
from sms_gateway.base import SendResult, SmsMessage
from tests.runtime_helpers import campaign_csv, make_rig

MON_0700 = datetime.fromisoformat("2026-11-23T07:00:00-03:00")
DUE = "10/11/2026"  # D+13 on Monday: the boleto régua's call step is due


def phone(d: int) -> str:
    return f"1198765432{d}"


@pytest.fixture
async def rig(redis_url, settings):
    r = await make_rig(redis_url, settings, MON_0700)
    yield r
    await r.close()


async def accounts(store: Store, campaign: str = "c1") -> dict:
    names = [f"A{d}" for d in range(10)]
    states = await store.load_accounts(campaign, names)
    return {n: s for n, s in zip(names, states, strict=True) if s}


async def test_sandbox_day_one(rig, tmp_path):
    path = campaign_csv(tmp_path, [(f"A{d}", phone(d), DUE) for d in range(10)])
    summary = await rig.load(path)
    assert (summary.accepted, summary.new, summary.rejected) == (10, 10, 0)

    # 07:00: outside calling hours, nobody is called; the decision is kept with its reason
    await rig.drive(MON_0700)
    assert rig.telephony.placed == 0
    timeline = await rig.store.timeline("A0")
    assert timeline[0]["kind"] == "decision" and timeline[0]["reasons"] == ["outside_calling_hours"]
    assert timeline[0]["actor"] == "worker:w1" and timeline[0]["campaign"] == "c1"
    assert timeline[0]["not_before"] == "2026-11-23T08:00:00-03:00"
    # the event carries the whole Decision (the worker writes it field by field, for speed)
    assert {f.name for f in dataclasses.fields(Decision)} <= set(timeline[0])
    assert timeline[0]["time_zones"] == ["America/Sao_Paulo"] and timeline[0]["pack"] == "BR"

    await rig.drive(MON_0700.replace(hour=20))
    state = await accounts(rig.store)
    first_call = {a: next(x for x in s.history if x.channel is Channel.VOICE) for a, s in state.items()}
    expected = [
        "answered_verified",
        "third_party",
        "voicemail",
        "no_answer",
        "busy",
        "congestion",  # as Asterisk reports it (Reason 8, cause 34): the voice contract
        "wrong_number",
        "invalid_number",
        "answered_verified",
        "answered_verified",
    ]
    assert [first_call[f"A{d}"].outcome.value for d in range(10)] == expected
    for call in first_call.values():
        assert call.at >= datetime.fromisoformat("2026-11-23T08:00:00-03:00")
    # one call per phone that day (BR cap), no second attempt the same day
    per_day = Counter(
        (a.phone, a.at.date()) for s in state.values() for a in s.history if a.channel is Channel.VOICE
    )
    assert max(per_day.values()) == 1

    # what people asked for and what outcomes imply
    sup = {e["number"]: e for e in await rig.store.suppression_list()}
    assert sup["+5511987654326"]["reason"] == "wrong_number" and sup["+5511987654326"]["channel"] == "*"
    assert sup["+5511987654327"]["reason"] == "invalid_number"
    assert sup["+5511987654329"]["reason"] == "opt_out" and sup["+5511987654329"]["channel"] == "voice"
    assert len(sup) == 3
    callbacks = await rig.store.callbacks()
    assert [c["account_id"] for c in callbacks] == ["A8"]

    outbox = [f for _, f in await rig.raw.xrange(keys.OUTBOX)]
    by_to = {}
    for m in outbox:
        by_to.setdefault(m["to"], []).append(m)
    # the verified debtor who asked for it gets the full message with a signed link
    (pay,) = by_to["+5511987654320"]
    assert pay["level"] == "full" and "/a/" in pay["text"] and "R$ 100,00" in pay["text"]
    # calls that reached nobody get the limited SMS: name, contact, callback number - nothing else
    for d in (3, 4, 5):
        (fallback,) = by_to[f"+551198765432{d}"]
        assert fallback["level"] == "limited"
        assert "100" not in fallback["text"] and "R$" not in fallback["text"]
        assert "0800 123 4567" in fallback["text"] and f"Pessoa A{d}" in fallback["text"]
    # nobody else got an SMS on day one (a third party, a machine, a wrong number: nothing)
    assert set(by_to) == {"+5511987654320", "+5511987654323", "+5511987654324", "+5511987654325"}
    assert all(m["sandbox"] == "1" for m in outbox)


async def test_regua_continues_on_later_days(rig, tmp_path):
    await rig.load(campaign_csv(tmp_path, [(f"A{d}", phone(d), DUE) for d in (3, 6, 9)]))
    await rig.drive(MON_0700 + timedelta(days=4, hours=13))  # until Friday 20:00
    state = await accounts(rig.store)
    calls = lambda a: [x for x in state[a].history if x.channel is Channel.VOICE]  # noqa: E731
    # no answer: retried once a day up to the step's 3 attempts, then the régua waits for D+20
    assert [c.at.date().isoformat() for c in calls("A3")] == ["2026-11-23", "2026-11-24", "2026-11-25"]
    # wrong number: suppressed everywhere, never called again
    assert len(calls("A6")) == 1
    # verified conversation: the rest of the régua is "not_reached_yet" steps: finished
    assert len(calls("A9")) == 1
    status = await rig.store.status("c1")
    assert status["counters"]["done"] == 1  # A9
    scores = dict(await rig.raw.zrange(CampaignKeys("c1").schedule, 0, -1, withscores=True))
    d20 = datetime.fromisoformat("2026-11-30T00:00:00-03:00").timestamp() * 1000
    assert scores == {"A3": d20, "A6": d20}  # A6's step will be skipped then: no phone may take it


async def test_reload_is_idempotent_and_changes_update(rig, tmp_path):
    rows = [(f"A{d}", phone(d), DUE) for d in range(5)]
    first = await rig.load(campaign_csv(tmp_path, rows), start=False)
    again = await rig.load(campaign_csv(tmp_path, rows), start=False)
    assert (first.new, again.new, again.unchanged, again.updated) == (5, 0, 5, 0)
    changed = [*rows[:4], ("A4", phone(4), "11/11/2026"), ("A0", "21987654321", DUE)]
    third = await rig.load(campaign_csv(tmp_path, changed), start=False)
    assert (third.unchanged, third.updated, third.new, third.new_accounts) == (4, 1, 1, 0)
    state = await accounts(rig.store)
    assert state["A4"].account.due_date.isoformat() == "2026-11-11"
    assert {p.number for p in state["A0"].phones} == {"+5511987654320", "+5521987654321"}
    status = await rig.store.status("c1")
    assert (status["accounts"], status["contacts"]) == (5, 6)


async def test_wrong_header_writes_nothing(rig, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("conta;nome;telefone\n1;2;3\n")
    with pytest.raises(HeaderError):
        await load_file(
            rig.store,
            bad,
            "nope",
            defaults=RowDefaults(),
            secret=b"k",
            cadence=rig.cadence,
            now=rig.clock.now(),
            actor="t",
        )
    assert await rig.store.campaign_names() == []
    assert await rig.raw.dbsize() == 0


async def test_rejected_rows_are_reported_and_the_rest_load(rig, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "account_id;name;phone;due_date;amount\n"
        "A1;Ana;11987654321;10/11/2026;10\n"
        "A2;Bia;123;10/11/2026;10\n"
        "A3;Caio;11987654323;31/11/2026;10\n"
        "A1;Ana;11987654321;10/11/2026;10\n"
    )
    errors = io.StringIO()
    summary = await load_file(
        rig.store,
        path,
        "c1",
        defaults=RowDefaults(),
        secret=b"k",
        cadence=rig.cadence,
        now=rig.clock.now(),
        actor="t",
        errors_to=errors,
    )
    assert (summary.rows_read, summary.accepted, summary.rejected) == (4, 1, 3)
    lines = errors.getvalue().splitlines()
    assert lines[0] == "line,column,value,reason,account_id"
    assert lines[1].startswith("3,phone,123,")
    assert lines[2].startswith("4,due_date,31/11/2026,is not a real calendar date")
    assert lines[3].startswith("5,phone,+5511987654321,duplicate")


@pytest.mark.parametrize(
    ("actions", "results", "final"),
    [
        (["start", "pause", "resume", "stop", "archive"], ["ok"] * 5, "archived"),
        (["pause"], ["refused"], "created"),
        (["start", "start"], ["ok", "refused"], "running"),
        (["start", "stop", "resume"], ["ok", "ok", "refused"], "stopped"),
        (["start", "archive"], ["ok", "refused"], "running"),
    ],
)
async def test_lifecycle(rig, actions, results, final):
    await rig.store.create_campaign("c1", rig.clock.now(), "t")
    got = [(await rig.store.transition("c1", a, rig.clock.now(), "t"))[0] for a in actions]
    assert got == results
    assert (await rig.store.campaign("c1")).state == final
    audit = await rig.store.campaign_audit("c1")
    assert [e["kind"] for e in audit] == ["created"] + [
        a for a, r in zip(actions, results, strict=False) if r == "ok"
    ]
    assert (await rig.store.transition("nope", "start", rig.clock.now(), "t"))[0] == "missing"


async def test_pause_hands_entries_back_and_resume_works_them(rig, tmp_path):
    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [(f"A{d}", phone(d), DUE) for d in range(10)]))
    await rig.scheduler.run_once()  # 10 entries in the stream
    await rig.store.transition("c1", "pause", rig.clock.now(), "t")
    worker = rig.worker()
    assert await worker.run_once() == 10
    assert rig.telephony.placed == 0
    status = await rig.store.status("c1")
    assert status["scheduled"] == 10 and status["queued"] == 0 and status["in_flight"] == 0
    assert (await rig.scheduler.run_once())[0] == 0  # paused: nothing moves
    await rig.store.transition("c1", "resume", rig.clock.now(), "t")
    await rig.drive(rig.clock.now())
    assert rig.telephony.placed == 10


async def test_two_schedulers_never_dispatch_twice(rig, tmp_path, redis_url):
    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [(f"A{i}", f"11987{i:06d}", DUE) for i in range(3000)]))
    other = await Store.connect(redis_url)
    s1 = Scheduler(rig.store, rig.clock, batch=100, max_backlog=100_000)
    s2 = Scheduler(other, rig.clock, batch=100, max_backlog=100_000)
    moved = await asyncio.gather(s1.run_once(), s2.run_once(), s1.run_once(), s2.run_once())
    await other.close()
    entries = await rig.raw.xrange(CampaignKeys("c1").work)
    ids = [f["a"] for _, f in entries]
    assert len(ids) == 3000 == sum(m for m, _ in moved)
    assert len(set(ids)) == 3000


async def test_duplicate_entries_across_two_workers_make_one_call(rig, tmp_path):
    """The same account handed to two workers at once is called once (optimistic claim)."""
    rig.clock.set(MON_0700.replace(hour=10))
    n = 200
    await rig.load(campaign_csv(tmp_path, [(f"A{i}", f"11987{i:05d}3", DUE) for i in range(n)]))
    await rig.scheduler.run_once()
    k = CampaignKeys("c1")
    for i in range(n):  # every account a second time, as a bad reload or a bug might
        await rig.raw.xadd(k.work, {"a": f"A{i}"})
    w1, w2 = rig.worker("w1", batch=50), rig.worker("w2", batch=50)
    await asyncio.gather(w1.run_once(), w2.run_once())
    states = await rig.store.load_accounts("c1", [f"A{i}" for i in range(n)])
    calls = Counter(s.account.account_id for s in states for a in s.history if a.channel is Channel.VOICE)
    assert set(calls.values()) == {1}
    assert rig.telephony.placed == n


async def test_suppression_beats_everything_across_campaigns(rig, tmp_path):
    from dialer.domain import Suppression, SuppressionReason

    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [("A3", phone(3), DUE)]), campaign="one")
    await rig.load(campaign_csv(tmp_path, [("B3", phone(3), DUE)]), campaign="two")
    await rig.store.suppress([Suppression("+5511987654323", SuppressionReason.OPT_OUT)], rig.clock.now(), "t")
    await rig.drive(rig.clock.now() + timedelta(days=3))
    assert rig.telephony.placed == 0 and rig.sms.sent == 0
    events = await rig.store.timeline("B3")
    assert any(e["kind"] == "decision" and "suppressed" in e["reasons"] for e in events)


async def test_worker_survives_a_backend_error(rig, tmp_path):
    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [("A3", phone(3), DUE)]))

    async def boom(request):
        raise RuntimeError("backend bug")

    rig.telephony.place_call = boom  # type: ignore[method-assign]
    await rig.drive(rig.clock.now())
    (state,) = await rig.store.load_accounts("c1", ["A3"])
    by_channel = {a.channel: a.outcome for a in state.history}
    assert by_channel == {Channel.VOICE: Outcome.FAILED, Channel.SMS: Outcome.SMS_SENT}  # + fallback


async def test_a_phone_in_two_campaigns_is_called_once_a_day(rig, tmp_path):
    """The per-phone daily cap holds across campaigns: a person with two debts is one person."""
    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [("A3", phone(3), DUE)]), campaign="one")
    await rig.load(campaign_csv(tmp_path, [("B3", phone(3), DUE)]), campaign="two")
    await rig.drive(rig.clock.now())
    voice = []
    for campaign, account in (("one", "A3"), ("two", "B3")):
        (state,) = await rig.store.load_accounts(campaign, [account])
        voice += [a for a in state.history if a.channel is Channel.VOICE]
    assert len(voice) == 1
    events = await rig.store.timeline("B3") + await rig.store.timeline("A3")
    assert any(
        e.get("note", "").startswith("this phone's daily cap was used by another campaign") for e in events
    )
    # the next local day the other campaign gets its turn
    await rig.drive(MON_0700 + timedelta(days=1, hours=3))
    (b,) = await rig.store.load_accounts("two", ["B3"])
    (a,) = await rig.store.load_accounts("one", ["A3"])
    days = sorted(x.at.date() for s in (a, b) for x in s.history if x.channel is Channel.VOICE)
    assert len(days) == len(set(days))  # never two calls to that phone on the same day


class ScriptedSms:
    """An SMS gateway whose provider answers by destination: ``retry`` (throttled),
    ``permanent`` (refused for good), anything else accepted. No batch call, so the worker
    goes through ``send_all``'s concurrent path, as with the HTTP providers."""

    name = "scripted"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.accepted: list[SmsMessage] = []

    async def send(self, message: SmsMessage) -> SendResult:
        answer = self.answers.get(message.to)
        if answer == "retry":
            raise SmsRetryable("429 Too Many Requests", retry_after=30)
        if answer == "permanent":
            raise SmsPermanent("21211: the 'To' number is not a valid phone number")
        self.accepted.append(message)
        return SendResult("scripted", f"SM{len(self.accepted)}")

    async def close(self) -> None:
        return None

    def health(self) -> dict:
        return {"provider": "scripted"}


async def test_fallback_sms_failures_are_retried_or_recorded(rig, tmp_path):
    """A throttled send is not an attempt: it is retried later and sent once. A refused send is
    recorded as sms_failed with the provider's reason. Others in the same batch go out."""
    rig.clock.set(MON_0700.replace(hour=10))
    throttled, refused, fine = "+5511987654313", "+5511987654323", "+5511987654333"
    rig.sms = ScriptedSms({throttled: "retry", refused: "permanent"})  # type: ignore[assignment]
    rows = [("T3", "11987654313", DUE), ("R3", "11987654323", DUE), ("F3", "11987654333", DUE)]
    await rig.load(campaign_csv(tmp_path, rows))
    worker = rig.worker()
    await rig.drive(rig.clock.now(), worker=worker)  # calls: no answer (3) -> fallback SMS

    def sms_attempts(state):
        return [a for a in state.history if a.channel is Channel.SMS]

    t, r, f = await rig.store.load_accounts("c1", ["T3", "R3", "F3"])
    assert sms_attempts(t) == []  # throttled: nothing went out, no attempt recorded
    assert [a.outcome for a in sms_attempts(r)] == [Outcome.SMS_FAILED]
    assert [a.outcome for a in sms_attempts(f)] == [Outcome.SMS_SENT]
    events = await rig.store.timeline("T3")
    (not_placed,) = [e for e in events if e["kind"] == "not_placed"]
    assert not_placed["channel"] == "sms" and "429" in not_placed["error"]
    due = await rig.raw.zscore(CampaignKeys("c1").schedule, "T3")
    assert due == (rig.clock.now() + worker.config.retry_sms_after).timestamp() * 1000
    (refusal,) = [
        e for e in await rig.store.timeline("R3") if e["kind"] == "attempt" and e["channel"] == "sms"
    ]
    assert refusal["outcome"] == "sms_failed" and "21211" in refusal["error"]

    # the provider recovers: the throttled SMS goes out once, at its retry time
    rig.sms.answers = {}  # type: ignore[attr-defined]
    await rig.drive(rig.clock.now() + timedelta(minutes=30), step=timedelta(minutes=5), worker=worker)
    (t,) = await rig.store.load_accounts("c1", ["T3"])
    assert [a.outcome for a in sms_attempts(t)] == [Outcome.SMS_SENT]
    assert [m.to for m in rig.sms.accepted].count(throttled) == 1  # type: ignore[attr-defined]
    assert [m.to for m in rig.sms.accepted].count(fine) == 1  # type: ignore[attr-defined]


async def test_a_payment_stops_every_campaign_at_once_and_a_reopening_resumes(rig, tmp_path):
    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [("A3", phone(3), DUE)]), campaign="one")
    await rig.load(campaign_csv(tmp_path, [("A3", "11987654313", DUE)]), campaign="two")
    await rig.drive(rig.clock.now())  # day one: a call to each phone (no answer) and the SMS fallbacks

    async def contacts() -> int:
        states = [(await rig.store.load_accounts(c, ["A3"]))[0] for c in ("one", "two")]
        return sum(1 for s in states for a in s.history if a.outcome is not Outcome.SKIPPED)

    before = await contacts()
    assert before >= 2
    paid_at = rig.clock.now()
    changes = await rig.store.set_account_status(
        "A3", AccountStatus.PAID, paid_at, "test:ana", note="pix E2E123"
    )
    assert {c["campaign"] for c in changes if c["changed"]} == {"one", "two"}
    await rig.drive(paid_at + timedelta(days=12), step=timedelta(hours=3))
    assert await contacts() == before  # nobody contacted about a paid debt, in any campaign
    (status_event,) = [e for e in await rig.store.timeline("A3", "one") if e["kind"] == "status"]
    assert (status_event["from"], status_event["to"], status_event["actor"]) == ("open", "paid", "test:ana")
    assert status_event["note"] == "pix E2E123"

    # the payment bounced: open again, and the régua picks up where the calendar is
    await rig.store.set_account_status("A3", AccountStatus.OPEN, rig.clock.now(), "test:ana", campaign="one")
    await rig.drive(rig.clock.now() + timedelta(days=3), step=timedelta(hours=3))
    (one,) = await rig.store.load_accounts("one", ["A3"])
    assert any(a.at > paid_at + timedelta(days=12) for a in one.history if a.outcome is not Outcome.SKIPPED)
    (two,) = await rig.store.load_accounts("two", ["A3"])
    assert two.account.status is AccountStatus.PAID and all(a.at <= paid_at for a in two.history)


@pytest.mark.parametrize("change", ["status", "reload"])
async def test_a_contact_planned_on_old_data_is_not_made(rig, tmp_path, change):
    """Between a worker's read and its claim the account changes (paid by API, or a reload
    with new data): the claim is stale, so the worker reads again and decides again."""
    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [("A3", phone(3), DUE)]))
    (state,) = await rig.store.load_accounts("c1", ["A3"])
    if change == "status":
        await rig.store.set_account_status("A3", AccountStatus.PAID, rig.clock.now(), "test")
    else:
        path = campaign_csv(tmp_path, [("A3", phone(3), DUE)], name="again.csv")
        path.write_text(path.read_text().replace("100,00", "150,00"))
        summary = await rig.load(path, start=False)
        assert summary.updated == 1
    planned = Attempt("A3", phone(3), Channel.VOICE, rig.clock.now(), Outcome.PLACED, "c1:1-0", "d10_call")
    (claim,) = await rig.store.claim_many("c1", [(planned, state.hv)], rig.clock.now(), 60_000)
    assert claim.status == "stale"


async def test_campaign_report_after_day_one(rig, tmp_path):
    """The report's rows match what happened: one per account, outcomes from the sandbox."""
    from dialer.formats.report import report_row

    path = campaign_csv(tmp_path, [(f"A{d}", phone(d), DUE) for d in range(10)])
    await rig.load(path)
    await rig.drive(MON_0700.replace(hour=20))
    rows = {}
    batches = 0
    async for batch in rig.store.iter_accounts("c1", batch=4):  # 10 accounts: batches of 4, 4, 2
        batches += 1
        for state, next_at, suppressed in batch:
            rows[state.account.account_id] = report_row(
                state.account, state.phones, state.history, next_at, suppressed
            )
    assert batches == 3 and sorted(rows) == [f"A{d}" for d in range(10)]
    assert rows["A0"]["calls"] == 1 and rows["A0"]["verified_conversation"] is True
    assert (rows["A3"]["calls"], rows["A3"]["sms"]) == (1, 1)  # no answer, then the fallback SMS
    assert rows["A3"]["last_channel"] == "sms" and rows["A3"]["last_outcome"] == "sms_sent"
    assert rows["A6"]["last_outcome"] == "wrong_number" and rows["A6"]["suppressed_phones"] == 1
    assert rows["A2"]["suppressed_phones"] == 0 and rows["A2"]["next_contact_at"] > "2026-11-23"
    assert all(r["status"] == "open" and r["amount"] == "100.00" for r in rows.values())


class GatedTelephony:
    """The sandbox's outcomes, but each call lasts until the test says it ends."""

    name = "gated"

    def __init__(self, clock) -> None:
        self.inner = SandboxTelephony(clock, realtime=False)
        self.gates: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}

    def gate(self, number: str) -> asyncio.Event:
        return self.gates.setdefault(number, asyncio.Event())

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place_call(self, request):
        self.started.setdefault(request.phone.number, asyncio.Event()).set()
        await self.gate(request.phone.number).wait()
        return await self.inner.place_call(request)

    async def reconcile(self, attempt_id):
        return None

    def health(self):
        return {"backend": "gated", "state": "connected"}


async def test_each_contact_is_written_as_it_ends_and_a_payment_link_leaves_at_once(rig, tmp_path):
    """Two calls in one batch: the verified debtor's (…0) ends first. Its outcome is in Redis
    and its payment link in the outbox while the other call (…3) is still ringing."""
    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [("A0", phone(0), DUE), ("A3", phone(3), DUE)]))
    gated = GatedTelephony(rig.clock)
    worker = rig.worker()
    worker.telephony = gated
    await rig.scheduler.run_once()
    batch = asyncio.create_task(worker.run_once())
    verified, ringing = f"+55{phone(0)}", f"+55{phone(3)}"
    for number in (verified, ringing):
        await asyncio.wait_for(gated.started.setdefault(number, asyncio.Event()).wait(), 5)
    outbox_before = await rig.store.outbox_size()
    gated.gate(verified).set()
    t0 = asyncio.get_running_loop().time()
    while True:  # the verified debtor's outcome and link, without the other call ending
        (a0,) = await rig.store.load_accounts("c1", ["A0"])
        if any(a.outcome is Outcome.ANSWERED_VERIFIED for a in a0.history):
            break
        assert asyncio.get_running_loop().time() - t0 < 1.0, "the ended call was not written within a second"
        await asyncio.sleep(0.01)
    assert asyncio.get_running_loop().time() - t0 < 1.0
    links = [m for m in await rig.store.outbox(10) if m.get("level") == "full"]
    assert (
        len(links) == 1 and links[0]["to"] == verified and await rig.store.outbox_size() == outbox_before + 1
    )
    (a3,) = await rig.store.load_accounts("c1", ["A3"])
    assert [a.outcome for a in a3.history if a.channel is Channel.VOICE] == [Outcome.PLACED]
    assert not batch.done()
    gated.gate(ringing).set()
    assert await asyncio.wait_for(batch, 5) == 2
    (a3,) = await rig.store.load_accounts("c1", ["A3"])
    assert [a.outcome for a in a3.history if a.channel is Channel.VOICE] == [Outcome.NO_ANSWER]


async def test_a_write_redis_refuses_fails_only_its_own_entry(rig):
    """One entry's FINISH is refused for good (its account key holds the wrong type): the
    other entry written in the same moment is written all the same, and only the caller of
    the bad one learns of the error. A contact whose settling raises fails alone too."""
    from dialer.errors import StoreError
    from dialer.rules.settle import Finish
    from dialer.runtime.result_writer import ResultWriter

    await rig.raw.set(CampaignKeys("c1").account("BAD"), "not a hash")
    calls: list[str] = []

    def settle(ended, now, effects):
        for job, _ in ended:
            calls.append(job)
            if job == "boom":
                raise RuntimeError("a bug settling this contact")
        return [Finish("c1", "OK2", "", stats={"outcome:busy": 1})]

    writer = ResultWriter(rig.store, rig.clock, "worker:test", settle)
    good = Finish("c1", "OK", "", stats={"outcome:busy": 1})
    bad = Finish("c1", "BAD", "", events=[{"at": "x", "kind": "k"}], fallback="d10_call")
    results = await asyncio.gather(
        writer.write([good]),
        writer.write([bad]),
        writer.write(ended=[("boom", None)]),
        writer.write(ended=[("fine", None)]),
        return_exceptions=True,
    )
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], StoreError) and "account BAD of c1" in str(results[1])
    assert isinstance(results[2], RuntimeError)
    status = await rig.store.status("c1") if await rig.store.campaign("c1") else None
    stats = await rig.raw.hgetall(CampaignKeys("c1").stats)
    assert stats == {"outcome:busy": "2"}  # OK and OK2, written once each
    assert status is None or status["counters"]["outcome:busy"] == 2


async def test_no_payment_link_to_a_number_stopped_for_sms(rig, tmp_path):
    """A verified debtor asks for the link by SMS, but the number is suppressed for SMS:
    the call is recorded, the full-level SMS is not sent."""
    from dialer.domain import Suppression, SuppressionReason
    from dialer.runtime import operations

    rig.clock.set(MON_0700.replace(hour=10))
    await rig.load(campaign_csv(tmp_path, [("A0", phone(0), DUE)]))
    stop = Suppression(f"+55{phone(0)}", SuppressionReason.OPT_OUT, Channel.SMS, None, "test")
    await operations.suppress(rig.store, [stop], rig.clock.now(), "test")
    await rig.scheduler.run_once()
    await rig.worker().run_once()
    (a0,) = await rig.store.load_accounts("c1", ["A0"])
    assert [a.outcome for a in a0.history if a.channel is Channel.VOICE] == [Outcome.ANSWERED_VERIFIED]
    assert not [m for m in await rig.store.outbox(50) if m.get("level") == "full"]


async def test_keys_an_earlier_version_wrote_are_renamed_at_start(rig):
    from dialer.errors import StoreError
    from dialer.store import keys as k

    await rig.raw.hset("regua:suppress", "+5511987654321|*", '{"reason": "opt_out"}')
    await rig.raw.xadd("regua:audit", {"at": "x", "kind": "suppress", "actor": "old", "data": "{}"})
    renamed = await rig.store.migrate_legacy_keys()
    assert set(renamed) == {"regua:suppress", "regua:audit"}
    assert await rig.raw.hget(k.SUPPRESS, "+5511987654321|*") and not await rig.raw.exists("regua:suppress")
    assert await rig.store.migrate_legacy_keys() == []  # nothing left to do
    await rig.raw.hset("regua:suppress", "+5511900000000|*", "{}")
    with pytest.raises(StoreError, match="both the old and the new names hold data"):
        await rig.store.migrate_legacy_keys()


async def test_the_callback_queue_says_whether_the_debtor_may_be_called_now(rig, tmp_path):
    """A debtor in Ceará (DDD 85) asked for a callback; the queue asks decide() for a call now:
    yes at 17:30 there, no at 18:30 (Ceará's law ends calls at 18:00) — from 08:00 next day."""
    from dialer.runtime.callbacks import queue

    rig.clock.set(datetime.fromisoformat("2026-11-23T10:00:00-03:00"))
    await rig.load(campaign_csv(tmp_path, [("C8", "85987654328", DUE)]))
    await rig.scheduler.run_once()
    await rig.worker().run_once()
    rig.clock.set(datetime.fromisoformat("2026-11-23T17:30:00-03:00"))
    (item,) = await queue(rig.store, rig.policy, rig.clock.now())
    assert item["may_call_now"] is True and item["timezone"] == "America/Fortaleza", (item["reasons"], item)
    assert item["window"] and item["debtor_local_time"].startswith("2026-11-23T17:30")
    taken = await rig.store.claim_callback(item["id"], "sara", rig.clock.now())
    assert taken is not None and taken["claimed_by"] == "sara"
    rig.clock.set(datetime.fromisoformat("2026-11-23T18:30:00-03:00"))
    (later,) = await queue(rig.store, rig.policy, rig.clock.now())
    assert later["may_call_now"] is False and "outside_calling_hours" in later["reasons"]
    assert later["not_before"].startswith("2026-11-24T08:00") and later["claimed_by"] == "sara"
    assert await rig.store.complete_callback_id(later["id"]) is True
    assert await queue(rig.store, rig.policy, rig.clock.now()) == []

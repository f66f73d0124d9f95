"""Voice through Asterisk, against an in-process AMI server speaking the wire protocol and
our FastAGI server, with the real Redis: outcomes, faults, pacing, several servers."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.clock import ManualClock, SimulatedClock, SystemClock
from dialer.domain import Account, Consent, Outcome, Phone
from dialer.errors import AmiLoginFailed, ConfigError, TelephonyDown
from dialer.rules.call_outcome import classify
from dialer.store import Store
from dialer.telephony.ami_simulator import AmiServer
from dialer.telephony.asterisk import AmiUrl, AsteriskTelephony, channel_id, dial_string
from dialer.telephony.base import CallRequest
from dialer.telephony.pacing import Pacer
from ivr.agi_app import IvrApp
from ivr.fastagi import FastAgiServer
from ivr.prompts import Catalogue, Rendered

# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("kwargs", "outcome"),
    [
        ({"answered": True, "ivr_outcome": "answered_verified"}, Outcome.ANSWERED_VERIFIED),
        ({"answered": True, "amd": "MACHINE"}, Outcome.VOICEMAIL),
        ({"answered": True, "amd": "MACHINE", "ivr_outcome": "voicemail"}, Outcome.VOICEMAIL),
        ({"answered": True}, Outcome.ANSWERED_UNVERIFIED),
        ({"answered": False, "reason": 4}, Outcome.ANSWERED_UNVERIFIED),
        ({"answered": False, "reason": 5, "cause": 17}, Outcome.BUSY),
        ({"answered": False, "reason": 3, "cause": 19}, Outcome.NO_ANSWER),
        ({"answered": False, "reason": 3}, Outcome.NO_ANSWER),
        ({"answered": False, "reason": 1}, Outcome.NO_ANSWER),
        ({"answered": False, "reason": 8, "cause": 34}, Outcome.CONGESTION),
        ({"answered": False, "reason": 8, "cause": 1}, Outcome.INVALID_NUMBER),  # cause beats reason
        ({"answered": False, "cause": 28}, Outcome.INVALID_NUMBER),
        ({"answered": False, "cause": 21}, Outcome.REJECTED),
        ({"answered": False, "cause": 16}, Outcome.NO_ANSWER),
        ({"answered": False, "reason": 0}, Outcome.FAILED),
        ({"answered": False}, Outcome.FAILED),
    ],
)
def test_classify(kwargs, outcome):
    assert classify(**kwargs) is outcome


def test_urls_and_dial_strings():
    url = AmiUrl.parse("ami://regua:p%40ss@pbx.local:5039")
    assert (url.user, url.secret, url.host, url.port, url.name) == (
        "regua",
        "p@ss",
        "pbx.local",
        5039,
        "pbx.local:5039",
    )
    assert "p@ss" not in repr(url)
    with pytest.raises(ConfigError) as info:
        AmiUrl.parse("http://regua:topsecret@pbx")
    assert "topsecret" not in str(info.value)
    assert dial_string("PJSIP/{number}@trunk", "+5511987654321") == "PJSIP/5511987654321@trunk"
    assert dial_string("PJSIP/0{national}@vivo", "+5511987654321") == "PJSIP/011987654321@vivo"
    assert dial_string("Local/{e164}@debtors", "+12125551234") == "Local/+12125551234@debtors"
    one = channel_id("c1:1795000000000-0")
    assert re.fullmatch(r"regua-[0-9a-f]{24}", one) and one == channel_id("c1:1795000000000-0")
    assert len(channel_id("x" * 400)) == len(one) and channel_id("c1:1795000000000-1") != one


# ------------------------------------------------------------------ pacing


async def test_pacing_limits_channels_and_rate_across_workers(redis_url):
    stores = [await Store.connect(redis_url) for _ in range(2)]
    pacers = [Pacer(s) for s in stores]
    now = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
    grants = [
        await pacers[i % 2].acquire_trunk(
            "t1", f"a{i}", now + timedelta(milliseconds=20 * i), 60, max_channels=3, cps=100
        )
        for i in range(5)
    ]
    assert [g.ok for g in grants] == [True, True, True, False, False]
    assert grants[3].retry_ms >= 59_000  # until the first lease ends
    await pacers[0].release("t1", None, "a0")
    assert (await pacers[1].acquire_trunk("t1", "a5", now + timedelta(seconds=1), 60, 3, 100)).ok
    # leases lapse on their own: a dead worker leaks nothing
    later = now + timedelta(seconds=62)
    assert await pacers[0].active("t1", later) == 0
    # the rate: 2 per second, in any second (a sliding window, across both workers)
    rate = [await pacers[i % 2].acquire_trunk("t2", f"r{i}", now, 60, 100, cps=2) for i in range(3)]
    assert [g.ok for g in rate] == [True, True, False] and 900 <= rate[2].retry_ms <= 1000
    assert not (await pacers[0].acquire_trunk("t2", "r9", now + timedelta(milliseconds=999), 60, 100, 2)).ok
    assert (await pacers[1].acquire_trunk("t2", "r8", now + timedelta(milliseconds=1001), 60, 100, 2)).ok
    half = [await pacers[0].acquire_trunk("t3", f"h{i}", now, 60, 100, cps=0.5) for i in range(2)]
    assert [g.ok for g in half] == [True, False] and 1900 <= half[1].retry_ms <= 2000  # one in 2 s
    assert [(await pacers[0].acquire_campaign("c", f"x{i}", now, 60, 2)).ok for i in range(3)] == [
        True,
        True,
        False,
    ]
    for s in stores:
        await s.close()


# ------------------------------------------------------------------ the adapter


class PromptFiles:
    async def path_for(self, prompt: Rendered) -> str:
        return f"regua/{prompt.prompt_id}"


@pytest.fixture
async def pbx(redis_url, settings):
    """Two AMI servers, our FastAGI server with the IVR, and a store with one account."""
    store = await Store.connect(redis_url)
    catalogue = Catalogue.load(settings.limited_message.voice, ("Exemplo Cobranças",))
    agi = FastAgiServer(
        {"ivr": IvrApp(store, catalogue, PromptFiles(), settings, b"test", SystemClock()).handle},
        "127.0.0.1",
        0,
    )
    await agi.start()
    servers = [AmiServer(agi_port=agi.port), AmiServer(agi_port=agi.port)]
    for s in servers:
        await s.start()
    from dialer.formats.campaign_file import make_hasher
    from dialer.store.codec import pack_account, pack_phone

    account = Account(
        "A1",
        "Maria Silva",
        datetime(2026, 11, 10).date(),
        Decimal("100.00"),
        verify_birth_year_hash=make_hasher(b"test")("A1", "birth_year", "1980"),
    )
    rows = [
        (
            "A1",
            pack_account(account),
            f"p:+55119876543{d}",
            pack_phone(Phone(f"+55119876543{d}", consent=Consent(True, True))),
            0,
        )
        for d in range(10, 20)
    ]
    await store.upsert_batch("c1", rows)
    fast = settings.model_copy(
        update={
            "asterisk": settings.asterisk.model_copy(
                update={"ring_timeout_s": 1, "response_margin_s": 1, "ping_interval_s": 0.2}
            ),
            "service": settings.service.model_copy(update={"agi_host": "127.0.0.1", "agi_port": agi.port}),
        }
    )
    yield store, servers, agi, fast, account
    for s in servers:
        await s.close()
    await agi.close()
    await store.close()


def backend(store, settings, servers, urls=None) -> AsteriskTelephony:
    urls = urls or [AmiUrl("regua", "s3cret", "127.0.0.1", s.port) for s in servers]
    return AsteriskTelephony(settings, store, SystemClock(), urls)


def request(account, digit: int, attempt: str | None = None) -> CallRequest:
    number = f"+55119876543{10 + digit}"
    return CallRequest(
        attempt or f"c1:{digit}-{id(object())}",
        "c1",
        account,
        Phone(number, consent=Consent(True, True)),
        "d10_call",
        "pt-BR",
    )


@pytest.mark.parametrize(
    ("digit", "outcome", "actions"),
    [
        (0, Outcome.ANSWERED_VERIFIED, ["payment_link"]),
        (1, Outcome.THIRD_PARTY, []),
        (2, Outcome.VOICEMAIL, []),
        (3, Outcome.NO_ANSWER, []),
        (4, Outcome.BUSY, []),
        (5, Outcome.CONGESTION, []),
        (6, Outcome.WRONG_NUMBER, ["wrong_number"]),
        (7, Outcome.INVALID_NUMBER, []),
        (8, Outcome.ANSWERED_VERIFIED, ["callback"]),
        (9, Outcome.ANSWERED_VERIFIED, ["opt_out"]),
    ],
)
async def test_outcomes(pbx, digit, outcome, actions):
    store, servers, agi, settings, account = pbx
    voice = backend(store, settings, servers)
    await voice.start()
    try:
        req = request(account, digit)
        result = await asyncio.wait_for(voice.place_call(req), 15)
    finally:
        await voice.close()
    assert result.outcome is outcome
    assert [a.kind for a in result.actions] == actions
    sent = [a for s in servers for a in s.actions if a.get("Action") == "Originate"]
    assert len(sent) == 1
    originate = sent[0]
    assert originate["Async"] == "true" and originate["ChannelId"] == channel_id(req.attempt_id)
    assert originate["OtherChannelId"] == channel_id(req.attempt_id) + ".2"
    assert f"ATTEMPT_ID=c1:{digit}-" in originate["Variable"]
    assert originate["Channel"] == f"PJSIP/55119876543{10 + digit}@trunk"
    login = next(a for s in servers for a in s.actions if a.get("Action") == "Login")
    assert login["Events"] == "call,user,system"
    if outcome is Outcome.ANSWERED_VERIFIED:
        prompts = [e["prompt"] for e in result.events if e["kind"] == "prompt"]
        assert prompts[:3] == ["ask_identity", "ask_birth_year", "debt"]


async def test_wrong_credentials_give_one_clear_error(pbx):
    store, servers, agi, settings, account = pbx
    voice = backend(store, settings, servers, [AmiUrl("regua", "wrong", "127.0.0.1", servers[0].port)])
    with pytest.raises(AmiLoginFailed, match="refused user 'regua'.*manager.conf"):
        await voice.start()
    await voice.close()
    assert sum(1 for a in servers[0].actions if a.get("Action") == "Login") == 1  # no retry loop


async def test_one_server_down_the_other_carries_on_and_all_down_reschedules(pbx):
    store, servers, agi, settings, account = pbx
    dead = AmiUrl("regua", "s3cret", "127.0.0.1", 1)  # nothing listens there
    voice = backend(store, settings, servers, [dead, AmiUrl("regua", "s3cret", "127.0.0.1", servers[0].port)])
    await voice.start()
    try:
        health = voice.health()
        assert health["state"] == "degraded"
        assert [s["state"] for s in health["servers"]] == ["down", "connected"]
        results = await asyncio.gather(*(voice.place_call(request(account, 3, f"c1:d{i}")) for i in range(4)))
        assert {r.outcome for r in results} == {Outcome.NO_ANSWER}
        assert servers[0].originated == 4
        await servers[0].restart(down_s=5)  # now both are down
        await asyncio.sleep(0.1)
        with pytest.raises(TelephonyDown, match="no Asterisk server is connected"):
            await voice.place_call(request(account, 3, "c1:nope"))
    finally:
        await voice.close()


async def test_faults_garbage_split_lines_and_lost_replies(pbx):
    store, servers, agi, settings, account = pbx
    servers[0].garbage = True
    servers[0].split_writes = True
    voice = backend(store, settings, servers[:1])
    await voice.start()
    try:
        assert (await asyncio.wait_for(voice.place_call(request(account, 4)), 10)).outcome is Outcome.BUSY
        assert (
            await asyncio.wait_for(voice.place_call(request(account, 0)), 15)
        ).outcome is Outcome.ANSWERED_VERIFIED
        servers[0].drop_originate_response = True
        servers[0].garbage = servers[0].split_writes = False
        r = await asyncio.wait_for(voice.place_call(request(account, 3)), 10)
        # no OriginateResponse: the Hangup still tells what happened
        assert r.outcome is Outcome.NO_ANSWER
    finally:
        await voice.close()


async def test_missing_response_closes_the_attempt_as_failed(pbx):
    store, servers, agi, settings, account = pbx
    voice = backend(store, settings, servers[:1])
    await voice.start()
    try:
        servers[0].drop_originate_response = True
        servers[0].ring_s = 30  # nothing at all comes back within ring timeout + margin (2 s here)
        started = asyncio.get_running_loop().time()
        r = await asyncio.wait_for(voice.place_call(request(account, 3)), 10)
        assert r.outcome is Outcome.FAILED and "no OriginateResponse" in r.detail
        assert 1.5 < asyncio.get_running_loop().time() - started < 5
    finally:
        await voice.close()


async def test_connection_dropped_mid_call_is_reconciled(pbx):
    store, servers, agi, settings, account = pbx
    servers[0].talk_s = 1.5
    voice = backend(store, settings, servers[:1])
    await voice.start()
    try:
        task = asyncio.create_task(voice.place_call(request(account, 1)))
        await asyncio.sleep(0.6)  # answered, in the IVR
        assert servers[0].channels
        await servers[0].drop_all()  # the network blinks; the call goes on in Asterisk
        r = await asyncio.wait_for(task, 15)
        assert r.outcome is Outcome.THIRD_PARTY  # tracked after reconnect to its real end
        assert any(a.get("Action") == "CoreShowChannels" for a in servers[0].actions)
        assert voice.servers[0].connects >= 2
    finally:
        await voice.close()


async def test_asterisk_restart_mid_call_does_not_leave_the_attempt_open(pbx):
    store, servers, agi, settings, account = pbx
    servers[0].talk_s = 3
    voice = backend(store, settings, servers[:1])
    await voice.start()
    try:
        task = asyncio.create_task(voice.place_call(request(account, 2)))
        await asyncio.sleep(0.5)
        await servers[0].restart(down_s=0.5)  # the channel is gone, no Hangup will ever come
        r = await asyncio.wait_for(task, 15)
        assert r.outcome is Outcome.VOICEMAIL  # the IVR had recorded the machine before the restart
    finally:
        await voice.close()


async def test_many_calls_in_flight_respect_the_trunk(pbx):
    store, servers, agi, settings, account = pbx
    trunk = settings.asterisk.trunks[0].model_copy(update={"max_channels": 5, "cps": 1000})
    s2 = settings.model_copy(update={"asterisk": settings.asterisk.model_copy(update={"trunks": (trunk,)})})
    servers[0].ring_s = servers[1].ring_s = 0.2
    voice = backend(store, s2, servers)
    await voice.start()
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            peak = max(peak, len(voice.calls))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(voice.place_call(request(account, 4, f"c1:m{i}")) for i in range(20))), 30
        )
    finally:
        watcher.cancel()
        await voice.close()
    assert {r.outcome for r in results} == {Outcome.BUSY}
    assert peak <= 5
    assert servers[0].originated + servers[1].originated == 20
    assert min(servers[0].originated, servers[1].originated) >= 5  # spread by free capacity


async def test_worker_with_asterisk_backend_end_to_end(pbx, settings, tmp_path):
    """The worker, the AMI adapter, the AMI server, the FastAGI IVR and Redis, together."""
    store, servers, agi, fast, account = pbx
    from dialer.formats.campaign_file import RowDefaults
    from dialer.rules.cadence import Cadence
    from dialer.rules.policy import Policy
    from dialer.runtime.ingest import load_file
    from dialer.runtime.scheduler import Scheduler
    from dialer.runtime.worker import Worker
    from sms_gateway.sandbox import SandboxSms
    from tests.runtime_helpers import campaign_csv

    clock = ManualClock(datetime.fromisoformat("2026-11-23T10:00:00-03:00"))
    path = campaign_csv(tmp_path, [(f"B{d}", f"1198765432{d}", "10/11/2026") for d in range(10)])
    cadence = Cadence.from_settings(fast)
    await load_file(
        store,
        path,
        "live",
        defaults=RowDefaults(True, True),
        secret=b"test",
        cadence=cadence,
        now=clock.now(),
        actor="t",
    )
    await store.transition("live", "start", clock.now(), "t")
    # the backend lives in the worker's time (it refuses a call placed after the instant the
    # rules allowed it until), running at the wall clock's pace (its call-rate buckets refill)
    urls = [AmiUrl("regua", "s3cret", "127.0.0.1", s.port) for s in servers]
    voice = AsteriskTelephony(fast, store, SimulatedClock(clock.now(), 1.0), urls)
    await voice.start()
    try:
        worker = Worker(
            store,
            voice,
            SandboxSms(store, clock),
            fast,
            Policy.from_settings(fast),
            cadence,
            clock,
            secret=b"test",
        )
        await Scheduler(store, clock).run_once()
        await asyncio.wait_for(worker.run_once(), 30)
    finally:
        await voice.close()
    states = await store.load_accounts("live", [f"B{d}" for d in range(10)])
    outcomes = [next(a.outcome.value for a in s.history if a.channel.value == "voice") for s in states]
    assert outcomes == [
        "answered_verified",
        "third_party",
        "voicemail",
        "no_answer",
        "busy",
        "congestion",
        "wrong_number",
        "invalid_number",
        "answered_verified",
        "answered_verified",
    ]
    timeline = await store.timeline("B0")
    kinds = [e["kind"] for e in timeline]
    assert "prompt" in kinds and "verification" in kinds and "ivr_action" in kinds
    assert (await store.callbacks())[0]["account_id"] == "B8"


# ------------------------------------------------------------------ channel ids Asterisk accepts


def _entry_ids(draw_ms: int, seqs: list[int]) -> list[str]:
    return [f"c1:{draw_ms}-{s}" for s in seqs]


@given(
    st.integers(min_value=1_600_000_000_000, max_value=1_900_000_000_000),
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=30, unique=True),
)
def test_channel_ids_are_never_a_prefix_of_one_another(ms, seqs):
    """Asterisk refuses a uniqueid that is a prefix of a live one: neither leg of one call's
    ids is ever a prefix of another call's (a call's own two legs are allocated together)."""

    ids = [channel_id(a) for a in _entry_ids(ms, seqs)]
    assert len(set(ids)) == len(ids) and len({len(i) for i in ids}) == 1
    calls = [(i, i + ".2") for i in ids]
    assert all(len(leg) <= 149 for legs in calls for leg in legs)
    for n, mine in enumerate(calls):
        for m, other in enumerate(calls):
            if n != m:
                assert not any(b.lower().startswith(a.lower()) for a in mine for b in other), (mine, other)


@pytest.mark.parametrize("scheme", ["ours", "from the entry id"])
async def test_out_of_order_entries_are_not_refused(pbx, monkeypatch, scheme):
    """Entry …-75 is on the line when …-7 is dialled (batches finish out of order). The
    simulator checks uniqueids as Asterisk 22 does, so the old ids fail here as they did on
    a real Asterisk (Reason 0) and ours do not."""
    import dialer.telephony.asterisk as asterisk

    if scheme != "ours":  # the ids of the defect, to show the simulator catches it
        monkeypatch.setattr(
            asterisk, "channel_id", lambda attempt: "regua-" + attempt.replace(":", "-")[:140]
        )
    store, servers, agi, settings, account = pbx
    for s in servers:
        s.talk_s = 1.0
    voice = backend(store, settings, servers[:1])
    await voice.start()
    try:
        first = asyncio.create_task(voice.place_call(request(account, 2, "c1:1700000000000-75")))
        while not servers[0].channels:  # the first call is up
            await asyncio.sleep(0.01)
        second = await asyncio.wait_for(voice.place_call(request(account, 2, "c1:1700000000000-7")), 15)
        first_result = await asyncio.wait_for(first, 15)
    finally:
        await voice.close()
    assert first_result.outcome is Outcome.VOICEMAIL
    if scheme == "ours":
        assert second.outcome is Outcome.VOICEMAIL and servers[0].refused_ids == 0
    else:
        assert second.outcome is Outcome.FAILED and servers[0].refused_ids == 1


async def test_a_call_whose_window_closed_while_it_waited_is_not_placed(pbx):
    """The rules allowed the call until an instant; by the time a trunk was free it had
    passed: not placed (the worker decides again), and its slots are given back."""
    import dataclasses

    from dialer.errors import TelephonyDown

    store, servers, agi, settings, account = pbx
    voice = backend(store, settings, servers)
    await voice.start()
    try:
        late = dataclasses.replace(request(account, 2), not_after=voice.clock.now())
        with pytest.raises(TelephonyDown, match="calling window closed"):
            await voice.place_call(late)
        assert not [a for s in servers for a in s.actions if a.get("Action") == "Originate"]
        assert await voice.pacer.active("default", voice.clock.now()) == 0
        ok = await asyncio.wait_for(voice.place_call(request(account, 2)), 15)
    finally:
        await voice.close()
    assert ok.outcome is Outcome.VOICEMAIL


@pytest.mark.parametrize(
    "block",
    [
        "Event: Newstate\r\nPrivilege: call,all\r\nChannel: Local/x@y-00000001;1\r\nChannelState: 6\r\n"
        "ChannelStateDesc: Up\r\nUniqueid: regua-abc\r\nLinkedid: regua-abc",
        "Response: Success\r\nActionID: a1\r\nMessage: Originate successfully queued",
        "Event: OriginateResponse\r\nActionID: a1\r\nResponse: Failure\r\nReason: 5\r\nUniqueid: <null>",
        "Event: VarSet\r\nVariable: A=1\r\nVariable: B=2\r\nVariable: C=3",  # repeated
        'Response: Success\r\nResult: "200%20result%3D1"\r\nActionID: x',  # quoted
        "Response: Follows\r\nPrivilege: Command\r\nActionID: c\r\nline one\r\n--END COMMAND--",
        "Response: Error\r\nMessage: Permission denied",
        "Event: UserEvent\r\nUserEvent: ReguaEnd\r\nAttempt: c1:A1:1\r\nAMD: \r\nOutcome: verified",
        "Channel: no event nor response",
        "Event: Odd\r\nno separator line\r\nKey:NoSpace\r\nEmpty: ",
        "",
    ],
)
def test_our_ami_reader_builds_the_messages_panoramisk_builds(block):
    from panoramisk.message import Message

    from dialer.telephony.ami_connection import parse_message

    theirs, ours = Message.from_line(block), parse_message(block)
    if theirs is None:
        assert ours is None
        return
    assert ours is not None
    assert ours._store == theirs._store  # every header, its case, lists for repeats
    assert ours.content == theirs.content and ours.id == theirs.action_id == ours.action_id
    assert ours.success == theirs.success

"""One contract, every voice backend: the sandbox and Asterisk (through the in-process AMI
server that speaks the wire protocol, with our FastAGI IVR behind it) must behave alike
for the worker — the same outcome and actions for each magic number, the IVR's record of
the call, health, reconciliation of an unknown attempt, calls placed concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from dialer.clock import SystemClock
from dialer.domain import Account, Consent, Outcome, Phone
from dialer.formats.campaign_file import make_hasher
from dialer.store import Store
from dialer.store.codec import pack_account, pack_phone
from dialer.telephony.ami_simulator import AmiServer
from dialer.telephony.asterisk import AmiUrl, AsteriskTelephony
from dialer.telephony.base import CallRequest, Telephony
from dialer.telephony.sandbox import SandboxTelephony
from ivr.agi_app import IvrApp
from ivr.fastagi import FastAgiServer
from ivr.prompts import Catalogue, Rendered
from ivr.sandbox_runner import make_sandbox_ivr

ACCOUNT = Account(
    "A1",
    "Maria Silva",
    date(2026, 11, 10),
    Decimal("100.00"),
    verify_birth_year_hash=make_hasher(b"test")("A1", "birth_year", "1980"),
)
NUMBERS = [f"+55119876543{10 + d}" for d in range(10)]


class PromptFiles:
    async def path_for(self, prompt: Rendered) -> str:
        return f"regua/{prompt.prompt_id}"


@dataclass
class Backend:
    name: str
    voice: Telephony


@pytest.fixture(params=["sandbox", "asterisk"])
async def backend(request, redis_url, settings) -> AsyncIterator[Backend]:
    if request.param == "sandbox":
        voice = SandboxTelephony(SystemClock(), realtime=False, ivr=make_sandbox_ivr(settings, SystemClock()))
        await voice.start()
        yield Backend("sandbox", voice)
        await voice.close()
        return
    store = await Store.connect(redis_url)
    rows = [
        ("A1", pack_account(ACCOUNT), f"p:{n}", pack_phone(Phone(n, consent=Consent(True, True))), 0)
        for n in NUMBERS
    ]
    await store.upsert_batch("c1", rows)
    catalogue = Catalogue.load(settings.limited_message.voice, ("Exemplo Cobranças",))
    agi = FastAgiServer(
        {"ivr": IvrApp(store, catalogue, PromptFiles(), settings, b"test", SystemClock()).handle},
        "127.0.0.1",
        0,
    )
    await agi.start()
    ami = AmiServer(agi_port=agi.port)
    await ami.start()
    fast = settings.model_copy(
        update={
            "asterisk": settings.asterisk.model_copy(update={"ring_timeout_s": 2, "response_margin_s": 1}),
            "service": settings.service.model_copy(update={"agi_host": "127.0.0.1", "agi_port": agi.port}),
        }
    )
    voice = AsteriskTelephony(fast, store, SystemClock(), [AmiUrl("regua", "s3cret", "127.0.0.1", ami.port)])
    await voice.start()
    yield Backend("asterisk", voice)
    await voice.close()
    await ami.close()
    await agi.close()
    await store.close()


def request(digit: int, seq: int = 0) -> CallRequest:
    return CallRequest(
        f"c1:1700000000000-{digit}{seq:03d}",
        "c1",
        ACCOUNT,
        Phone(NUMBERS[digit], consent=Consent(True, True)),
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
async def test_each_magic_number_ends_the_same_way(backend, digit, outcome, actions):
    result = await asyncio.wait_for(backend.voice.place_call(request(digit)), 15)
    assert result.outcome is outcome
    assert [a.kind for a in result.actions] == actions
    if outcome.answered and outcome is not Outcome.VOICEMAIL:
        prompts = [e["prompt"] for e in result.events if e["kind"] == "prompt"]
        assert prompts[0] == "ask_identity"  # the IVR ran, and began where it must
    if outcome is Outcome.ANSWERED_VERIFIED:
        levels = [e["level"] for e in result.events if e["kind"] == "prompt"]
        first_full = levels.index("full")
        verified_at = next(
            i for i, e in enumerate(result.events) if e["kind"] == "verification" and e["result"] == "passed"
        )
        prompt_index = [i for i, e in enumerate(result.events) if e["kind"] == "prompt"]
        assert prompt_index[first_full] > verified_at  # nothing full before the second factor


async def test_health_and_an_unknown_attempt(backend):
    health = backend.voice.health()
    assert health["state"] == "connected" and health["backend"] == backend.name
    assert await backend.voice.reconcile("c1:never-placed") is None


async def test_calls_placed_together_all_end_with_their_own_outcome(backend):
    digits = [0, 2, 3, 4, 6, 7, 1, 5]
    results = await asyncio.wait_for(
        asyncio.gather(*(backend.voice.place_call(request(d, i)) for i, d in enumerate(digits))), 30
    )
    expected = [
        Outcome.ANSWERED_VERIFIED,
        Outcome.VOICEMAIL,
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.WRONG_NUMBER,
        Outcome.INVALID_NUMBER,
        Outcome.THIRD_PARTY,
        Outcome.CONGESTION,
    ]
    assert [r.outcome for r in results] == expected

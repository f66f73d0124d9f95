"""SANDBOX telephony: call outcomes simulated from the number, like a payment provider's test mode.

The last digit of the number decides what happens (documented in the README):

    0  answered; the debtor verifies and asks for a payment link by SMS
    1  answered by someone else (a third party): gets the limited message
    2  answering machine (AMD: MACHINE): gets the limited message
    3  rings, nobody answers
    4  busy
    5  the call fails (congestion on the trunk)
    6  answered; "this number is not {name}'s": wrong number
    7  the number does not exist (unallocated)
    8  answered; the debtor verifies and asks for a callback from an agent
    9  answered; the debtor verifies and asks us to stop calling

Answered calls run the real IVR flow engine with scripted key presses when one is
given (``ivr``), so the sandbox exercises the same flow, prompts and disclosure rules
as production. Everything it produces is marked ``sandbox``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dialer.clock import Clock
from dialer.domain import Outcome
from dialer.telephony.base import CallRequest, CallResult, IvrAction


@dataclass(frozen=True, slots=True)
class Script:
    outcome: Outcome
    amd: str | None
    keys: tuple[str, ...]  # what the simulated person presses, in order ("" = time-out)
    ring_s: float
    talk_s: float
    hangup_cause: int | None


SCRIPTS: dict[str, Script] = {
    "0": Script(Outcome.ANSWERED_VERIFIED, "HUMAN", ("1", "@verify", "1"), 6, 55, 16),
    "1": Script(Outcome.THIRD_PARTY, "HUMAN", ("2",), 8, 25, 16),
    "2": Script(Outcome.VOICEMAIL, "MACHINE", (), 12, 20, 16),
    "3": Script(Outcome.NO_ANSWER, None, (), 30, 0, 19),
    "4": Script(Outcome.BUSY, None, (), 2, 0, 17),
    "5": Script(Outcome.CONGESTION, None, (), 1, 0, 34),
    "6": Script(Outcome.WRONG_NUMBER, "HUMAN", ("2", "9"), 7, 20, 16),
    "7": Script(Outcome.INVALID_NUMBER, None, (), 1, 0, 1),
    "8": Script(Outcome.ANSWERED_VERIFIED, "HUMAN", ("1", "@verify", "2", "1"), 9, 60, 16),
    "9": Script(Outcome.ANSWERED_VERIFIED, "HUMAN", ("1", "@verify", "4", "1"), 5, 40, 16),
}

# Runs the IVR for a simulated answered call: (request, script) -> (outcome, actions, events)
IvrRunner = Callable[
    [CallRequest, Any], Awaitable[tuple[Outcome, tuple[IvrAction, ...], tuple[dict[str, Any], ...]]]
]


def script_for(number: str) -> Script:
    return SCRIPTS[number[-1]]


class SandboxTelephony:
    """Simulated calls. ``realtime`` makes a call last its simulated ring + talk time."""

    name = "sandbox"

    def __init__(self, clock: Clock, *, realtime: bool = True, ivr: IvrRunner | None = None) -> None:
        self.clock = clock
        self.realtime = realtime
        self.ivr = ivr
        self.placed = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def place_call(self, request: CallRequest) -> CallResult:
        script = script_for(request.phone.number)
        self.placed += 1
        outcome = script.outcome
        actions: tuple[IvrAction, ...] = ()
        events: tuple[dict[str, Any], ...] = ()
        if script.amd is not None and self.ivr is not None:
            outcome, actions, events = await self.ivr(request, script)
        elif script.amd is not None:
            actions = _default_actions(request, script)
        if self.realtime:
            await self.clock.sleep(script.ring_s + script.talk_s)
        return CallResult(
            outcome=outcome,
            duration_s=script.talk_s,
            ring_s=script.ring_s,
            amd=script.amd,
            hangup_cause=script.hangup_cause,
            actions=actions,
            events=events,
            trunk="sandbox",
            server="sandbox",
            sandbox=True,
            language=request.language,
            detail="SANDBOX: simulated from the last digit of the number",
        )

    async def reconcile(self, attempt_id: str) -> CallResult | None:
        return None  # a simulated call dies with its worker: the outcome is unknown

    def health(self) -> dict[str, Any]:
        return {"backend": "sandbox", "state": "connected", "sandbox": True, "placed": self.placed}


def _default_actions(request: CallRequest, script: Script) -> tuple[IvrAction, ...]:
    last = request.phone.number[-1]
    if last == "0":
        return (IvrAction("payment_link"),)
    if last == "6":
        return (IvrAction("wrong_number"),)
    if last == "8":
        return (IvrAction("callback", {"window": "09:00-12:00"}),)
    if last == "9":
        return (IvrAction("opt_out", {"channel": "voice"}),)
    return ()

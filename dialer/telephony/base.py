"""Voice backends behind one protocol: ``sandbox`` (the embedded default) and ``asterisk``.

A backend places one call for one attempt and reports how it ended. What the IVR did
during the call (verification, keys, actions the debtor asked for) comes back in the
``CallResult`` so the worker records it with the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from dialer.domain import Account, Outcome, Phone


@dataclass(frozen=True, slots=True)
class IvrAction:
    """Something the verified debtor (or the person who answered) asked for."""

    kind: str  # payment_link | callback | opt_out | wrong_number
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallRequest:
    attempt_id: str
    campaign: str
    account: Account
    phone: Phone
    step_id: str
    language: str = "pt-BR"


@dataclass(frozen=True, slots=True)
class CallResult:
    outcome: Outcome
    duration_s: float = 0.0  # from answer to hang-up (0 when not answered)
    ring_s: float = 0.0
    amd: str | None = None  # MACHINE | HUMAN | NOTSURE | HANGUP
    hangup_cause: int | None = None
    actions: tuple[IvrAction, ...] = ()
    events: tuple[dict[str, Any], ...] = ()  # prompts played, keys pressed (for the audit)
    trunk: str = ""
    server: str = ""
    sandbox: bool = False
    language: str = ""
    detail: str = ""


class Telephony(Protocol):
    """A voice backend. ``place_call`` returns when the call is over."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place_call(self, request: CallRequest) -> CallResult:
        """Place the call and wait for its end. Raises ``TelephonyDown`` if it could not be
        placed at all (the attempt is then dropped and the step rescheduled)."""
        ...

    async def reconcile(self, attempt_id: str) -> CallResult | None:
        """After a crash: what became of a call placed by a worker that died (None: unknown)."""
        ...

    def health(self) -> dict[str, Any]: ...

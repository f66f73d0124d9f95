"""SANDBOX: the real IVR flow and prompts, driven by the scripted keys of a magic number.

The sandbox hears what real calls hear: the admins' prompt edits (``overrides``, e.g.
``Store.prompt_overrides``, re-read when their version changes) and the callback windows
the debtor's state allows, from the policy compiled once per runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dialer.clock import Clock
from dialer.domain import Outcome
from dialer.rules.policy import Policy
from dialer.settings import Settings
from dialer.telephony.base import CallRequest, IvrAction
from ivr.conversation import best_offer_for, call_fields, callback_windows_for, party_for, run_conversation
from ivr.prompts import CatalogueSource, OverridesReader, Rendered, catalogue_for

VERIFY = "@verify"  # in a script: "type the right second factor"


class ScriptedVoice:
    """A person who presses the scripted keys, then stays silent."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = list(keys)
        self.heard: list[Rendered] = []

    async def say(self, prompt: Rendered) -> bool:
        self.heard.append(prompt)
        return True

    async def ask(self, prompt: Rendered, max_digits: int, timeout_s: float) -> str | None:
        self.heard.append(prompt)
        return self.keys.pop(0) if self.keys else ""

    async def hangup(self) -> None:
        return None


Runner = Callable[
    [CallRequest, Any], Awaitable[tuple[Outcome, tuple[IvrAction, ...], tuple[dict[str, Any], ...]]]
]


def make_sandbox_ivr(settings: Settings, clock: Clock, overrides: OverridesReader | None = None) -> Runner:
    """The sandbox's IVR runner; ``overrides``: where the admins' prompt edits are read
    (``Store.prompt_overrides``), or None for the catalogue file alone."""
    catalogues = CatalogueSource(settings, catalogue_for(settings), overrides)
    policy = Policy.from_settings(settings)

    async def run(
        request: CallRequest, script: Any
    ) -> tuple[Outcome, tuple[IvrAction, ...], tuple[dict[str, Any], ...]]:
        catalogue = await catalogues.current()
        windows = callback_windows_for(request.account, request.phone.number, policy)
        offer = best_offer_for(request.account, (request.phone,), clock.now(), settings)
        party = party_for(request.account, windows, offer)
        keys = tuple(k for k in script.keys if k != VERIFY or party.second_factor)
        voice = ScriptedVoice(keys)
        fields = call_fields(request.account, settings.company, request.language, offer)
        result = await run_conversation(
            voice,
            catalogue,
            party,
            fields,
            request.language,
            script.amd,
            lambda kind, digits: digits == VERIFY,
        )
        actions = tuple(IvrAction(a.kind, dict(a.data)) for a in result.actions)
        return result.outcome, actions, tuple(result.events)

    return run

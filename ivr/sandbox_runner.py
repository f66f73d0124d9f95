"""SANDBOX: the real IVR flow and prompts, driven by the scripted keys of a magic number."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dialer.domain import Outcome
from dialer.settings import Settings
from dialer.telephony.base import CallRequest, IvrAction
from ivr.conversation import call_fields, party_for, run_conversation
from ivr.prompts import Catalogue, Rendered

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


def make_sandbox_ivr(settings: Settings) -> Runner:
    catalogue = Catalogue.load(
        settings.limited_message.voice, (*settings.company.collection_names, settings.company.name)
    )

    async def run(
        request: CallRequest, script: Any
    ) -> tuple[Outcome, tuple[IvrAction, ...], tuple[dict[str, Any], ...]]:
        party = party_for(request.account)
        keys = tuple(k for k in script.keys if k != VERIFY or party.second_factor)
        voice = ScriptedVoice(keys)
        fields = call_fields(request.account, settings.company, request.language)
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

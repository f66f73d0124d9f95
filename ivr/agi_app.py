"""The IVR over FastAGI: Asterisk's ``AGI(agi://…/ivr,${ATTEMPT_ID})`` runs a conversation here.

The voice backend registers each attempt in Redis before it originates the call
(``Store.ivr_register``); when Asterisk connects, the attempt id (first AGI argument)
finds the account. A missing or unknown attempt id hears one ``none``-level prompt and
is hung up. The conversation's result (outcome, actions, every prompt and key) goes
back to Redis for the worker that placed the call (``Store.ivr_save_result``).

The callback windows offered are those the debtor's state allows for the number called
(the request's ``phone``; the account's first phone if an older request lacks it), from
the policy compiled once when the app is built.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from dialer.clock import Clock
from dialer.formats.campaign_file import make_hasher
from dialer.rules.policy import Policy
from dialer.store import Store
from ivr.conversation import best_offer_for, call_fields, callback_windows_for, party_for, run_conversation
from ivr.fastagi import AgiHangup, AgiSession
from ivr.prompts import Catalogue, CatalogueSource, Rendered

log = logging.getLogger("regua.ivr")


class AudioSource(Protocol):
    """Where Asterisk finds the sound of a rendered prompt (a path without extension)."""

    async def path_for(self, prompt: Rendered) -> str: ...


class TtsAudio:
    """Recorded prompt audio when there is one, else the text spoken by the TTS engine."""

    def __init__(self, tts: Any, recordings_dir: str | None = None) -> None:
        self.tts = tts
        self.recordings_dir = recordings_dir

    async def path_for(self, prompt: Rendered) -> str:
        if prompt.audio and self.recordings_dir:
            return str((Path(self.recordings_dir) / prompt.audio).with_suffix(""))
        path = await self.tts.synthesize(prompt.text, prompt.language)
        return str(path.with_suffix(""))


class AgiVoice:
    def __init__(self, session: AgiSession, audio: AudioSource) -> None:
        self.session, self.audio = session, audio

    async def say(self, prompt: Rendered) -> bool:
        try:
            await self.session.stream_file(await self.audio.path_for(prompt), "")
        except AgiHangup:
            return False
        return True

    async def ask(self, prompt: Rendered, max_digits: int, timeout_s: float) -> str | None:
        try:
            digits, _ = await self.session.get_data(
                await self.audio.path_for(prompt), int(timeout_s * 1000), max_digits
            )
        except AgiHangup:
            return None
        return digits

    async def hangup(self) -> None:
        return None  # the dialplan hangs up when AGI() returns; the limited message has ended


class IvrApp:
    def __init__(
        self,
        store: Store,
        catalogue: Catalogue,
        audio: AudioSource,
        settings: Any,
        secret: bytes,
        clock: Clock,
    ) -> None:
        self.store, self.catalogue, self.audio, self.settings = store, catalogue, audio, settings
        self.clock = clock  # the best offer read to a verified debtor is today's (debtor-local)
        self.policy = Policy.from_settings(settings)
        self._hash = make_hasher(secret)
        self.calls = 0
        # admins' prompt edits (validated when made) apply from the next call on
        self._catalogues = CatalogueSource(settings, catalogue, store.prompt_overrides, store.prompt_version)

    async def handle(self, session: AgiSession) -> None:
        self.calls += 1
        self.catalogue = await self._catalogues.current()
        attempt_id = session.arg(1)
        request = await self.store.ivr_request(attempt_id) if attempt_id else None
        state = None
        if request is not None:
            (state,) = await self.store.load_accounts(request["campaign"], [request["account_id"]])
        if request is None or state is None:
            log.warning("AGI call for unknown attempt %r: none-level prompt, hang up", attempt_id)
            rendered = self.catalogue.render(
                "sorry_unknown_call", self.settings.service.language, {}, verified=False
            )
            await AgiVoice(session, self.audio).say(rendered)
            await session.hangup()
            return
        account = state.account
        language = request.get("language", "pt-BR")
        number = request.get("phone") or (state.phones[0].number if state.phones else None)
        windows = callback_windows_for(account, number, self.policy)
        try:
            amd = await session.get_variable("AMDSTATUS")
        except AgiHangup:
            amd = None  # gone already: the conversation records the hang-up

        offer = best_offer_for(
            account,
            state.phones,
            self.clock.now(),
            self.settings,
            await self.store.special_offer(account.account_id),
        )

        def check(kind: str, digits: str) -> bool:
            stored = account.verify_birth_year_hash if kind == "birth_year" else account.verify_digits_hash
            return stored is not None and self._hash(account.account_id, kind, digits) == stored

        result = await run_conversation(
            AgiVoice(session, self.audio),
            self.catalogue,
            party_for(account, windows, offer),
            call_fields(account, self.settings.company, language, offer),
            language,
            amd,
            check,
        )
        await self.store.ivr_save_result(
            attempt_id,
            {
                "outcome": result.outcome.value,
                "verified": result.verified,
                "amd": amd,
                "actions": [{"kind": a.kind, **dict(a.data)} for a in result.actions],
                "events": result.events,
            },
        )
        try:
            await session.set_variable("REGUA_OUTCOME", result.outcome.value)
        except AgiHangup:
            pass

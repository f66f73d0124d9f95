"""A prompt's disclosure level is the catalogue file's: an admin's edit may only make it stricter,
and the sandbox hears the same edits real calls hear."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from dialer.clock import SystemClock
from dialer.domain import Account, Phone
from dialer.errors import ConfigError
from dialer.rules.disclosure import Level
from dialer.telephony.base import CallRequest
from ivr.prompts import Catalogue, CatalogueSource, DisclosureViolation, catalogue_for
from ivr.sandbox_runner import make_sandbox_ivr

NAMES = ("Exemplo Cobranças", "Loja Exemplo S.A.")


def load(settings, overrides):
    return Catalogue.load(settings.limited_message.voice, NAMES, overrides=overrides)


@pytest.mark.parametrize(
    ("override", "file_level", "asked"),
    [
        # the attack: a verification question made "full", so it could carry the debt before verification
        (
            {"ask_identity": {"level": "full", "pt-BR": "Olá {name}: você deve {amount_words}."}},
            "limited",
            "full",
        ),
        ({"ask_identity": {"level": "full"}}, "limited", "full"),
        ({"goodbye": {"level": "limited", "en": "Bye {name}"}}, "none", "limited"),
        ({"goodbye": {"level": "full"}}, "none", "full"),
        ({"verify_retry": {"level": "limited"}}, "none", "limited"),
    ],
)
def test_an_edit_may_not_loosen_a_prompts_level(settings, override, file_level, asked):
    with pytest.raises(ConfigError) as info:
        load(settings, override)
    (pid,) = override
    assert pid in info.value.key and "level" in info.value.key
    assert file_level in info.value.reason and asked in info.value.reason
    assert "stricter" in info.value.reason


@pytest.mark.parametrize(
    ("override", "pid", "level"),
    [
        ({"confirm_stop": {"level": "none"}}, "confirm_stop", Level.NONE),
        (
            {"confirm_callback": {"level": "limited", "pt-BR": "Pronto.", "en": "Done."}},
            "confirm_callback",
            Level.LIMITED,
        ),
        ({"goodbye": {"level": "none", "en": "Bye now."}}, "goodbye", Level.NONE),
        # no level in the edit: the file's stands
        (
            {"ask_identity": {"en": "Hi. Is this {name}? Press 1 if so, 2 if not."}},
            "ask_identity",
            Level.LIMITED,
        ),
        ({"debt": {"en": "{company}: {amount_words}, due {due_words}."}}, "debt", Level.FULL),
    ],
)
def test_an_edit_may_keep_or_tighten_a_level(settings, override, pid, level):
    assert load(settings, override).level(pid) is level


def test_a_tightened_prompt_is_checked_at_its_new_level(settings):
    # the debt made limited must then say nothing of the debt
    with pytest.raises(ConfigError, match="debt"):
        load(settings, {"debt": {"level": "limited"}})


def test_render_still_refuses_full_before_verification(settings):
    catalogue = load(settings, {"debt": {"en": "{company}: {amount_words}."}})
    with pytest.raises(DisclosureViolation):
        catalogue.render("debt", "en", {"company": "X", "amount_words": "ten"}, verified=False)


# ------------------------------------------------------------------ the catalogue's source


class Overrides:
    """Stands in for ``Store.prompt_overrides``: (overrides, version), counting reads."""

    def __init__(self) -> None:
        self.overrides: dict = {}
        self.version = 0
        self.reads = 0
        self.fail = False

    async def __call__(self) -> tuple[dict, int]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("redis is down")
        return self.overrides, self.version


async def test_source_reloads_only_when_the_version_changes(settings):
    read = Overrides()
    source = CatalogueSource(settings, catalogue_for(settings), read)
    first = await source.current()
    assert first.prompts["goodbye"].texts["en"] == "Thank you. Goodbye."
    read.overrides = {"goodbye": {"en": "Bye now."}}
    assert await source.current() is first  # same version: the edit is not seen yet
    read.version = 1
    second = await source.current()
    assert second.prompts["goodbye"].texts["en"] == "Bye now."
    assert await source.current() is second
    assert read.reads == 4


async def test_source_keeps_its_catalogue_when_the_store_fails_or_an_edit_is_bad(settings):
    read = Overrides()
    source = CatalogueSource(settings, catalogue_for(settings), read)
    good = await source.current()
    read.fail = True
    assert await source.current() is good
    read.fail = False
    read.overrides, read.version = {"ask_identity": {"level": "full"}}, 2  # saved before levels were checked
    assert await source.current() is good
    assert (await source.current()).level("ask_identity") is Level.LIMITED


async def test_source_without_overrides_is_the_file(settings):
    catalogue = catalogue_for(settings)
    assert await CatalogueSource(settings, catalogue).current() is catalogue


def _request() -> CallRequest:
    account = Account("S1", "Maria Silva", date(2026, 11, 1), Decimal("100.00"))
    return CallRequest("c1:S1-0", "c1", account, Phone("+5511987654320"), "d10")


async def test_the_sandbox_hears_the_admins_edits(settings):
    read = Overrides()
    read.overrides, read.version = {"goodbye": {"pt-BR": "Tchau, até a próxima."}}, 1
    run = make_sandbox_ivr(settings, SystemClock(), overrides=read)
    script = SimpleNamespace(keys=("1", "1"), amd="HUMAN")  # no second factor: 1 is "it's me", 1 the link
    _, _, events = await run(_request(), script)
    spoken = {e["prompt"]: e["text"] for e in events if e["kind"] == "prompt"}
    assert spoken["goodbye"] == "Tchau, até a próxima."
    read.overrides, read.version = {}, 2
    _, _, events = await run(_request(), script)
    spoken = {e["prompt"]: e["text"] for e in events if e["kind"] == "prompt"}
    assert spoken["goodbye"] == "Obrigado. Até logo."


async def test_the_sandbox_without_overrides_still_works(settings):
    run = make_sandbox_ivr(settings, SystemClock())
    outcome, actions, _ = await run(_request(), SimpleNamespace(keys=("1", "1"), amd="HUMAN"))
    assert outcome.value == "answered_verified" and [a.kind for a in actions] == ["payment_link"]

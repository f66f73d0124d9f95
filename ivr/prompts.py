"""The prompt catalogue and the one place prompts are rendered.

``Catalogue.load()`` reads ``prompts/catalogue.toml`` (and the limited message from the
settings), checks each prompt's text against its disclosure level, and refuses to start
on a violation. ``Catalogue.render(prompt_id, language, fields, verified=…)`` is the
only way a prompt's text is produced: a ``full`` prompt for a party not verified on
this call raises ``DisclosureViolation`` — the run-time half of the guarantee whose
static half is ``tests/test_ivr_flow.py``'s walk of every path of the flow.

A prompt's level is the catalogue file's: an admin's edit (``overrides``) may keep it or
make it stricter (full → limited → none), never looser — a looser level is refused with
``ConfigError``, so no edit can turn a verification question into a full prompt.
``CatalogueSource`` keeps the catalogue a service renders with up to date with the
admins' edits (the FastAGI app and the sandbox share it).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialer.errors import ConfigError, ReguaError
from dialer.rules.disclosure import Level, level_problems, limited_problems

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
CATALOGUE = PROMPTS_DIR / "catalogue.toml"
LANGUAGES = ("pt-BR", "en")
LIMITED_MESSAGE = "limited_message"

log = logging.getLogger("regua.ivr")

#: The admins' prompt edits and their version (``Store.prompt_overrides`` has this shape).
OverridesReader = Callable[[], Awaitable[tuple[Mapping[str, Mapping[str, object]], int]]]
#: The version alone, when it is cheaper to read (``Store.prompt_version``).
VersionReader = Callable[[], Awaitable[int]]


class DisclosureViolation(ReguaError):
    """A full-level prompt was about to reach a party not verified on this call."""


@dataclass(frozen=True, slots=True)
class Prompt:
    id: str
    level: Level
    texts: Mapping[str, str]  # language -> template
    audio: Mapping[str, str]  # language -> recorded file (relative to prompts/)


@dataclass(frozen=True, slots=True)
class Rendered:
    prompt_id: str
    level: Level
    language: str
    text: str
    audio: str | None = None


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise DisclosureViolation(f"placeholder {{{key}}} has no value")


@dataclass(frozen=True, slots=True)
class Catalogue:
    prompts: Mapping[str, Prompt]

    @classmethod
    def load(
        cls,
        limited_message: Mapping[str, str],
        forbidden_names: tuple[str, ...] = (),
        path: Path = CATALOGUE,
        overrides: Mapping[str, Mapping[str, object]] | None = None,
    ) -> Catalogue:
        """Read and check the catalogue; ``overrides`` are admins' edits (same shape as the file)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(path), "-", f"cannot read the prompt catalogue: {exc}") from None
        for pid, body in (overrides or {}).items():
            if pid in data:
                _check_stricter(pid, data[pid], body)
            data.setdefault(pid, {}).update(body)
        prompts: dict[str, Prompt] = {}
        for pid, body in data.items():
            prompts[pid] = _prompt(str(path), pid, body, forbidden_names)
        for lang, text in limited_message.items():
            problems = limited_problems(text, forbidden_names)
            if problems:
                raise ConfigError("limited_message.voice", lang, "; ".join(problems))
        prompts[LIMITED_MESSAGE] = Prompt(LIMITED_MESSAGE, Level.LIMITED, dict(limited_message), {})
        return cls(prompts)

    def level(self, prompt_id: str) -> Level:
        return self.prompts[prompt_id].level

    def render(self, prompt_id: str, language: str, fields: Mapping[str, str], *, verified: bool) -> Rendered:
        """The prompt's text for this call. Refuses a full prompt before verification."""
        prompt = self.prompts[prompt_id]
        if prompt.level is Level.FULL and not verified:
            raise DisclosureViolation(f"prompt {prompt_id!r} is full-level and the party is not verified")
        template = (
            prompt.texts.get(language) or prompt.texts.get("pt-BR") or next(iter(prompt.texts.values()))
        )
        text = template.format_map(_Fields(fields))
        return Rendered(prompt_id, prompt.level, language, text, prompt.audio.get(language))


def _level_of(body: object) -> Level | None:
    if not isinstance(body, Mapping) or "level" not in body:
        return None
    try:
        return Level(str(body["level"]))
    except ValueError:
        return None  # not a level at all: _prompt says so


def _check_stricter(pid: str, file_body: object, edit: Mapping[str, object]) -> None:
    """An edit may keep a prompt's level or make it stricter (full → limited → none), never looser."""
    ours, theirs = _level_of(file_body), _level_of(edit)
    if ours is not None and theirs is not None and theirs.rank > ours.rank:
        raise ConfigError(
            "prompt overrides",
            f"{pid}.level",
            f"the catalogue makes {pid!r} a {ours.value} prompt; an edit may only make a level"
            f" stricter (full → limited → none), not {theirs.value}",
        )


def _prompt(file: str, pid: str, body: object, forbidden_names: tuple[str, ...]) -> Prompt:
    if not isinstance(body, dict):
        raise ConfigError(file, pid, "a prompt is a table with level and texts")
    try:
        level = Level(str(body.get("level", "")))
    except ValueError:
        raise ConfigError(file, f"{pid}.level", "must be none, limited or full") from None
    texts = {lang: str(body[lang]) for lang in LANGUAGES if lang in body}
    if not texts:
        raise ConfigError(file, pid, f"needs a text in at least one of {', '.join(LANGUAGES)}")
    unknown = set(body) - {"level", "audio", *LANGUAGES}
    if unknown:
        raise ConfigError(file, f"{pid}.{sorted(unknown)[0]}", "unknown key (level, audio, pt-BR, en)")
    for lang, text in texts.items():
        problems = level_problems(text, level, forbidden_names)
        if problems:
            raise ConfigError(file, f"{pid}.{lang}", "; ".join(problems))
    audio = body.get("audio", {})
    if not isinstance(audio, dict):
        raise ConfigError(file, f"{pid}.audio", "must map a language to a file under prompts/")
    return Prompt(pid, level, texts, {str(k): str(v) for k, v in audio.items()})


def catalogue_for(settings: Any, overrides: Mapping[str, Mapping[str, object]] | None = None) -> Catalogue:
    """The catalogue with the company's limited message and names, and the admins' edits."""
    company = settings.company
    return Catalogue.load(
        settings.limited_message.voice, (*company.collection_names, company.name), overrides=overrides
    )


class CatalogueSource:
    """The catalogue as the admins last edited it: ``current()`` re-reads their edits when
    their version changes and keeps the catalogue it has when the read fails (a bad read must
    not silence the IVR) or the edits are refused (edits saved before a check existed)."""

    def __init__(
        self,
        settings: Any,
        catalogue: Catalogue,
        overrides: OverridesReader | None = None,
        version: VersionReader | None = None,
    ) -> None:
        self.settings, self.catalogue = settings, catalogue
        self._overrides, self._read_version = overrides, version
        self._version: int | None = None

    async def current(self) -> Catalogue:
        """The catalogue for the next call (admins' edits apply from the next call on)."""
        if self._overrides is None:
            return self.catalogue
        try:
            if self._read_version is not None and await self._read_version() == self._version:
                return self.catalogue
            overrides, version = await self._overrides()
        except Exception:
            log.exception("could not read the prompt edits: keeping the catalogue")
            return self.catalogue
        if version != self._version:
            try:
                self.catalogue = catalogue_for(self.settings, overrides)
            except Exception:  # the same edits would fail again: wait for the next version
                log.exception("prompt edits version %s refused: keeping the catalogue", version)
            self._version = version
        return self.catalogue

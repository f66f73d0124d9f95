"""Admins edit IVR prompts: text per language and level, or a recorded file (WAV, MP3, OGG).

Every edit is validated against its disclosure level exactly as the catalogue file is
(a limited prompt that mentions money, a debt or the collector is refused), stored in
Redis as an override of ``prompts/catalogue.toml``, audited, and picked up by the IVR on
its next call. Uploaded recordings are converted to 8 kHz mono 16-bit and stored in the
sounds directory Asterisk reads. Admins hear a prompt as a call would: its current text
spoken by the TTS (sample values for its placeholders, cached by content in the sounds
directory, as the IVR's own renderings are) or its converted recording, as WAV.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from dialer.domain import Account
from dialer.errors import ConfigError, InputError
from dialer.web.common import RouteTable, Services, actor, now, services
from ivr.audio import AudioError, AudioInfo, convert_for_asterisk, sounds_dir
from ivr.conversation import CALLBACK_OPTION, call_fields
from ivr.prompts import LANGUAGES, LIMITED_MESSAGE, Catalogue, Prompt, catalogue_for
from ivr.speech_text import hour_range_words
from ivr.tts import EspeakTTS, TtsError

MAX_AUDIO = 50 * 1024 * 1024
PROMPT_ID = re.compile(r"[a-z_]{1,40}")
routes = RouteTable()
_catalogue = catalogue_for
_engines: dict[Path, EspeakTTS] = {}  # one engine per sounds directory: its renders share locks

#: Whom a prompt is spoken to when an admin hears it (no debtor's data leaves the store).
SAMPLE_ACCOUNTS = {
    "pt-BR": Account("SAMPLE", "Maria Silva", date(2026, 11, 10), Decimal("1234.56")),
    "en": Account("SAMPLE", "Mary Smith", date(2026, 11, 10), Decimal("1234.56"), currency="USD"),
}


@routes.route("GET", "/api/prompts", "admin")
async def list_prompts(request: web.Request) -> web.Response:
    s = services(request)
    overrides, _ = await s.store.prompt_overrides()
    catalogue = _catalogue(s.runtime.settings, overrides)
    return web.json_response(
        {
            pid: {
                "level": p.level.value,
                "texts": dict(p.texts),
                "audio": dict(p.audio),
                "edited": pid in overrides,
            }
            for pid, p in sorted(catalogue.prompts.items())
        }
    )


@routes.route("PUT", "/api/prompts/{prompt_id}", "admin")
async def edit_prompt(request: web.Request) -> web.Response:
    s = services(request)
    pid = request.match_info["prompt_id"]
    check_prompt_id(pid)
    try:
        body = await request.json()
    except ValueError:
        raise InputError('the body must be JSON: {"level": …, "pt-BR": …, "en": …}') from None
    if not isinstance(body, dict):
        raise InputError(f"allowed fields: level, {', '.join(LANGUAGES)}")
    try:
        await save_prompt_edit(s, pid, body, now(request), actor(request))
    except ConfigError as exc:
        return web.json_response({"error": exc.reason, "key": exc.key}, status=400)
    return web.json_response({"prompt": pid, "saved": True})


@routes.route("POST", "/api/prompts/{prompt_id}/audio", "admin")
async def upload_audio(request: web.Request) -> web.Response:
    """Body: the recording (WAV, MP3 or OGG); ``?language=pt-BR``."""
    s = services(request)
    pid = request.match_info["prompt_id"]
    language = request.query.get("language", "pt-BR")
    if language not in LANGUAGES:
        raise InputError(f"language must be one of {', '.join(LANGUAGES)}")
    overrides, _ = await s.store.prompt_overrides()
    if pid not in _catalogue(s.runtime.settings, overrides).prompts:
        return web.json_response({"error": f"no prompt {pid!r}"}, status=404)
    data = await request.content.read(MAX_AUDIO + 1)
    try:
        info = await save_recording(s, pid, language, data, now(request), actor(request))
    except AudioError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(
        {
            "prompt": pid,
            "language": language,
            "seconds": info.duration_s,
            "frame_rate": info.frame_rate,
            "dbfs": info.dbfs,
        }
    )


@routes.route("GET", "/api/prompts/{prompt_id}/speech", "admin")
async def hear_prompt(request: web.Request) -> web.StreamResponse:
    """The prompt's current text in ``?language=`` spoken by the TTS, as WAV (sample values
    for its placeholders): what a call hears when no recording is attached."""
    s = services(request)
    catalogue = await current_catalogue(s)
    prompt = catalogue.prompts.get(request.match_info["prompt_id"])
    if prompt is None:
        return web.json_response({"error": "no such prompt"}, status=404)
    language = _language(request)
    try:
        path = await speech_file(s, catalogue, prompt, language)
    except TtsError as exc:
        return web.json_response({"error": str(exc)}, status=503)
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@routes.route("GET", "/api/prompts/{prompt_id}/recording", "admin")
async def hear_recording(request: web.Request) -> web.StreamResponse:
    """The prompt's recording in ``?language=``, as converted for Asterisk (WAV)."""
    s = services(request)
    catalogue = await current_catalogue(s)
    prompt = catalogue.prompts.get(request.match_info["prompt_id"])
    path = recording_file(s, prompt, _language(request)) if prompt is not None else None
    if path is None:
        return web.json_response({"error": "no recording for this prompt in this language"}, status=404)
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


# ---------------------------------------------------------------------------- shared with the console


def check_prompt_id(pid: str) -> None:
    if not PROMPT_ID.fullmatch(pid) or pid == LIMITED_MESSAGE:
        raise InputError(
            "prompt ids are lower-case words; the limited message is edited in the configuration"
        )


async def current_catalogue(s: Services) -> Catalogue:
    """The catalogue with the admins' edits, as the IVR's next call renders it."""
    overrides, _ = await s.store.prompt_overrides()
    return _catalogue(s.runtime.settings, overrides)


async def save_prompt_edit(s: Services, pid: str, body: Mapping[str, Any], at: datetime, who: str) -> None:
    """Lay ``body`` ({level, pt-BR, en}) over prompt ``pid``, checked exactly as the catalogue
    file is (ConfigError names the key and the reason; nothing is stored then), audited."""
    check_prompt_id(pid)
    if not set(body) <= {"level", *LANGUAGES}:
        raise InputError(f"allowed fields: level, {', '.join(LANGUAGES)}")
    overrides, _ = await s.store.prompt_overrides()
    merged = {**overrides, pid: {**overrides.get(pid, {}), **{k: str(v) for k, v in body.items()}}}
    _catalogue(s.runtime.settings, merged)  # the same checks as the file at start
    await s.store.save_prompt_overrides(merged, at, who, {"prompt": pid, "change": dict(body)})


async def save_recording(
    s: Services, pid: str, language: str, data: bytes, at: datetime, who: str
) -> AudioInfo:
    """Convert ``data`` for Asterisk and attach it to prompt ``pid`` in ``language``, audited
    (AudioError says why a file cannot be a prompt)."""
    if len(data) > MAX_AUDIO:
        raise AudioError("recording larger than 50 MiB")
    name = f"recorded/{pid}-{language}"
    info = await asyncio.to_thread(convert_for_asterisk, data, sounds_dir(s.runtime.settings) / name)
    overrides, _ = await s.store.prompt_overrides()
    entry = dict(overrides.get(pid, {}))
    entry["audio"] = {**entry.get("audio", {}), language: name}
    merged = {**overrides, pid: entry}
    await s.store.save_prompt_overrides(
        merged, at, who, {"prompt": pid, "audio": name, "seconds": info.duration_s}
    )
    return info


class _Sample(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return key


def sample_fields(s: Services, catalogue: Catalogue, language: str) -> dict[str, str]:
    """Every value a prompt may name, for a sample debtor (an admin hears the prompt, not a
    person's data)."""
    fields = call_fields(SAMPLE_ACCOUNTS[language], s.runtime.settings.company, language)
    fields.update(window_words=hour_range_words(9 * 3600, 12 * 3600, language), key="1", digits_count="4")
    option = catalogue.prompts.get(CALLBACK_OPTION)
    if option is not None:
        fields["window_options"] = prompt_text(option, language).format_map(_Sample(fields))
    return fields


def prompt_text(prompt: Prompt, language: str) -> str:
    """The template a call in ``language`` uses (as ``Catalogue.render`` picks it)."""
    return prompt.texts.get(language) or prompt.texts.get("pt-BR") or next(iter(prompt.texts.values()))


async def speech_file(s: Services, catalogue: Catalogue, prompt: Prompt, language: str) -> Path:
    """The TTS rendering of ``prompt``'s current text (cached by content in the sounds directory)."""
    text = prompt_text(prompt, language).format_map(_Sample(sample_fields(s, catalogue, language)))
    root = sounds_dir(s.runtime.settings)
    engine = _engines.get(root) or _engines.setdefault(root, EspeakTTS(root))
    return await engine.synthesize(text, language)


def recording_file(s: Services, prompt: Prompt, language: str) -> Path | None:
    """The converted recording attached to ``prompt`` in ``language`` (None: there is none)."""
    name = prompt.audio.get(language)
    if not name:
        return None
    root = sounds_dir(s.runtime.settings)
    path = (root / name).with_suffix(".wav").resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _language(request: web.Request) -> str:
    language = request.query.get("language", "pt-BR")
    if language not in LANGUAGES:
        raise InputError(f"language must be one of {', '.join(LANGUAGES)}")
    return language

"""Admins edit IVR prompts: text per language and level, or a recorded file (WAV, MP3, OGG).

Every edit is validated against its disclosure level exactly as the catalogue file is
(a limited prompt that mentions money, a debt or the collector is refused), stored in
Redis as an override of ``prompts/catalogue.toml``, audited, and picked up by the IVR on
its next call. Uploaded recordings are converted to 8 kHz mono 16-bit and stored in the
sounds directory Asterisk reads.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from dialer.errors import ConfigError, InputError
from dialer.web.app import ROLE, SERVICES, route
from ivr.audio import AudioError, convert_for_asterisk
from ivr.prompts import LANGUAGES, Catalogue

OVERRIDES = "regua:prompts:overrides"
VERSION = "regua:prompts:version"
MAX_AUDIO = 50 * 1024 * 1024


async def load_overrides(redis: Any) -> dict[str, dict[str, Any]]:
    raw = await redis.get(OVERRIDES)
    return json.loads(raw) if raw else {}


def _catalogue(settings: Any, overrides: dict[str, dict[str, Any]]) -> Catalogue:
    company = settings.company
    return Catalogue.load(
        settings.limited_message.voice, (*company.collection_names, company.name), overrides=overrides
    )


@route("GET", "/api/prompts", "admin")
async def list_prompts(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    overrides = await load_overrides(s.store.r)
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


@route("PUT", "/api/prompts/{prompt_id}", "admin")
async def edit_prompt(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    pid = request.match_info["prompt_id"]
    if not re.fullmatch(r"[a-z_]{1,40}", pid) or pid == "limited_message":
        raise InputError(
            "prompt ids are lower-case words; the limited message is edited in the configuration"
        )
    try:
        body = await request.json()
    except ValueError:
        raise InputError('the body must be JSON: {"level": …, "pt-BR": …, "en": …}') from None
    if not isinstance(body, dict) or not set(body) <= {"level", *LANGUAGES}:
        raise InputError(f"allowed fields: level, {', '.join(LANGUAGES)}")
    overrides = await load_overrides(s.store.r)
    merged = {**overrides, pid: {**overrides.get(pid, {}), **{k: str(v) for k, v in body.items()}}}
    try:
        _catalogue(s.runtime.settings, merged)  # the same checks as the file at start
    except ConfigError as exc:
        return web.json_response({"error": exc.reason, "key": exc.key}, status=400)
    await _save(request, merged, {"prompt": pid, "change": body})
    return web.json_response({"prompt": pid, "saved": True})


@route("POST", "/api/prompts/{prompt_id}/audio", "admin")
async def upload_audio(request: web.Request) -> web.Response:
    """Body: the recording (WAV, MP3 or OGG); ``?language=pt-BR``."""
    from ivr.server import sounds_dir

    s = request.app[SERVICES]
    pid = request.match_info["prompt_id"]
    language = request.query.get("language", "pt-BR")
    if language not in LANGUAGES:
        raise InputError(f"language must be one of {', '.join(LANGUAGES)}")
    overrides = await load_overrides(s.store.r)
    if pid not in _catalogue(s.runtime.settings, overrides).prompts:
        return web.json_response({"error": f"no prompt {pid!r}"}, status=404)
    data = await request.content.read(MAX_AUDIO + 1)
    if len(data) > MAX_AUDIO:
        raise InputError("recording larger than 50 MiB")
    name = f"recorded/{pid}-{language}"
    try:
        info = await asyncio.to_thread(convert_for_asterisk, data, sounds_dir(s.runtime.settings) / name)
    except AudioError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    entry = dict(overrides.get(pid, {}))
    entry["audio"] = {**entry.get("audio", {}), language: name}
    merged = {**overrides, pid: entry}
    await _save(request, merged, {"prompt": pid, "audio": name, "seconds": info.duration_s})
    return web.json_response(
        {
            "prompt": pid,
            "language": language,
            "seconds": info.duration_s,
            "frame_rate": info.frame_rate,
            "dbfs": info.dbfs,
        }
    )


async def _save(request: web.Request, overrides: dict[str, Any], change: dict[str, Any]) -> None:
    s = request.app[SERVICES]
    now = s.runtime.clock.now()
    async with s.store.r.pipeline(transaction=True) as p:
        p.set(OVERRIDES, json.dumps(overrides, ensure_ascii=False))
        p.incr(VERSION)
        await p.execute()
    await s.store.audit_global(now, f"api:{request[ROLE]}", "prompt_change", change)

"""Admins edit IVR prompts: text per language and level, or a recorded file (WAV, MP3, OGG).

Every edit is validated against its disclosure level exactly as the catalogue file is
(a limited prompt that mentions money, a debt or the collector is refused), stored in
Redis as an override of ``prompts/catalogue.toml``, audited, and picked up by the IVR on
its next call. Uploaded recordings are converted to 8 kHz mono 16-bit and stored in the
sounds directory Asterisk reads.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from dialer.errors import ConfigError, InputError
from dialer.web.common import RouteTable, actor, now, services
from ivr.audio import AudioError, convert_for_asterisk, sounds_dir
from ivr.prompts import LANGUAGES, catalogue_for

MAX_AUDIO = 50 * 1024 * 1024
routes = RouteTable()
_catalogue = catalogue_for


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
    overrides, _ = await s.store.prompt_overrides()
    merged = {**overrides, pid: {**overrides.get(pid, {}), **{k: str(v) for k, v in body.items()}}}
    try:
        _catalogue(s.runtime.settings, merged)  # the same checks as the file at start
    except ConfigError as exc:
        return web.json_response({"error": exc.reason, "key": exc.key}, status=400)
    await _save(request, merged, {"prompt": pid, "change": body})
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
    s = services(request)
    await s.store.save_prompt_overrides(overrides, now(request), actor(request), change)

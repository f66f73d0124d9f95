"""The console's administration: hours, holidays, cadence, caps, the limited message and prompts.

Every change a form makes is a patch laid over the admins' overlay (``merge_overlay``) and
saved through ``operations.change_config`` — validated exactly as the files are at start
(the legal floors included), audited, applied live — or, for prompts, through the same
function as ``PUT /api/prompts/{id}``. A refusal re-renders the form with what the admin
typed and the validator's key and reason; nothing is stored then. A change saved redirects
(303) to its page, which says so. Users and tokens are in ``console_admin_users``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy

from dialer.domain import DAY_KEYS, Channel, format_day, parse_day
from dialer.errors import ConfigError, InputError, ReguaError
from dialer.rules.calling_hours import LEGAL_HOURS, legal_hours
from dialer.rules.config_check import FLOORS
from dialer.rules.disclosure import LIMITED_FIELDS, Level
from dialer.rules.local_time import BR_UF_ZONES, US_STATE_ZONES
from dialer.rules.messages import render_limited
from dialer.runtime import operations
from dialer.settings import Settings
from dialer.web import i18n, prompts
from dialer.web.common import RouteTable, actor, now, services
from dialer.web.render import language_of, page
from ivr.audio import AudioError
from ivr.prompts import LANGUAGES, LIMITED_MESSAGE

routes = RouteTable()

PACKS = ("BR", "US")
CHANNELS = ("voice", "sms")
METHODS = ("boleto", "card", "crediario")
CAPS = ("voice_per_phone_per_day", "voice_per_account_per_7_days", "sms_per_phone_per_day")
STATES = {"BR": frozenset(BR_UF_ZONES), "US": frozenset(US_STATE_ZONES)}
LEVELS = tuple(Level)  # none, limited, full: a prompt's level may only move left


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a change was refused: the validator's key (empty for a form's own problem) and reason."""

    key: str
    reason: str


def refusal(exc: ReguaError) -> Refusal:
    if isinstance(exc, ConfigError):
        return Refusal(exc.key, exc.reason)
    return Refusal("", str(exc))


def translator(request: web.Request) -> Callable[[str], str]:
    """``_`` for sentences written here, in the person's language."""
    return i18n.translations(language_of(request)).gettext


def admin_page(
    request: web.Request, template: str, *, refused: Refusal | None = None, **context: Any
) -> web.Response:
    """An admin page: what was just done (``?done=``) or why it was refused (status 400)."""
    version = request.query.get("version", "")
    return page(
        request,
        template,
        status=400 if refused else 200,
        done="" if refused else request.query.get("done", "")[:20],
        version=version if version.isdigit() else "",
        refusal=refused,
        **context,
    )


def done(path: str, what: str, version: int | None = None) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?done={what}" + (f"&version={version}" if version is not None else ""))


async def change(request: web.Request, patch: dict[str, Any]) -> int:
    """Lay ``patch`` over the admins' overlay: validated (legal floors), stored, audited, applied."""
    s = services(request)
    overlay, _ = await s.store.config_overlay()
    text = operations.merge_overlay(overlay, patch)
    return await operations.change_config(s.store, s.runtime, text, now(request), actor(request))


def text(form: MultiDictProxy[Any], name: str, limit: int = 200) -> str:
    return str(form.get(name, "")).strip()[:limit]


def number_or_text(raw: str) -> int | str:
    """A whole number, or the text as typed: then the validator says why it is not one."""
    try:
        return int(raw)
    except ValueError:
        return raw


def settings_of(request: web.Request) -> Settings:
    return services(request).runtime.settings


def pack_of(request: web.Request) -> str:
    pack = request.match_info["pack"]
    if pack not in PACKS or pack not in settings_of(request).packs:
        raise web.HTTPNotFound(text="no such rule pack (BR, US)")
    return pack


# ---------------------------------------------------------------------------- overview


@routes.route("GET", "/admin", "admin")
async def overview(request: web.Request) -> web.Response:
    overlay, version = await services(request).store.config_overlay()
    return admin_page(request, "admin.html", overlay=overlay, config_version=version)


@routes.route("POST", "/admin/config/clear", "admin", max_body=4096)
async def clear(request: web.Request) -> web.Response:
    s = services(request)
    try:
        version = await operations.clear_config(s.store, s.runtime, now(request), actor(request))
    except (ConfigError, InputError) as exc:  # the files themselves no longer pass: say why
        overlay, current = await s.store.config_overlay()
        return admin_page(
            request, "admin.html", refused=refusal(exc), overlay=overlay, config_version=current
        )
    raise done("/admin", "cleared", version)


# ---------------------------------------------------------------------------- calling hours


def states_of(settings: Settings, pack: str) -> list[str]:
    """``default``, then every state the law tables name, then any other the company configured."""
    named = sorted(s for c, s in LEGAL_HOURS if c == pack and s)
    configured = sorted(s for s in settings.packs[pack].hours if s != "default")
    return ["default", *dict.fromkeys([*named, *configured])]


def state_of(request: web.Request, pack: str) -> str:
    state = request.match_info["state"]
    if state != "default" and state not in STATES[pack]:
        raise web.HTTPNotFound(text="no such state")
    return state


def company_hours(settings: Settings, pack: str, state: str) -> dict[str, dict[str, str]]:
    """channel → day → the company's hours (a state without an entry follows the default)."""
    hours = settings.packs[pack].hours
    entry = hours.get(state) or hours["default"]
    return {
        ch: {day: format_day(parse_day(getattr(entry.for_channel(Channel(ch)), day))) for day in DAY_KEYS}
        for ch in CHANNELS
    }


def hour_rows(
    request: web.Request, pack: str, state: str, typed: Mapping[str, Mapping[str, str]] | None
) -> tuple[list[dict[str, str]], str]:
    """Per weekday: the company's hours (or what was typed), the law's and what Régua applies."""
    s = services(request)
    ours = typed or company_hours(s.runtime.settings, pack, state)
    law = legal_hours(pack, None if state == "default" else state)
    rows = []
    for i, day in enumerate(DAY_KEYS):
        row: dict[str, str] = {"day": day}
        for ch in CHANNELS:
            channel = Channel(ch)
            row[ch] = ours[ch][day]
            row[f"{ch}_law"] = format_day(law.for_channel(channel)[i])
            effective = s.runtime.policy.packs[pack].windows(None if state == "default" else state, channel)
            row[f"{ch}_effective"] = format_day(effective[i])
        rows.append(row)
    return rows, law.source


@routes.route("GET", "/admin/hours", "admin")
async def hours_index(request: web.Request) -> web.Response:
    settings = settings_of(request)
    packs = {
        pack: [
            {
                "state": state,
                "source": legal_hours(pack, None if state == "default" else state).source,
                "own": state in settings.packs[pack].hours,
                "voice": runs(company_hours(settings, pack, state)["voice"]),
            }
            for state in states_of(settings, pack)
        ]
        for pack in PACKS
    }
    return admin_page(request, "admin_hours.html", packs=packs)


def runs(days: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """Consecutive days with the same hours: (first day, last day, hours)."""
    out: list[tuple[str, str, str]] = []
    for day in DAY_KEYS:
        if out and out[-1][2] == days[day]:
            out[-1] = (out[-1][0], day, days[day])
        else:
            out.append((day, day, days[day]))
    return out


@routes.route("GET", "/admin/hours/{pack}/{state}", "admin")
async def hours_page(request: web.Request) -> web.Response:
    pack = pack_of(request)
    return _hours(request, pack, state_of(request, pack))


def _hours(
    request: web.Request,
    pack: str,
    state: str,
    typed: Mapping[str, Mapping[str, str]] | None = None,
    refused: Refusal | None = None,
) -> web.Response:
    rows, source = hour_rows(request, pack, state, typed)
    own = state in settings_of(request).packs[pack].hours
    return admin_page(
        request,
        "admin_hours_state.html",
        refused=refused,
        pack=pack,
        state=state,
        rows=rows,
        source=source,
        own=own,
    )


@routes.route("POST", "/admin/hours/{pack}/{state}", "admin", max_body=16 * 1024)
async def save_hours(request: web.Request) -> web.Response:
    pack = pack_of(request)
    state = state_of(request, pack)
    form = await request.post()
    typed = {ch: {day: text(form, f"{ch}-{day}", 100) for day in DAY_KEYS} for ch in CHANNELS}
    values = {ch: {day: _day(v) for day, v in days.items()} for ch, days in typed.items()}
    try:
        version = await change(request, {"packs": {pack: {"hours": {state: values}}}})
    except (ConfigError, InputError) as exc:
        return _hours(request, pack, state, typed, refusal(exc))
    raise done(f"/admin/hours/{pack}/{state}", "config", version)


def _day(raw: str) -> str:
    """``08:00-20:00`` as the files write it (``fechado`` → ``closed``); unreadable: as typed,
    for the validator to say why."""
    try:
        return format_day(parse_day(raw))
    except ValueError:
        return raw


# ---------------------------------------------------------------------------- holidays


def holidays_of(settings: Settings, pack: str) -> list[dict[str, Any]]:
    out = []
    for h in settings.packs[pack].custom_holidays:
        entry: dict[str, Any] = {"date": h.date, "name": h.name}
        if h.regions:
            entry["regions"] = list(h.regions)
        out.append(entry)
    return out


@routes.route("GET", "/admin/holidays", "admin")
async def holidays_page(request: web.Request) -> web.Response:
    return _holidays(request)


def _holidays(
    request: web.Request, refused: Refusal | None = None, typed: Mapping[str, str] | None = None
) -> web.Response:
    settings = settings_of(request)
    packs = {pack: holidays_of(settings, pack) for pack in PACKS}
    observed = {pack: settings.packs[pack].observe_holidays for pack in PACKS}
    return admin_page(
        request, "admin_holidays.html", refused=refused, packs=packs, observed=observed, typed=typed or {}
    )


@routes.route("POST", "/admin/holidays/{pack}", "admin", max_body=8192)
async def add_holiday(request: web.Request) -> web.Response:
    pack = pack_of(request)
    form = await request.post()
    typed = {"pack": pack, **{k: text(form, k) for k in ("date", "name", "regions")}}
    entry: dict[str, Any] = {"date": typed["date"], "name": typed["name"]}
    regions = [r.upper() for r in re.split(r"[\s,;]+", typed["regions"]) if r]
    if regions:
        entry["regions"] = regions
    listed = [*holidays_of(settings_of(request), pack), entry]
    try:
        version = await change(request, {"packs": {pack: {"custom_holidays": listed}}})
    except (ConfigError, InputError) as exc:
        return _holidays(request, refusal(exc), typed)
    raise done("/admin/holidays", "config", version)


@routes.route("POST", "/admin/holidays/{pack}/remove", "admin", max_body=8192)
async def remove_holiday(request: web.Request) -> web.Response:
    pack = pack_of(request)
    form = await request.post()
    listed = holidays_of(settings_of(request), pack)
    index = number_or_text(text(form, "index"))
    if (
        not isinstance(index, int)
        or not 0 <= index < len(listed)
        or listed[index]["date"] != text(form, "date")
    ):
        _ = translator(request)
        return _holidays(request, Refusal("", _("That holiday is no longer in the list: reload the page.")))
    del listed[index]
    try:
        version = await change(request, {"packs": {pack: {"custom_holidays": listed}}})
    except (ConfigError, InputError) as exc:
        return _holidays(request, refusal(exc))
    raise done("/admin/holidays", "config", version)


# ---------------------------------------------------------------------------- cadence


@routes.route("GET", "/admin/cadence", "admin")
async def cadence_page(request: web.Request) -> web.Response:
    cadence = settings_of(request).cadence
    return admin_page(request, "admin_cadence.html", cadence={m: cadence.get(m, ()) for m in METHODS})


def step_of(request: web.Request) -> tuple[str, int, dict[str, Any]]:
    method, step_id = request.match_info["method"], request.match_info["step"]
    steps = settings_of(request).cadence.get(method, ()) if method in METHODS else ()
    for i, step in enumerate(steps):
        if step.id == step_id:
            return method, i, step.model_dump(exclude_none=True)
    raise web.HTTPNotFound(text="no such step")


@routes.route("GET", "/admin/cadence/{method}/{step}", "admin")
async def step_page(request: web.Request) -> web.Response:
    method, _, step = step_of(request)
    return admin_page(request, "admin_cadence_step.html", method=method, step=step)


@routes.route("POST", "/admin/cadence/{method}/{step}", "admin", max_body=8192)
async def save_step(request: web.Request) -> web.Response:
    method, index, step = step_of(request)
    form = await request.post()
    typed = {**step, **{k: text(form, k, 40) for k in ("offset_days", "max_attempts", "retry_after_minutes")}}
    typed.update({k: text(form, k, 40) for k in ("channel", "template", "when", "fallback")})
    changed = {k: v for k, v in typed.items() if k != "offset_days"}
    for key in ("max_attempts", "retry_after_minutes"):
        changed[key] = number_or_text(typed[key])
    if typed["offset_days"] != "":
        changed["offset_days"] = number_or_text(typed["offset_days"])
    steps = [s.model_dump(exclude_none=True) for s in settings_of(request).cadence[method]]
    steps[index] = changed
    try:
        version = await change(request, {"cadence": {method: steps}})
    except (ConfigError, InputError) as exc:
        return admin_page(request, "admin_cadence_step.html", refused=refusal(exc), method=method, step=typed)
    raise done("/admin/cadence", "config", version)


# ---------------------------------------------------------------------------- caps


def cap_floors(pack: str) -> dict[str, tuple[int, str] | None]:
    return {cap: FLOORS[pack].get(cap) for cap in CAPS}


@routes.route("GET", "/admin/caps", "admin")
async def caps_page(request: web.Request) -> web.Response:
    return _caps(request)


def _caps(
    request: web.Request, refused: Refusal | None = None, typed: Mapping[str, Mapping[str, Any]] | None = None
) -> web.Response:
    settings = settings_of(request)
    values: dict[str, Mapping[str, Any]] = {p: settings.packs[p].caps.model_dump() for p in PACKS}
    values.update(typed or {})
    floors = {pack: cap_floors(pack) for pack in PACKS}
    return admin_page(request, "admin_caps.html", refused=refused, values=values, floors=floors)


@routes.route("POST", "/admin/caps/{pack}", "admin", max_body=4096)
async def save_caps(request: web.Request) -> web.Response:
    pack = pack_of(request)
    form = await request.post()
    typed = {cap: text(form, cap, 20) for cap in CAPS}
    try:
        version = await change(
            request, {"packs": {pack: {"caps": {k: number_or_text(v) for k, v in typed.items()}}}}
        )
    except (ConfigError, InputError) as exc:
        return _caps(request, refusal(exc), {pack: typed})
    raise done("/admin/caps", "config", version)


# ---------------------------------------------------------------------------- the limited message


@routes.route("GET", "/admin/limited-message", "admin")
async def limited_page(request: web.Request) -> web.Response:
    return _limited(request)


def _limited(
    request: web.Request, refused: Refusal | None = None, typed: Mapping[str, Mapping[str, str]] | None = None
) -> web.Response:
    settings = settings_of(request)
    texts: dict[str, Mapping[str, str]] = {
        "voice": settings.limited_message.voice,
        "sms": settings.limited_message.sms,
    }
    previews = {
        kind: {
            lang: render_limited(templates, lang, prompts.SAMPLE_ACCOUNTS[lang], settings.company)
            for lang in LANGUAGES
        }
        for kind, templates in texts.items()
    }
    texts.update(typed or {})
    return admin_page(
        request,
        "admin_limited.html",
        refused=refused,
        texts=texts,
        previews=previews,
        fields=sorted(LIMITED_FIELDS),
        prompt_id=LIMITED_MESSAGE,
    )


@routes.route("POST", "/admin/limited-message/{kind}", "admin", max_body=16 * 1024)
async def save_limited(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    if kind not in CHANNELS:
        raise web.HTTPNotFound(text="the limited message is voice or sms")
    form = await request.post()
    typed = {lang: text(form, lang, 2000) for lang in LANGUAGES}
    try:
        version = await change(request, {"limited_message": {kind: typed}})
    except (ConfigError, InputError) as exc:
        return _limited(request, refusal(exc), {kind: typed})
    raise done("/admin/limited-message", "config", version)


# ---------------------------------------------------------------------------- prompts


@routes.route("GET", "/admin/prompts", "admin")
async def prompts_page(request: web.Request) -> web.Response:
    s = services(request)
    overrides, _ = await s.store.prompt_overrides()
    catalogue = await prompts.current_catalogue(s)
    listed = [(pid, p, pid in overrides) for pid, p in sorted(catalogue.prompts.items())]
    return admin_page(request, "admin_prompts.html", prompts=listed, limited_id=LIMITED_MESSAGE)


async def _prompt(
    request: web.Request, refused: Refusal | None = None, typed: Mapping[str, str] | None = None
) -> web.Response:
    s = services(request)
    pid = request.match_info["prompt_id"]
    catalogue = await prompts.current_catalogue(s)
    prompt = catalogue.prompts.get(pid)
    if prompt is None or pid == LIMITED_MESSAGE:
        raise web.HTTPNotFound(text="no such prompt")
    texts = {lang: prompt.texts.get(lang, "") for lang in LANGUAGES}
    texts.update(typed or {})
    recordings = {lang: prompts.recording_file(s, prompt, lang) is not None for lang in LANGUAGES}
    levels = [level.value for level in LEVELS if level.rank <= prompt.level.rank]
    return admin_page(
        request,
        "admin_prompt.html",
        refused=refused,
        pid=pid,
        prompt=prompt,
        texts=texts,
        levels=levels,
        recordings=recordings,
        languages=LANGUAGES,
    )


@routes.route("GET", "/admin/prompts/{prompt_id}", "admin")
async def prompt_page(request: web.Request) -> web.Response:
    return await _prompt(request)


@routes.route("POST", "/admin/prompts/{prompt_id}", "admin", max_body=16 * 1024)
async def save_prompt(request: web.Request) -> web.Response:
    s = services(request)
    pid = request.match_info["prompt_id"]
    prompt = (await prompts.current_catalogue(s)).prompts.get(pid)
    if prompt is None or pid == LIMITED_MESSAGE:
        raise web.HTTPNotFound(text="no such prompt")
    form = await request.post()
    typed = {lang: text(form, lang, 2000) for lang in LANGUAGES}
    body: dict[str, str] = {k: v for k, v in typed.items() if v != prompt.texts.get(k, "")}
    level = text(form, "level", 20)
    if level and level != prompt.level.value:
        body["level"] = level
    if not body:
        raise done(f"/admin/prompts/{pid}", "unchanged")
    try:
        await prompts.save_prompt_edit(s, pid, body, now(request), actor(request))
    except (ConfigError, InputError) as exc:
        return await _prompt(request, refusal(exc), typed)
    raise done(f"/admin/prompts/{pid}", "prompt")


@routes.route("POST", "/admin/prompts/{prompt_id}/recording", "admin", max_body=prompts.MAX_AUDIO + 65536)
async def upload_recording(request: web.Request) -> web.Response:
    """A multipart form: ``language`` and ``file`` (WAV, MP3 or OGG), converted for Asterisk."""
    s = services(request)
    pid = request.match_info["prompt_id"]
    if pid not in (await prompts.current_catalogue(s)).prompts or pid == LIMITED_MESSAGE:
        raise web.HTTPNotFound(text="no such prompt")
    _ = translator(request)
    if not request.content_type.startswith("multipart/"):
        return await _prompt(request, Refusal("", _("Choose a recording (WAV, MP3 or OGG) to upload.")))
    try:
        fields, data = await _multipart(request, prompts.MAX_AUDIO)
        if fields.get("language") not in LANGUAGES:
            raise InputError(f"language must be one of {', '.join(LANGUAGES)}")
        await prompts.save_recording(s, pid, fields["language"], data, now(request), actor(request))
    except InputError as exc:  # AudioError says why the file cannot be a prompt
        return await _prompt(request, refusal(exc))
    raise done(f"/admin/prompts/{pid}", "recording")


async def _multipart(request: web.Request, limit: int) -> tuple[dict[str, str], bytes]:
    """A multipart form's short fields and its ``file``, read up to ``limit`` bytes."""
    fields: dict[str, str] = {}
    data = bytearray()
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            continue
        if part.name != "file":
            fields[str(part.name)] = (await part.text())[:40]
            continue
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > limit:
                raise AudioError(f"the file is larger than {limit // 2**20} MiB")
    return fields, bytes(data)

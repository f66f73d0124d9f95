"""The console's campaign pages: the list (the home page) and one campaign — its counters
(refreshed every 10 s), outcomes per hour as an SVG chart drawn here, what the rules held
back and why, uploading a file, the lifecycle and the report.

The error report of an upload is not kept anywhere: the page that answers the upload
carries it as a ``data:`` link (CSV, at most ``ERROR_REPORT_ROWS`` rows), so no debtor
data is left on the server's disk or in Redis and any process behind a balancer can
answer; loading the same file again gives the same report (loading is idempotent).

The other console modules take their shared helpers from here (the reader's words and
formats, the messages of a form that was carried out).
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from dialer.domain import Reason
from dialer.errors import HeaderError, InputError, UnknownCampaign
from dialer.formats import timeline_text as tt
from dialer.formats.report import spreadsheet_safe
from dialer.store import TRANSITIONS
from dialer.store.keys import valid_campaign_name
from dialer.web import i18n, uploads
from dialer.web.common import RouteTable, actor, now, principal, services
from dialer.web.render import language_of, page

routes = RouteTable()

ERROR_REPORT_ROWS = 20_000  # rows of the error report the answer carries (the CLI writes them all)
ERRORS_SHOWN = 20  # rejected rows shown in the page itself
LIFECYCLE = ("start", "pause", "resume", "stop")
MIN_HOURS = 12  # the chart spans at least this many hours (the last ones)
MAX_BAR = 40.0
#: the order of the chart's series and legend (the colours are in console.css, by outcome)
OUTCOME_ORDER = (
    "answered_verified",
    "answered_unverified",
    "third_party",
    "wrong_number",
    "voicemail",
    "no_answer",
    "busy",
    "congestion",
    "rejected",
    "invalid_number",
    "failed",
    "unknown",
    "sms_sent",
    "sms_delivered",
    "sms_failed",
)


# ---------------------------------------------------------------------------- shared helpers


def gettext_of(request: web.Request) -> Callable[[str], str]:
    return i18n.translations(language_of(request)).gettext


def zone_of(request: web.Request) -> str:
    who = principal(request)
    return who.zone if who is not None else "America/Sao_Paulo"


def formats_of(request: web.Request) -> tt.Formats:
    """Instants as this reader sees them (their zone and language)."""
    language, zone = language_of(request), zone_of(request)
    return tt.Formats(
        when=lambda at: i18n.when(at, language, zone, "EEE d MMM HH:mm"),
        local=lambda at, tz: i18n.when(at, language, tz, "HH:mm"),
        money=lambda amount: i18n.money(amount, "BRL", language),
    )


def words(request: web.Request) -> dict[str, Any]:
    """The template helpers that put codes into the reader's words."""
    _ = gettext_of(request)
    return {
        "reason_words": lambda code, region=None: tt.reason_words(str(code), _, region),
        "outcome_words": lambda code: tt.outcome_words(str(code), _),
        "status_words": lambda code: tt.status_words(str(code), _),
        "channel_words": lambda code: tt.channel_words(str(code or "*"), _),
        "suppression_words": lambda code: tt.suppression_reason_words(str(code), _),
        "show_phone": tt.show_phone,
    }


def message(request: web.Request, messages: Mapping[str, str]) -> str:
    """The sentence for ``?did=…`` after a form was carried out (only known keys)."""
    return messages.get(request.query.get("did", ""), "")


def see_other(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


# ---------------------------------------------------------------------------- the list


def progress(status: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The figures a campaign row and the counters show (``at``: the service's clock)."""
    c = status.get("counters", {})
    due = status.get("next_due")
    accounts = int(status.get("accounts", 0))
    done = int(c.get("done", 0))
    return {
        **status,
        "done": done,
        "percent": min(100, round(100 * done / accounts)) if accounts else 0,
        "calls": int(c.get("attempts:voice", 0)),
        "reached": int(c.get("outcome:answered_verified", 0)),
        "sms": int(c.get("attempts:sms", 0)),
        "callbacks": int(c.get("callbacks", 0)),
        "payment_links": int(c.get("payment_links", 0)),
        "due_now": bool(due) and datetime.fromisoformat(str(due)) <= at,
        "recovered": status.get("recovered", "0.00"),
        "payments": int(status.get("payments", 0)),
        "agreements": status.get("agreements")
        or {"made": 0, "current": 0, "kept": 0, "broken": 0, "amount": "0.00", "paid": "0.00"},
        "recovered_by_step": recovered_by(c, "step"),
        "recovered_by_channel": recovered_by(c, "channel"),
    }


def recovered_by(counters: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    """Money credited per régua step (or channel), largest first, with each bar's share
    of the largest (the page draws the bars)."""
    prefix = f"recovered_cents:{what}:"
    found = [
        (k.removeprefix(prefix), int(v)) for k, v in counters.items() if k.startswith(prefix) and int(v) > 0
    ]
    found.sort(key=lambda kv: (-kv[1], kv[0]))
    top = found[0][1] if found else 1
    return [
        {"name": name, "amount": f"{cents / 100:.2f}", "share": round(100 * cents / top, 1)}
        for name, cents in found
    ]


async def _statuses(request: web.Request) -> list[dict[str, Any]]:
    store = services(request).store
    out = []
    for name in await store.campaign_names():
        try:
            out.append(progress(await store.status(name), now(request)))
        except UnknownCampaign:  # removed meanwhile
            continue
    return out


@routes.route("GET", "/", "supervisor")
async def campaigns_page(request: web.Request) -> web.Response:
    return page(request, "campaigns.html", campaigns=await _statuses(request), error="", **words(request))


@routes.route("GET", "/campaigns-rows", "supervisor")
async def campaigns_rows(request: web.Request) -> web.Response:
    """The list's rows alone (the page reloads them every 10 s)."""
    return page(request, "campaigns_rows.html", campaigns=await _statuses(request), **words(request))


@routes.route("GET", "/new-campaign", "supervisor")
async def new_campaign(request: web.Request) -> web.Response:
    """Name a new campaign, then upload its first file (an existing one: its page)."""
    _ = gettext_of(request)
    name = request.query.get("name", "").strip()
    if not valid_campaign_name(name):
        error = _(
            "A campaign name has 1 to 64 letters, digits, '.', '_' or '-', and starts with a letter or a digit. Choose another name."
        )
        return page(
            request,
            "campaigns.html",
            status=400,
            campaigns=await _statuses(request),
            error=error,
            **words(request),
        )
    if await services(request).store.campaign(name) is not None:
        raise see_other(f"/campaigns/{name}")
    return page(request, "campaign_new.html", name=name, error="")


# ---------------------------------------------------------------------------- one campaign


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart's geometry, in the SVG's own units."""

    width: int
    height: int
    left: int
    top: int
    plot_w: float
    plot_h: float
    bars: list[dict[str, Any]]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str, str]]
    legend: list[tuple[str, str, int]]  # (outcome, words, total)
    rows: list[tuple[str, list[int]]]  # the table behind the chart: (hour, counts per legend entry)


def nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10ⁿ) that reaches ``top`` in about ``ticks`` steps."""
    if top <= ticks:
        return 1
    raw = top / ticks
    power: int = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def draw_chart(
    series: Mapping[str, Any],
    hour_label: Callable[[str], str],
    day_label: Callable[[str], str],
    outcome_label: Callable[[str], str],
    number: Callable[[int], str],
) -> Chart | None:
    """Stacked bars of outcomes per hour (``Store.series``), hours labelled in the reader's zone."""
    hours: list[str] = list(series.get("hours", []))
    data: dict[str, list[int]] = dict(series.get("series", {}))
    if not hours or not data:
        return None
    names = [o for o in OUTCOME_ORDER if o in data] + sorted(o for o in data if o not in OUTCOME_ORDER)
    if len(hours) < MIN_HOURS:  # a few hours of data: the hours before them, empty, for scale
        first = datetime.fromisoformat(hours[0])
        pad = [(first - timedelta(hours=n)).isoformat() for n in range(MIN_HOURS - len(hours), 0, -1)]
        hours = pad + hours
        data = {o: [0] * len(pad) + list(v) for o, v in data.items()}
    width, height, left, top, right, bottom = 760, 260, 48, 12, 12, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(data[o][i] for o in names) for i in range(len(hours))]
    step = nice_step(max(totals) or 1)
    y_max = step * math.ceil((max(totals) or 1) / step)
    slot = plot_w / len(hours)
    bar_w = min(MAX_BAR, max(1.0, slot * 0.8))
    bars: list[dict[str, Any]] = []
    for i, hour in enumerate(hours):
        y: float = top + plot_h
        for o in names:
            count = data[o][i]
            if not count:
                continue
            h = plot_h * count / y_max
            y -= h
            bars.append(
                {
                    "x": round(left + i * slot + (slot - bar_w) / 2, 2),
                    "y": round(y, 2),
                    "w": round(bar_w, 2),
                    "h": round(h, 2),
                    "outcome": o,
                    "title": f"{day_label(hour)} {hour_label(hour)} — {outcome_label(o)}: {number(count)}",
                }
            )
    y_ticks = [(round(top + plot_h - plot_h * v / y_max, 2), number(v)) for v in range(0, y_max + 1, step)]
    every = max(1, math.ceil(len(hours) / 8))
    x_ticks = []
    last_day = ""
    for i in range(0, len(hours), every):
        day = day_label(hours[i])
        x_ticks.append(
            (round(left + i * slot + slot / 2, 2), hour_label(hours[i]), day if day != last_day else "")
        )
        last_day = day
    legend = [(o, outcome_label(o), sum(data[o])) for o in names]
    rows = [
        (f"{day_label(h)} {hour_label(h)}", [data[o][i] for o in names])
        for i, h in enumerate(hours)
        if totals[i]
    ]
    return Chart(width, height, left, top, plot_w, plot_h, bars, y_ticks, x_ticks, legend, rows)


def held_back(status: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(reason, count of decisions it held back), the reasons of ``domain.Reason`` first."""
    counters: Mapping[str, int] = status.get("counters", {})
    found = {k.removeprefix("blocked:"): int(v) for k, v in counters.items() if k.startswith("blocked:")}
    known = [(r.value, found.pop(r.value)) for r in Reason if r.value in found]
    return known + sorted(found.items())


def actions_from(state: str) -> list[str]:
    return [a for a in LIFECYCLE if state in TRANSITIONS[a][0]]


async def _campaign_context(request: web.Request, name: str) -> dict[str, Any]:
    store = services(request).store
    status = progress(await store.status(name), now(request))  # UnknownCampaign: the caller answers 404
    language, zone = language_of(request), zone_of(request)
    chart = draw_chart(
        await store.series(name),
        lambda h: i18n.when(h, language, zone, "HH:mm"),
        lambda h: i18n.when(h, language, zone, "EEE d"),
        lambda o: tt.outcome_words(o, gettext_of(request)),
        lambda n: i18n.number(n, language),
    )
    return {
        "c": status,
        "chart": chart,
        "held": held_back(status),
        "actions": actions_from(str(status.get("state", ""))),
        **words(request),
    }


def _lifecycle_messages(_: Callable[[str], str]) -> dict[str, str]:
    return {
        "start": _("The campaign started: contacts begin as the rules allow them."),
        "pause": _("The campaign is paused: no new contact starts until you resume it."),
        "resume": _("The campaign resumed."),
        "stop": _("The campaign stopped: it makes no more contacts."),
    }


async def _campaign_page(request: web.Request, name: str, *, status: int = 200, **extra: Any) -> web.Response:
    _ = gettext_of(request)
    try:
        context = await _campaign_context(request, name)
    except UnknownCampaign:
        return _missing(request, name)
    base = {"notice": message(request, _lifecycle_messages(_)), "error": "", "upload": None}
    return page(request, "campaign.html", status=status, **{**base, **context, **extra})


def _missing(request: web.Request, name: str) -> web.Response:
    _ = gettext_of(request)
    text = _("There is no campaign named “{name}”. Pick one from the list, or load a file to create it.")
    return page(request, "not_found.html", status=404, text=text.format(name=name[:70]))


@routes.route("GET", "/campaigns/{name}", "supervisor")
async def campaign_page(request: web.Request) -> web.Response:
    return await _campaign_page(request, request.match_info["name"])


@routes.route("GET", "/campaigns/{name}/part/{part:counters|chart}", "supervisor")
async def campaign_part(request: web.Request) -> web.Response:
    """A part of the campaign page alone (the page reloads it: counters every 10 s)."""
    name = request.match_info["name"]
    try:
        context = await _campaign_context(request, name)
    except UnknownCampaign:
        return _missing(request, name)
    return page(request, f"campaign_{request.match_info['part']}.html", **context)


def error_report(name: str, errors: Sequence[Mapping[str, Any]]) -> str:
    """The rejected rows as a CSV ``data:`` link (cells that could run as a formula neutralised)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["line", "column", "value", "reason", "account_id"])
    for e in errors[:ERROR_REPORT_ROWS]:
        writer.writerow(
            [spreadsheet_safe(str(e.get(k, ""))) for k in ("line", "column", "value", "reason", "account_id")]
        )
    data = base64.b64encode(("\ufeff" + buf.getvalue()).encode()).decode()
    return f"data:text/csv;charset=utf-8;base64,{data}"


@routes.route("POST", "/campaigns/{name}/upload", "supervisor", max_body=uploads.MAX_UPLOAD)
async def upload(request: web.Request) -> web.Response:
    """A campaign file from the page's form (multipart, field ``file``): loaded by the same
    code as the API and the CLI; the page shows the summary and offers the error report."""
    _ = gettext_of(request)
    name = request.match_info["name"]
    if not valid_campaign_name(name):
        return _missing(request, name)
    exists = await services(request).store.campaign(name) is not None
    try:
        async with uploads.received(request) as received:
            summary, errors = await uploads.load_upload(services(request), received, name, actor(request))
    except HeaderError as exc:
        error = _(
            "The file was not loaded (nothing was written): {reason}. Fix the header and upload it again."
        )
        return await _upload_failed(request, name, exists, error.format(reason=str(exc)[:300]))
    except InputError as exc:
        error = _("The file was not loaded: {reason}. Choose a campaign file (CSV) and upload it again.")
        return await _upload_failed(request, name, exists, error.format(reason=str(exc)[:300]))
    result = {
        "summary": summary,
        "errors": errors[:ERRORS_SHOWN],
        "rejected": len(errors),
        "report": error_report(name, errors) if errors else "",
        "report_name": f"{name}-errors.csv",
        "report_cut": len(errors) > ERROR_REPORT_ROWS,
        "report_rows": ERROR_REPORT_ROWS,
    }
    return await _campaign_page(request, name, upload=result)


async def _upload_failed(request: web.Request, name: str, exists: bool, error: str) -> web.Response:
    if exists:
        return await _campaign_page(request, name, status=400, error=error)
    return page(request, "campaign_new.html", status=400, name=name, error=error)


@routes.route("POST", "/campaigns/{name}/do/{action:start|pause|resume|stop}", "supervisor", max_body=4096)
async def lifecycle(request: web.Request) -> web.Response:
    _ = gettext_of(request)
    name, action = request.match_info["name"], request.match_info["action"]
    result, previous = await services(request).store.transition(name, action, now(request), actor(request))
    if result == "missing":
        return _missing(request, name)
    if result == "refused":
        error = _(
            "This campaign is {state} now, so it cannot do that. Reload the page to see what it can do."
        )
        return await _campaign_page(
            request, name, status=409, error=error.format(state=_(previous) if previous else "?")
        )
    raise see_other(f"/campaigns/{name}?did={action}")

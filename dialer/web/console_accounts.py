"""The console's account pages: search (id, name, phone), the accounts the rules hold back
for a reason, and one account — its data, phones, status and its timeline as sentences.

Searching reads the campaigns' account records with a bounded SCAN
(``Store.search_accounts``): the page says when the result was cut at the limit, or when
the scan stopped before reading every account.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_date

from dialer.domain import AccountStatus, Reason
from dialer.errors import UnsupportedNumber
from dialer.formats import timeline_text as tt
from dialer.rules.local_time import locate
from dialer.runtime import operations
from dialer.store.values import AccountState
from dialer.web import i18n
from dialer.web.common import RouteTable, actor, now, query_int, services
from dialer.web.console_campaigns import formats_of, gettext_of, message, see_other, words
from dialer.web.render import language_of, page

routes = RouteTable()

TIMELINE_SHOWN = 300  # the newest events shown on an account's page
NOTE_MAX = 500
KNOWN_REASONS = frozenset(r.value for r in Reason)


@routes.route("GET", "/accounts", "supervisor")
async def accounts_page(request: web.Request) -> web.Response:
    """``?q=`` an id, a name or a phone; ``?campaign=&reason=`` the accounts held back."""
    store = services(request).store
    _ = gettext_of(request)
    query = request.query.get("q", "").strip()[:120]
    campaign = request.query.get("campaign", "").strip()
    reason = request.query.get("reason", "").strip()
    limit = query_int(request, "limit", 50, low=1, high=500)
    campaigns = await store.campaign_names()
    result, error, mode = None, "", "none"
    if reason:
        mode = "reason"
        if campaign not in campaigns:
            error = _("Choose one of the campaigns to see the accounts held back.")
        elif reason not in KNOWN_REASONS:
            error = _("That is not one of the rules' reasons. Follow a link from a campaign's page.")
        else:
            result = await store.held_back(campaign, reason, limit)
    elif query:
        mode = "search"
        if campaign and campaign not in campaigns:
            error = _("There is no campaign by that name: search every campaign instead.")
        else:
            result = await store.search_accounts(query, limit, campaign=campaign or None)
    return page(
        request,
        "accounts.html",
        status=400 if error else 200,
        query=query,
        campaign=campaign,
        reason=reason,
        campaigns=campaigns,
        result=result,
        mode=mode,
        limit=limit,
        error=error,
        **words(request),
    )


def debtor_zone(number: str, state: AccountState) -> str | None:
    """The debtor's zone for this phone (the first of its candidates), if we know the number."""
    try:
        return locate(number, state.account.region, state.account.timezone).zones[0]
    except (UnsupportedNumber, ValueError):
        return None


def _phones(
    state: AccountState, suppressed: dict[str, Any], at: datetime, language: str
) -> list[dict[str, Any]]:
    out = []
    for p in state.phones:
        zone = debtor_zone(p.number, state)
        out.append(
            {
                "number": p.number,
                "type": p.phone_type.value,
                "provided": p.provided_by_debtor,
                "voice": p.consent.voice,
                "sms": p.consent.sms,
                "zone": zone,
                "local": i18n.when(at, language, zone, "EEE HH:mm") if zone else "—",
                "stops": [
                    {"channel": s.channel.value if s.channel else "*", "reason": s.reason.value}
                    for s in suppressed.get(p.number, ())
                ],
            }
        )
    return out


def timeline_lines(request: web.Request, events: list[dict[str, Any]], zones: dict[str, str]) -> list[Any]:
    """The newest events first, each as a sentence with its raw form."""
    _, f = gettext_of(request), formats_of(request)
    default = next(iter(zones.values()), None)
    lines = []
    for event in reversed(events[-TIMELINE_SHOWN:]):
        zone = zones.get(str(event.get("phone", "")), default)
        lines.append(
            {
                "line": tt.describe(event, _, f, zone),
                "campaign": event.get("campaign", ""),
                "raw": json.dumps(event, ensure_ascii=False, indent=1, sort_keys=True, default=str),
            }
        )
    return lines


def _status_messages(_: Any) -> dict[str, str]:
    return {
        "status": _("The account's status was changed in every campaign holding it."),
        "same": _("The account already had that status: nothing changed."),
    }


@routes.route("GET", "/accounts/{account_id}", "supervisor")
async def account_page(request: web.Request) -> web.Response:
    return await _account_page(request, request.match_info["account_id"])


async def _account_page(
    request: web.Request, account_id: str, *, status: int = 200, error: str = ""
) -> web.Response:
    store = services(request).store
    _ = gettext_of(request)
    records = await store.account_records(account_id)
    if not records:
        text = _("No campaign holds an account with the id “{id}”. Search by name or phone instead.")
        return page(request, "not_found.html", status=404, text=text.format(id=account_id[:70]))
    at, language = now(request), language_of(request)
    numbers = {p.number for _c, s, _n in records for p in s.phones}
    suppressed = await store.suppressions(numbers)
    holdings = []
    zones: dict[str, str] = {}
    for campaign, state, next_at in records:
        phones = _phones(state, suppressed, at, language)
        zones.update({p["number"]: p["zone"] for p in phones if p["zone"]})
        holdings.append(
            {
                "campaign": campaign,
                "account": state.account,
                "due": format_date(state.account.due_date, "medium", locale=i18n.LANGUAGES[language]),
                "phones": phones,
                "next_at": next_at,
            }
        )
    events = await store.timeline(account_id)
    first = records[0][1].account
    return page(
        request,
        "account.html",
        status=status,
        account_id=account_id,
        first=first,
        holdings=holdings,
        lines=timeline_lines(request, events, zones),
        total_events=len(events),
        shown=TIMELINE_SHOWN,
        statuses=[s.value for s in AccountStatus],
        notice=message(request, _status_messages(_)),
        error=error,
        debtor_now=[
            (z, i18n.when(at.astimezone(ZoneInfo(z)), language, z, "EEE d MMM HH:mm"))
            for z in dict.fromkeys(zones.values())
        ],
        **words(request),
    )


@routes.route("POST", "/accounts/{account_id}/status", "supervisor", max_body=8192)
async def account_status(request: web.Request) -> web.Response:
    """The status form: paid, disputed, closed or open again, with a note (every campaign)."""
    _ = gettext_of(request)
    account_id = request.match_info["account_id"]
    form = await request.post()
    raw, note = str(form.get("status", "")), str(form.get("note", "")).strip()
    try:
        status = AccountStatus(raw)
    except ValueError:
        return await _account_page(
            request, account_id, status=400, error=_("Choose the new status: open, paid, disputed or closed.")
        )
    if len(note) > NOTE_MAX:
        error = _("The note is longer than {n} characters: shorten it and send it again.").format(n=NOTE_MAX)
        return await _account_page(request, account_id, status=400, error=error)
    changes = await operations.set_account_status(
        services(request).store, account_id, status, now(request), actor(request), note=note
    )
    if not changes:
        return await _account_page(request, account_id, status=404)
    did = "status" if any(c["changed"] for c in changes) else "same"
    raise see_other(f"/accounts/{quote(account_id, safe='')}?did={did}")

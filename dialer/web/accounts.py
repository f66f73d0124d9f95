"""Accounts: the timeline (why was this person called, or not?) and status changes."""

from __future__ import annotations

from aiohttp import web

from dialer.domain import SETTABLE_STATUSES
from dialer.runtime import operations
from dialer.web.common import RouteTable, actor, json_body, now, services

routes = RouteTable()


@routes.route("GET", "/api/accounts/{account_id}/timeline", "supervisor")
async def timeline(request: web.Request) -> web.Response:
    store = services(request).store
    events = await store.timeline(request.match_info["account_id"], request.query.get("campaign"))
    if not events:
        return web.json_response({"error": "no events for that account"}, status=404)
    return web.json_response(events)


@routes.route("POST", "/api/accounts/{account_id}/status", "supervisor")
async def account_status(request: web.Request) -> web.Response:
    """``{"status": "paid"|"disputed"|"closed"|"open", "campaign"?: str, "note"?: str}``"""
    body = await json_body(request)
    raw = body.get("status")
    status = next((s for s in SETTABLE_STATUSES if s.value == raw), None)
    if status is None:
        allowed = ", ".join(s.value for s in SETTABLE_STATUSES)
        return web.json_response({"error": f"field 'status': {raw!r} is not one of {allowed}"}, status=400)
    campaign, note = body.get("campaign"), body.get("note", "")
    if (
        (campaign is not None and not isinstance(campaign, str))
        or not isinstance(note, str)
        or len(note) > 500
    ):
        return web.json_response(
            {"error": "field 'campaign' must be a string and 'note' a string of at most 500 characters"},
            status=400,
        )
    account_id = request.match_info["account_id"]
    changes = await operations.set_account_status(
        services(request).store,
        account_id,
        status,
        now(request),
        actor(request),
        note=note,
        campaign=campaign,
    )
    if not changes:
        return web.json_response({"error": f"account {account_id!r} is in no campaign"}, status=404)
    return web.json_response({"account": account_id, "status": status, "campaigns": changes})

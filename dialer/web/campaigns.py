"""Campaigns: list, status, plots, upload (a campaign file), report, lifecycle."""

from __future__ import annotations

import io

from aiohttp import web

from dialer.formats.report import report_row, report_writer
from dialer.store import TRANSITIONS
from dialer.web import uploads
from dialer.web.common import RouteTable, actor, now, services

routes = RouteTable()


@routes.route("GET", "/api/campaigns", "supervisor")
async def campaigns(request: web.Request) -> web.Response:
    store = services(request).store
    return web.json_response([await store.status(n) for n in await store.campaign_names()])


@routes.route("GET", "/api/campaigns/{name}", "supervisor")
async def campaign_status(request: web.Request) -> web.Response:
    return web.json_response(await services(request).store.status(request.match_info["name"]))


@routes.route("GET", "/api/campaigns/{name}/series", "supervisor")
async def campaign_series(request: web.Request) -> web.Response:
    return web.json_response(await services(request).store.series(request.match_info["name"]))


@routes.route("POST", "/api/campaigns/{name}/upload", "supervisor", max_body=uploads.MAX_UPLOAD)
async def upload(request: web.Request) -> web.Response:
    """Body: the campaign file (text/csv, or multipart with a ``file`` field), at most
    ``uploads.MAX_UPLOAD``. ``?start=1`` starts the campaign after loading."""
    s = services(request)
    name = request.match_info["name"]
    uploads.check_campaign_name(name)  # before a byte is read
    async with uploads.received(request) as received:
        summary, errors = await uploads.load_upload(s, received, name, actor(request))
    if request.query.get("start") in ("1", "true", "yes"):
        await s.store.transition(name, "start", now(request), actor(request))
    return web.json_response({**summary, "errors": errors[:1000]})


@routes.route("GET", "/api/campaigns/{name}/report.csv", "supervisor")
async def campaign_report(request: web.Request) -> web.StreamResponse:
    """One CSV row per account, streamed in batches (the rows never sit in memory together).
    ``?excel=1``: semicolon-separated UTF-8 with a BOM and decimal commas, as Excel in a
    Brazilian locale opens it. Cells that could run as a formula are neutralised."""
    store = services(request).store
    name = request.match_info["name"]
    await store.status(name)  # unknown campaign: a 404 from the error middleware
    excel = request.query.get("excel") in ("1", "true", "yes")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}-report{"-excel" if excel else ""}.csv"',
        }
    )
    await response.prepare(request)
    buf = io.StringIO(newline="")
    writer = report_writer(buf, excel=excel)
    async for batch in store.iter_accounts(name):
        paid = await store.payment_summaries([s.account.account_id for s, _, _ in batch])
        for state, next_at, suppressed in batch:
            writer.writerow(
                report_row(
                    state.account,
                    state.phones,
                    state.history,
                    next_at,
                    suppressed,
                    paid.get(state.account.account_id),
                )
            )
        await response.write(buf.getvalue().encode())
        buf.seek(0)
        buf.truncate()
    await response.write(buf.getvalue().encode())
    await response.write_eof()
    return response


@routes.route("POST", "/api/campaigns/{name}/{action:start|pause|resume|stop}", "supervisor")
async def lifecycle(request: web.Request) -> web.Response:
    return await _transition(request)


@routes.route("POST", "/api/campaigns/{name}/{action:archive}", "admin")
async def archive(request: web.Request) -> web.Response:
    return await _transition(request)


async def _transition(request: web.Request) -> web.Response:
    store = services(request).store
    name, action = request.match_info["name"], request.match_info["action"]
    result, previous = await store.transition(name, action, now(request), actor(request))
    if result == "missing":
        return web.json_response({"error": f"no campaign named {name!r}"}, status=404)
    if result == "refused":
        allowed = sorted(TRANSITIONS[action][0])
        return web.json_response(
            {"error": f"cannot {action} a campaign that is {previous} (allowed from: {', '.join(allowed)})"},
            status=409,
        )
    return web.json_response({"campaign": name, "from": previous, "to": TRANSITIONS[action][1]})

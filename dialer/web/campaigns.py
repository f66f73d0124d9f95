"""Campaigns: list, status, plots, upload (a campaign file), report, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import tempfile
from typing import Any

from aiohttp import web

from dialer.errors import InputError
from dialer.formats.campaign_file import RowDefaults
from dialer.formats.report import COLUMNS, report_row
from dialer.runtime.ingest import load_file
from dialer.store import TRANSITIONS, Store
from dialer.web.common import RouteTable, Services, actor, now, services

MAX_UPLOAD = 2 * 1024**3

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


@routes.route("POST", "/api/campaigns/{name}/upload", "supervisor")
async def upload(request: web.Request) -> web.Response:
    """Body: the campaign file (text/csv, or multipart with a ``file`` field). ``?start=1``."""
    s = services(request)
    name = request.match_info["name"]
    fd, tmp = tempfile.mkstemp(prefix="regua-upload-", suffix=".csv")
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                part = await reader.next()
                while part is not None and getattr(part, "name", None) != "file":
                    part = await reader.next()
                if part is None:
                    raise InputError("multipart upload without a 'file' field")
                while chunk := await part.read_chunk(1 << 16):  # type: ignore[union-attr]
                    size += len(chunk)
                    fh.write(chunk)
            else:
                async for chunk in request.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise InputError("file larger than 2 GiB: load it with `python -m dialer load`")
                    fh.write(chunk)
        if size == 0:
            raise InputError("empty upload: send the campaign file as the request body")
        summary, errors = await asyncio.to_thread(_load_in_thread, s, tmp, name, actor(request))
        if request.query.get("start") in ("1", "true", "yes"):
            await s.store.transition(name, "start", now(request), actor(request))
        return web.json_response({**summary, "errors": errors[:1000]})
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _load_in_thread(
    s: Services, path: str, campaign: str, actor: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Loading reads a file row by row: do it off the service's event loop, on a loop of its own."""
    runtime = s.runtime
    settings = runtime.settings

    async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        store = await Store.connect(s.store.url)
        buf = io.StringIO()
        try:
            summary = await load_file(
                store,
                path,
                campaign,
                defaults=RowDefaults(
                    settings.policy.default_consent_voice, settings.policy.default_consent_sms
                ),
                secret=runtime.secret,
                cadence=runtime.cadence,
                now=runtime.clock.now(),
                actor=actor,
                errors_to=buf,
            )
        finally:
            await store.close()
        rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
        return summary.as_dict(), rows

    return asyncio.run(main())


@routes.route("GET", "/api/campaigns/{name}/report.csv", "supervisor")
async def campaign_report(request: web.Request) -> web.StreamResponse:
    """One CSV row per account, streamed in batches (the rows never sit in memory together)."""
    store = services(request).store
    name = request.match_info["name"]
    await store.status(name)  # unknown campaign: a 404 from the error middleware
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}-report.csv"',
        }
    )
    await response.prepare(request)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    async for batch in store.iter_accounts(name):
        for state, next_at, suppressed in batch:
            writer.writerow(report_row(state.account, state.phones, state.history, next_at, suppressed))
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

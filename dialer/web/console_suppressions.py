"""The console's do-not-contact list: search by number, add one, import a registry file
(SP "Não Me Ligue" and company lists, ``formats.suppression_file``), lift (admins only).

Every change goes through ``runtime.operations`` (audited in one shape, as from the CLI and
the API). The import form is read here part by part — its text fields and the file, which
streams to a temporary file against ``MAX_IMPORT`` — and imported off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import BodyPartReader, web

from dialer.domain import Channel, Suppression, SuppressionReason
from dialer.errors import InputError
from dialer.formats.cell_values import normalise_phone
from dialer.formats.suppression_file import read_suppression_file
from dialer.runtime import operations
from dialer.store import Store
from dialer.web.common import RouteTable, actor, now, principal, services
from dialer.web.console_campaigns import gettext_of, message, see_other, words
from dialer.web.render import page

routes = RouteTable()

MAX_IMPORT = 256 * 1024**2
LISTED = 200  # entries the page lists (search by number for any other)
REJECTED_SHOWN = 50
FIELD_MAX = 1024
SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:\-]{0,63}$")


def _entry(s: Suppression) -> dict[str, Any]:
    return {
        "number": s.number,
        "channel": s.channel.value if s.channel else "*",
        "reason": s.reason.value,
        "source": s.source,
        "effective_from": s.effective_from.isoformat() if s.effective_from else None,
    }


def _messages(_: Any) -> dict[str, str]:
    return {
        "added": _("The number is on the do-not-contact list: no campaign contacts it on that channel."),
        "lifted": _("The suppression was lifted: campaigns may contact the number again, by the rules."),
    }


async def _page(request: web.Request, *, status: int = 200, **extra: Any) -> web.Response:
    _ = gettext_of(request)
    store = services(request).store
    asked = request.query.get("number", "").strip()[:40]
    found: list[dict[str, Any]] | None = None
    error = ""
    if asked:
        try:
            number, _kind = normalise_phone(asked)
        except ValueError as exc:
            error = _phone_error(_, asked, exc)
        else:
            found = [_entry(s) for s in (await store.suppressions([number])).get(number, ())]
    who = principal(request)
    context: dict[str, Any] = {
        "asked": asked,
        "found": found,
        "entries": await store.suppression_list(LISTED) if found is None else [],
        "listed": LISTED,
        "reasons": [r.value for r in SuppressionReason],
        "is_admin": who is not None and who.role == "admin",
        "notice": message(request, _messages(_)),
        "error": error,
        "imported": None,
        **words(request),
    }
    context.update(extra)
    return page(
        request, "suppressions.html", status=400 if context["error"] and status == 200 else status, **context
    )


def _phone_error(_: Callable[[str], str], raw: str, exc: Exception) -> str:
    text = _(
        "“{number}” is not a phone number we can use ({reason}). Write it with the area code, e.g. (11) 98765-4321."
    )
    return text.format(number=raw[:40], reason=str(exc)[:120])


@routes.route("GET", "/suppressions", "supervisor")
async def suppressions_page(request: web.Request) -> web.Response:
    return await _page(request)


def _channel(raw: str) -> Channel | None:
    return Channel(raw) if raw and raw != "*" else None


@routes.route("POST", "/suppressions", "supervisor", max_body=8192)
async def add(request: web.Request) -> web.Response:
    _ = gettext_of(request)
    form = await request.post()
    raw = str(form.get("number", "")).strip()
    try:
        number, _kind = normalise_phone(raw)
    except ValueError as exc:
        return await _page(request, status=400, error=_phone_error(_, raw, exc))
    try:
        channel = _channel(str(form.get("channel", "")))
        reason = SuppressionReason(str(form.get("reason", "opt_out")))
    except ValueError:
        return await _page(request, status=400, error=_("Choose the channel and the reason from the lists."))
    entry = Suppression(number, reason, channel, None, "console")
    await operations.suppress(services(request).store, [entry], now(request), actor(request))
    raise see_other(f"/suppressions?number={number.replace('+', '%2B')}&did=added")


@routes.route("POST", "/suppressions/lift", "admin", max_body=8192)
async def lift(request: web.Request) -> web.Response:
    _ = gettext_of(request)
    form = await request.post()
    raw = str(form.get("number", "")).strip()
    try:
        number, _kind = normalise_phone(raw)
        channel = _channel(str(form.get("channel", "")))
    except ValueError as exc:
        return await _page(request, status=400, error=_phone_error(_, raw, exc))
    if not await operations.unsuppress(
        services(request).store, number, channel, now(request), actor(request)
    ):
        error = _("That number was not on the list for that channel: nothing was lifted.")
        return await _page(request, status=404, error=error)
    raise see_other(f"/suppressions?number={number.replace('+', '%2B')}&did=lifted")


# ---------------------------------------------------------------------------- importing a registry


@contextlib.asynccontextmanager
async def _import_form(request: web.Request) -> AsyncIterator[tuple[dict[str, str], str, str]]:
    """The form's text fields, the file streamed to a temporary path, and its name; the
    temporary file is removed on exit."""
    if not request.content_type.startswith("multipart/"):
        raise InputError("send the form with the registry file")
    fd, tmp = tempfile.mkstemp(prefix="regua-registry-", suffix=".txt")
    fields: dict[str, str] = {}
    filename, size = "", 0
    try:
        with os.fdopen(fd, "wb") as fh:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "file":
                    filename = os.path.basename((part.filename or "registry.txt").replace("\\", "/"))[:120]
                    while chunk := await part.read_chunk(1 << 16):
                        size += len(chunk)
                        if size > MAX_IMPORT:
                            raise InputError(f"the file is larger than {MAX_IMPORT // 1024**2} MiB")
                        fh.write(chunk)
                else:
                    value = b""
                    while chunk := await part.read_chunk(1024):
                        value += chunk
                        if len(value) > FIELD_MAX:
                            raise InputError(f"the field {part.name!r} is too long")
                    fields[str(part.name)] = value.decode("utf-8", "replace").strip()
        if size == 0:
            raise InputError("the file is empty or missing")
        yield fields, tmp, filename
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _import_in_thread(
    url: str, path: str, filename: str, source: str, days: int, at: datetime, who: str
) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    rejected: list[tuple[Any, ...]] = []

    def keep(item: tuple[Any, ...]) -> None:
        if len(rejected) < REJECTED_SHOWN:
            rejected.append(item)

    async def main(items: Any) -> operations.ImportSummary:
        store = await Store.connect(url)
        try:
            return await operations.import_suppressions(
                store,
                items,
                at,
                who,
                file=filename,
                source=source,
                effective_after_days=days,
                on_rejected=keep,
            )
        finally:
            await store.close()

    with open(path, "rb") as fh:  # read line by line as it imports (in this thread)
        summary = asyncio.run(main(read_suppression_file(fh, source, timedelta(days=days))))
    return summary.as_dict(), rejected


@routes.route("POST", "/suppressions/import", "supervisor", max_body=MAX_IMPORT)
async def import_file(request: web.Request) -> web.Response:
    _ = gettext_of(request)
    try:
        async with _import_form(request) as (fields, path, filename):
            source = fields.get("source", "")
            if not SOURCE.fullmatch(source):
                return await _page(
                    request,
                    status=400,
                    error=_(
                        "Name the list in “Source” (letters, digits, '-', '_'; for example nao-me-ligue-sp)."
                    ),
                )
            try:
                days = int(fields.get("effective_after_days", "0") or "0")
            except ValueError:
                days = -1
            if not 0 <= days <= 365:
                return await _page(
                    request,
                    status=400,
                    error=_("“Takes effect after” is a number of days from 0 to 365 (the SP registry: 30)."),
                )
            summary, rejected = await asyncio.to_thread(
                _import_in_thread,
                services(request).store.url,
                path,
                filename,
                source,
                days,
                now(request),
                actor(request),
            )
    except InputError as exc:
        error = _("The file was not imported: {reason}. Choose the registry file and send it again.")
        return await _page(request, status=400, error=error.format(reason=str(exc)[:200]))
    return await _page(request, imported={"summary": summary, "rejected": rejected, "shown": REJECTED_SHOWN})

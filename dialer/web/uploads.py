"""Receiving a campaign file over HTTP: streamed to disk with its own limit, then loaded off
the event loop by the same code as ``python -m dialer load``.

``MAX_UPLOAD`` (256 MiB — about three million rows) bounds what a browser or a program may
send; anything larger is refused while it streams, and bigger files are loaded with the
CLI. The temporary file is removed whatever happens, and its path never reaches an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from dialer.errors import InputError
from dialer.formats.campaign_file import RowDefaults
from dialer.runtime.ingest import load_file
from dialer.store import Store, keys
from dialer.web.common import Services

MAX_UPLOAD = 256 * 1024**2


@dataclass(frozen=True, slots=True)
class Upload:
    path: str
    filename: str  # as the sender named it (shown in answers instead of our temp path)
    size: int


def check_campaign_name(name: str) -> None:
    if not keys.valid_campaign_name(name):
        raise InputError(
            f"campaign name {name[:70]!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


@contextlib.asynccontextmanager
async def received(request: web.Request, field: str = "file") -> AsyncIterator[Upload]:
    """The body (raw, or the multipart ``field``) streamed to a temporary file, counted
    against ``MAX_UPLOAD`` as it arrives; removed on exit."""
    fd, tmp = tempfile.mkstemp(prefix="regua-upload-", suffix=".csv")
    size, filename = 0, "upload.csv"
    try:
        with os.fdopen(fd, "wb") as fh:
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                part = await reader.next()
                while part is not None and getattr(part, "name", None) != field:
                    part = await reader.next()
                if part is None or not isinstance(part, BodyPartReader):
                    raise InputError(f"multipart upload without a {field!r} field")
                filename = _safe_name(part.filename or filename)
                while chunk := await part.read_chunk(1 << 16):
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise _too_large()
                    fh.write(chunk)
            else:
                async for chunk in request.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise _too_large()
                    fh.write(chunk)
        if size == 0:
            raise InputError("empty upload: send the campaign file as the request body (or the 'file' field)")
        yield Upload(tmp, filename, size)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _too_large() -> web.HTTPRequestEntityTooLarge:
    return web.HTTPRequestEntityTooLarge(
        max_size=MAX_UPLOAD,
        actual_size=MAX_UPLOAD + 1,
        text=f'{{"error": "the file is larger than {MAX_UPLOAD // 1024**2} MiB: load it with `python -m dialer load`"}}',
        content_type="application/json",
    )


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/"))
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base)[:120] or "upload.csv"


async def load_upload(
    services: Services, upload: Upload, campaign: str, actor: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load the received file into ``campaign`` (off the event loop: the file is read row
    by row); the summary (naming the sender's file, not ours) and every rejected row."""
    summary, errors = await asyncio.to_thread(_load_in_thread, services, upload.path, campaign, actor)
    summary["file"] = upload.filename
    return summary, errors


def _load_in_thread(
    s: Services, path: str, campaign: str, actor: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    runtime = s.runtime
    settings = runtime.settings

    async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        store = await Store.connect(s.store.url)
        buf = io.StringIO()
        payments = s.payments.bound_to(store) if s.payments is not None else None
        consent = (settings.policy.default_consent_voice, settings.policy.default_consent_sms)
        try:
            summary = await load_file(
                store,
                path,
                campaign,
                defaults=payments.row_defaults(*consent) if payments else RowDefaults(*consent),
                secret=runtime.secret,
                cadence=runtime.cadence,
                now=runtime.clock.now(),
                actor=actor,
                errors_to=buf,
                charges=payments.on_load if payments else None,
            )
        finally:
            await store.close()
        return summary.as_dict(), list(csv.DictReader(io.StringIO(buf.getvalue())))

    return asyncio.run(main())

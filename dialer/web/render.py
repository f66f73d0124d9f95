"""Server-rendered pages: Jinja2 templates (aiohttp-jinja2), in the person's language.

Every page gets ``_`` (gettext), the signed-in person, the session's CSRF token (every
form carries it), the service's clock (the sandbox's simulated one is shown in the
header), and helpers that format instants in the person's zone and money and numbers in
their language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from dialer.clock import SimulatedClock
from dialer.web import i18n
from dialer.web.common import PRINCIPAL, services

TEMPLATES = Path(__file__).parent / "templates"


def setup(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def language_of(request: web.Request) -> str:
    who = request.get(PRINCIPAL)
    if who is not None:
        return i18n.pick(who.language)
    asked = request.query.get("lang") or request.cookies.get("regua_lang")
    if asked in i18n.LANGUAGES:
        return str(asked)
    accept = request.headers.get("Accept-Language", "")
    return "en" if accept.lower().startswith("en") else i18n.DEFAULT


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """Render ``template`` for this request's person, language and clock."""
    s = services(request)
    who = request.get(PRINCIPAL)
    language = language_of(request)
    zone = who.zone if who is not None else "America/Sao_Paulo"
    tr = i18n.translations(language)
    clock = s.runtime.clock
    now = clock.now()
    base: dict[str, Any] = {
        "_": tr.gettext,
        "ngettext": tr.ngettext,
        "user": who,
        "csrf": who.csrf if who is not None else "",
        "language": language,
        "zone": zone,
        "now": now,
        "simulated": isinstance(clock, SimulatedClock),
        "sandbox": s.runtime.settings.service.telephony == "sandbox",
        "company": s.runtime.settings.company,
        "when": lambda moment, fmt="medium", tz=None: i18n.when(moment, language, tz or zone, fmt),
        "money": lambda amount, currency="BRL": i18n.money(amount, currency, language),
        "number": lambda value: i18n.number(value, language),
        "path": request.path,
    }
    base.update(context)
    response = aiohttp_jinja2.render_template(template, request, base, status=status)
    response.headers["Content-Language"] = language
    return response

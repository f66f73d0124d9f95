"""Debtor pages: a signed link opens a page that shows only the limited message until the
visitor passes the second factor — then the debt, the creditor, how to pay and the offers.

    GET  /a/{token}          the limited message and the second factor (``/pay/{token}``: the
                             links sent before; the same page)
    POST /a/{token}/verify   birth year or CPF digits, as loaded (the IVR's factor)
    GET  /a/{token}/account  verified only: creditor (CDC art. 42-A), debt, payment, offers,
                             or the current agreement and its next installment
    POST /a/{token}/accept   verified only: accept an offer (one agreement however often)
    POST /a/{token}/leave    end the session

**Nothing before the factor.** Every response before it is rendered from the limited
fields only (name, business name, contact person, callback number): never an amount, a
due date, the creditor's name or a word about collection — tested on the raw HTML.
A forged, altered or expired link gets a page that names nobody.

**Guesses.** Failures count per link (its nonce) and per client address; a link locks after
``link_max_failures`` (audited; the next link sent unlocks, being another link) and an
address is held after ``address_max_failures`` an hour. The answer is the same for every
wrong factor. **Sessions** live in Redis (``session_minutes``), bound to one account and one
link; leaving ends them. A link sent just after the debtor verified on a call opens without
the factor until ``verified_call_minutes`` after it. **CSRF:** before the session a
double-submit cookie (SameSite=Strict), after it the session's token; an ``Origin`` from
elsewhere is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import aiohttp_jinja2
from aiohttp import web

from dialer.domain import AccountStatus
from dialer.formats import payment_links as pl
from dialer.formats.campaign_file import make_hasher
from dialer.formats.pix import brcode
from dialer.rules.charges import ChargeStatus, money
from dialer.rules.local_time import locate
from dialer.rules.messages import LANGUAGE_BY_PACK
from dialer.runtime.agreements import OfferRefused, balanced, local_day
from dialer.store.values import AccountState
from dialer.web import auth, i18n
from dialer.web.common import RouteTable, services

routes = RouteTable()

PRE_CSRF_COOKIE = "regua_dcsrf"
SESSION_COOKIE = "regua_debtor"
MAX_FORM = 4096  # the forms here are a few fields

HEADERS = {
    "Cache-Control": "no-store",
    # the token is in the URL: never sent to another site (our own forms do send their
    # Origin, which "no-referrer" would make "null")
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
}


@dataclass(frozen=True, slots=True)
class Visit:
    """A valid link, resolved: its token, the account it names and where that account is."""

    token: pl.LinkToken
    raw: str
    campaign: str
    state: AccountState
    language: str


# ---------------------------------------------------------------- rendering


def _language(request: web.Request, state: AccountState | None) -> str:
    asked = request.query.get("lang")
    if asked in i18n.LANGUAGES:
        return str(asked)
    if state is not None and state.phones:
        account = state.account
        country = locate(state.phones[0].number, account.region, account.timezone).country
        return LANGUAGE_BY_PACK.get(country, i18n.DEFAULT)
    return "en" if request.headers.get("Accept-Language", "").lower().startswith("en") else i18n.DEFAULT


def _render(
    request: web.Request, template: str, language: str, status: int = 200, **context: Any
) -> web.Response:
    s = services(request)
    tr = i18n.translations(language)
    company = s.runtime.settings.company
    base: dict[str, Any] = {
        "_": tr.gettext,
        "language": language,
        "business_name": company.business_name or "",
        "contact_name": company.contact_name,
        "callback_number": company.callback_number,
        "other_language": "en" if language == "pt-BR" else "pt-BR",
    }
    base.update(context)
    response = aiohttp_jinja2.render_template(template, request, base, status=status)
    response.headers["Content-Language"] = language
    response.headers.update(HEADERS)
    return response


def _nobody(request: web.Request, status: int = 404) -> web.Response:
    """A link that is not (or no longer) valid: names nobody, says what to do."""
    return _render(request, "debtor_message.html", _language(request, None), status, kind="invalid", name="")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _secure(request: web.Request) -> bool:
    return auth.secure_cookies(request, services(request).runtime.settings.service.public_url)


def _address(request: web.Request) -> str:
    return auth.client_address(request)


async def _visit(request: web.Request) -> Visit | web.Response:
    s = services(request)
    raw = request.match_info["token"]
    try:
        token = pl.read_token(s.runtime.secret, raw, s.runtime.clock.now())
    except (pl.InvalidToken, pl.ExpiredToken):
        return _nobody(request)
    found = await s.store.resolve_link(token.link)
    if found is None:
        return _nobody(request)
    campaign, account_id = found
    (state,) = await s.store.load_accounts(campaign, [account_id])
    if state is None:
        return _nobody(request)
    return Visit(token, raw, campaign, state, _language(request, state))


def _factor(state: AccountState) -> str | None:
    account = state.account
    if account.verify_birth_year_hash:
        return "birth_year"
    if account.verify_digits_hash:
        return "digits"
    return None


async def _session(request: web.Request, visit: Visit) -> dict[str, Any] | None:
    """The verified session of this link and account (None: not verified here)."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie or len(cookie) > 64:
        return None
    data = await services(request).store.debtor_session(_digest(cookie))
    if (
        data is None
        or data.get("nonce") != visit.token.nonce
        or data.get("account") != visit.state.account.account_id
    ):
        return None
    return data


async def _open_session(request: web.Request, visit: Visit, response: web.StreamResponse, via: str) -> None:
    s = services(request)
    minutes = s.runtime.settings.negotiation.session_minutes
    cookie = secrets.token_urlsafe(32)
    data = {
        "nonce": visit.token.nonce,
        "account": visit.state.account.account_id,
        "campaign": visit.campaign,
        "csrf": secrets.token_urlsafe(24),
        "via": via,
    }
    await s.store.open_debtor_session(_digest(cookie), data, minutes * 60)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=minutes * 60,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/",
    )


def _origin_ok(request: web.Request) -> bool:
    """``Origin`` (else ``Referer``) is ours, or absent (a client that sends neither: the
    token, which only our page and a SameSite=Strict cookie carry, decides)."""
    sent = request.headers.get("Origin") or request.headers.get("Referer")
    if not sent:
        return True
    return auth.same_origin(request, services(request).runtime.settings.service.public_url)


async def _form(request: web.Request) -> dict[str, str] | None:
    if request.content_length is not None and request.content_length > MAX_FORM:
        return None
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    raw = b""
    while len(raw) <= MAX_FORM:  # the whole body, however it arrives, never more than the cap
        chunk = await request.content.read(MAX_FORM + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > MAX_FORM:
        return None
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10))
    except (UnicodeDecodeError, ValueError):
        return None


def _refused(request: web.Request, visit: Visit | None, why: str) -> web.Response:
    language = visit.language if visit else _language(request, None)
    return _render(request, "debtor_message.html", language, 403, kind="refused", name="", why=why)


# ---------------------------------------------------------------- before the factor


@routes.route("GET", "/a/{token}", "public")
@routes.route("GET", "/pay/{token}", "public")
async def landing(request: web.Request) -> web.StreamResponse:
    visit = await _visit(request)
    if isinstance(visit, web.Response):
        return visit
    s = services(request)
    here = f"/a/{visit.raw}"
    if await _session(request, visit) is not None:
        raise web.HTTPSeeOther(f"{here}/account")
    now = s.runtime.clock.now()
    if (
        visit.token.verified_until is not None
        and now < visit.token.verified_until
        and not await s.store.link_locked(visit.token.nonce)
    ):
        # sent just after the debtor verified on a call: no second factor for these minutes
        response = web.HTTPSeeOther(f"{here}/account")
        await _open_session(request, visit, response, "call")
        await s.store.audit_agreement(
            now, "debtor-page", "debtor_verified", {"account": visit.state.account.account_id, "via": "call"}
        )
        raise response
    return await _verify_page(request, visit)


async def _verify_page(
    request: web.Request, visit: Visit, *, failed: bool = False, status: int = 200
) -> web.Response:
    s = services(request)
    factor = _factor(visit.state)
    locked = await s.store.link_locked(visit.token.nonce)
    csrf = request.cookies.get(PRE_CSRF_COOKIE, "")
    if not csrf or len(csrf) > 64:
        csrf = secrets.token_urlsafe(24)
    response = _render(
        request,
        "debtor_verify.html",
        visit.language,
        423 if locked else status,
        name=visit.state.account.name,
        factor=factor,
        digits=4,
        locked=locked,
        failed=failed,
        csrf=csrf,
        action=f"/a/{visit.raw}/verify",
    )
    response.set_cookie(
        PRE_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/",
        max_age=3600,
    )
    return response


@routes.route("POST", "/a/{token}/verify", "public", max_body=MAX_FORM)
async def verify(request: web.Request) -> web.StreamResponse:
    visit = await _visit(request)
    if isinstance(visit, web.Response):
        return visit
    s = services(request)
    form = await _form(request)
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    if form is None:
        return _refused(request, visit, "form")
    if not cookie or not _same(cookie, form.get("csrf", "")) or not _origin_ok(request):
        return _refused(request, visit, "csrf")
    settings = s.runtime.settings.negotiation
    now = s.runtime.clock.now()
    nonce, address = visit.token.nonce, _address(request)
    account = visit.state.account
    if await s.store.link_locked(nonce):
        return await _verify_page(request, visit)
    # every attempt is counted before the answer is looked at (one atomic INCR each): guesses
    # sent at once get distinct counts, and only the first link_max_failures are compared
    window = max(60, int((visit.token.expires - now).total_seconds()))
    by_link, by_address = await s.store.link_failure(nonce, address, window)
    if by_address > settings.address_max_failures:
        return _render(request, "debtor_message.html", visit.language, 429, kind="slow", name=account.name)
    if by_link > settings.link_max_failures:
        return await _verify_page(request, visit)
    factor = _factor(visit.state)
    answer = "".join(c for c in form.get("factor", "") if c.isascii() and c.isdigit())[:8]
    hasher = make_hasher(s.runtime.secret)
    stored = account.verify_birth_year_hash if factor == "birth_year" else account.verify_digits_hash
    if factor and answer and stored and _same(hasher(account.account_id, factor, answer), stored):
        response = web.HTTPSeeOther(f"/a/{visit.raw}/account")
        await _open_session(request, visit, response, "factor")
        await s.store.audit_agreement(
            now, "debtor-page", "debtor_verified", {"account": account.account_id, "via": "factor"}
        )
        raise response
    if by_link >= settings.link_max_failures:
        await s.store.lock_link(nonce, window)
        await s.store.audit_agreement(
            now, "debtor-page", "debtor_link_locked", {"account": account.account_id, "failures": by_link}
        )
    return await _verify_page(request, visit, failed=True)


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two texts (any characters: a form may send anything)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------- after it


@routes.route("GET", "/a/{token}/account", "public")
async def account_page(request: web.Request) -> web.StreamResponse:
    visit = await _visit(request)
    if isinstance(visit, web.Response):
        return visit
    session = await _session(request, visit)
    if session is None:
        raise web.HTTPSeeOther(f"/a/{visit.raw}")
    return await _account(request, visit, session)


async def _account(
    request: web.Request, visit: Visit, session: dict[str, Any], *, error: str = "", status: int = 200
) -> web.Response:
    s = services(request)
    settings = s.runtime.settings
    now = s.runtime.clock.now()
    account = visit.state.account
    language = visit.language
    cur = account.currency

    def fmt(value_cents: int) -> str:
        return i18n.money(money(value_cents), cur, language)

    def day(d: Any) -> str:
        return str(d.strftime("%d/%m/%Y") if language == "pt-BR" else d.strftime("%m/%d/%Y"))

    agreements = s.payments.agreements if s.payments is not None else None
    context: dict[str, Any] = {
        "name": account.name,
        "company_name": settings.company.name,
        "legal_name": settings.company.legal_name or settings.company.name,
        "cnpj": settings.company.cnpj,
        "account_status": account.status.value,
        "error": error,
        "csrf": session["csrf"],
        "base": f"/a/{visit.raw}",
        "fmt": fmt,
        "day": day,
        "agreement": None,
        "offers": (),
        "pay": None,
        "accepted": request.query.get("ok") == "1",
    }
    if account.status is AccountStatus.AGREEMENT and agreements is not None:
        record = (await s.store.current_agreements([account.account_id])).get(account.account_id)
        if record is not None:
            charge = await agreements.installment_charge(record)
            nxt = next((i for i in record.offer.installments if i.number not in record.paid), None)
            context["agreement"] = record
            context["next"] = nxt
            if nxt is not None:
                context["pay"] = _payment(
                    s, account, nxt.amount_cents, charge, charge.txid if charge else record.agreement_id
                )
    elif account.status is AccountStatus.OPEN:
        charge = await s.store.current_charge(account.account_id)
        # what is still owed: less what came in on the charge and on broken agreements
        owed = (await balanced(s.store, account)).amount
        context["owed"] = fmt(int(owed * 100))
        context["paid_before"] = fmt(int((account.amount - owed) * 100)) if owed != account.amount else ""
        context["due"] = day(account.due_date)
        usable = charge if charge is not None and owed == account.amount else None
        context["pay"] = _payment(
            s, account, int(owed * 100), usable, (charge.txid if charge else visit.token.link)
        )
        if agreements is not None:
            context["offers"] = await agreements.offers(visit.state, now)
            context["today"] = local_day(visit.state, now)
    return _render(request, "debtor_account.html", language, status, **context)


def _payment(
    s: Any, account: Any, amount_cents: int, charge: Any, reference: str, *, debt_boleto: bool = True
) -> dict[str, str]:
    """How to pay ``amount_cents`` now: the charge's own dynamic code, else a static Pix code."""
    company = s.runtime.settings.company
    code = ""
    if charge is not None and charge.copy_paste and charge.state is ChargeStatus.ACTIVE:
        code = charge.copy_paste
    elif company.pix_key and account.currency == "BRL":
        code = brcode(
            company.pix_key,
            Decimal(amount_cents) / 100,
            company.pix_merchant_name or company.name,
            company.pix_merchant_city or "BRASIL",
            txid=reference[:25],
        )
    boleto = (
        (charge.boleto_line if charge is not None else "")
        or (account.boleto_line if debt_boleto else "")
        or ""
    )
    return {"pix": code, "boleto": _format_boleto(boleto) if boleto else ""}


def _format_boleto(line: str) -> str:
    if len(line) == 47:
        return f"{line[:5]}.{line[5:10]} {line[10:15]}.{line[15:21]} {line[21:26]}.{line[26:32]} {line[32]} {line[33:]}"
    return " ".join(line[i : i + 12] for i in range(0, len(line), 12))


async def _checked(request: web.Request) -> tuple[Visit, dict[str, Any], dict[str, str]] | web.StreamResponse:
    visit = await _visit(request)
    if isinstance(visit, web.Response):
        return visit
    session = await _session(request, visit)
    if session is None:
        raise web.HTTPSeeOther(f"/a/{visit.raw}")
    form = await _form(request)
    if form is None:
        return _refused(request, visit, "form")
    if not _same(str(session.get("csrf", "")), form.get("csrf", "")) or not _origin_ok(request):
        return _refused(request, visit, "csrf")
    return visit, session, form


@routes.route("POST", "/a/{token}/accept", "public", max_body=MAX_FORM)
async def accept(request: web.Request) -> web.StreamResponse:
    got = await _checked(request)
    if not isinstance(got, tuple):
        return got
    visit, session, form = got
    s = services(request)
    if s.payments is None:
        return await _account(request, visit, session, error="unavailable", status=503)
    now = s.runtime.clock.now()
    try:
        await s.payments.agreements.accept(
            visit.campaign,
            visit.state,
            form.get("offer", "")[:32],
            now,
            via="page",
            actor="debtor-page",
        )
    except OfferRefused as exc:
        (state,) = await s.store.load_accounts(visit.campaign, [visit.state.account.account_id])
        fresh = Visit(visit.token, visit.raw, visit.campaign, state or visit.state, visit.language)
        return await _account(request, fresh, session, error=exc.code, status=409)
    raise web.HTTPSeeOther(f"/a/{visit.raw}/account?ok=1")


@routes.route("POST", "/a/{token}/leave", "public", max_body=MAX_FORM)
async def leave(request: web.Request) -> web.StreamResponse:
    got = await _checked(request)
    if not isinstance(got, tuple):
        return got
    visit, _, _ = got
    cookie = request.cookies.get(SESSION_COOKIE, "")
    await services(request).store.close_debtor_session(_digest(cookie))
    response = web.HTTPSeeOther(f"/a/{visit.raw}")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response

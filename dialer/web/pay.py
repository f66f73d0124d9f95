"""Debtor-facing pages: ``/pay/{token}`` (public, but only with a valid signed link).

The page shows the amount, the due date and how to pay: a Pix "copia e cola" code and,
when the campaign file carried one, the boleto's digitable line. A forged, altered or
expired link gets a polite page that reveals nothing about anybody.
"""

from __future__ import annotations

import html
from decimal import Decimal

from aiohttp import web

from dialer.formats import payment_links as pl
from dialer.formats.pix import brcode
from dialer.rules.charges import ChargeStatus, money
from dialer.web.common import RouteTable, services

routes = RouteTable()

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
}

_PAGE = """<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.3rem}} .amount{{font-size:2rem;font-weight:600}} textarea{{width:100%;height:6rem;font-family:monospace}}
button{{padding:.5rem 1rem;font-size:1rem}} .muted{{color:#666;font-size:.9rem}}</style></head><body>{body}</body></html>"""


def _format_boleto(line: str) -> str:
    if len(line) == 47:
        return f"{line[:5]}.{line[5:10]} {line[10:15]}.{line[15:21]} {line[21:26]}.{line[26:32]} {line[32]} {line[33:]}"
    return " ".join(line[i : i + 12] for i in range(0, len(line), 12))


def _invalid(callback: str) -> web.Response:
    body = (
        "<h1>Este link não é mais válido</h1><p>Por segurança, links de pagamento expiram. "
        f"Se precisar, ligue para {html.escape(callback)}.</p>"
        "<p class=muted>This link is no longer valid. If you need help, call us.</p>"
    )
    return web.Response(
        text=_PAGE.format(title="Link inválido", body=body),
        content_type="text/html",
        status=404,
        headers=_HEADERS,
    )


@routes.route("GET", "/pay/{token}", "public")
async def pay_page(request: web.Request) -> web.Response:
    s = services(request)
    settings = s.runtime.settings
    company = settings.company
    try:
        link = pl.verify_token(s.runtime.secret, request.match_info["token"], s.runtime.clock.now())
    except (pl.InvalidToken, pl.ExpiredToken):
        return _invalid(company.callback_number)
    found = await s.store.resolve_link(link)
    if found is None:
        return _invalid(company.callback_number)
    campaign, account_id = found
    (state,) = await s.store.load_accounts(campaign, [account_id])
    if state is None or state.account.status.value != "open":
        return _invalid(company.callback_number)
    account = state.account
    charge = await s.store.current_charge(account_id)
    owed = account.amount
    if charge is not None and charge.amount == account.amount:
        owed = money(max(0, charge.amount_cents - (charge.paid_cents - charge.refunded_cents)))
    amount = pl.format_money(owed, account.currency, "pt-BR")
    parts = [
        f"<h1>{html.escape(company.name)}</h1>",
        f"<p>Valor</p><p class=amount>{html.escape(amount)}</p>",
        f"<p>Vencimento: {account.due_date.strftime('%d/%m/%Y')}</p>",
    ]
    if owed != account.amount:
        paid = pl.format_money(account.amount - owed, account.currency, "pt-BR")
        parts.append(f"<p class=muted>Já recebemos {html.escape(paid)}; este é o saldo em aberto.</p>")
    code = ""
    if (
        charge is not None
        and charge.copy_paste
        and charge.state is ChargeStatus.ACTIVE
        and owed == account.amount
    ):
        code = charge.copy_paste  # the charge's own dynamic BR Code (fine and interest included)
    elif company.pix_key and account.currency == "BRL":
        code = brcode(
            company.pix_key,
            Decimal(owed),
            company.pix_merchant_name or company.name,
            company.pix_merchant_city or "BRASIL",
            txid=(charge.txid if charge is not None else link)[:25],
        )
    if code:
        parts.append(
            "<h2>Pix copia e cola</h2>"
            f"<textarea id=pix readonly>{html.escape(code)}</textarea>"
            "<p><button onclick=\"navigator.clipboard.writeText(document.getElementById('pix').value)\">"
            "Copiar código Pix</button></p>"
        )
    boleto = (charge.boleto_line if charge is not None else "") or account.boleto_line
    if boleto:
        parts.append(f"<h2>Boleto</h2><p><code>{html.escape(_format_boleto(boleto))}</code></p>")
    parts.append(f"<p class=muted>Dúvidas: {html.escape(company.callback_number)}</p>")
    return web.Response(
        text=_PAGE.format(title=f"Pagamento — {html.escape(company.name)}", body="".join(parts)),
        content_type="text/html",
        headers=_HEADERS,
    )

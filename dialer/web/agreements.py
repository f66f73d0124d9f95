"""Agreements over the API: per campaign, one account's, its offers today, special offers.

    GET    /api/agreements                                  per campaign: made, current, kept, broken
    GET    /api/accounts/{account_id}/agreements            an account's agreements and installments
    GET    /api/campaigns/{name}/accounts/{account_id}/offers   what the account is offered today
    PUT    /api/accounts/{account_id}/special-offer         a special offer (roles: negotiation.special_offer_roles)
    DELETE /api/accounts/{account_id}/special-offer

The offer rules themselves are configuration (``[negotiation]``): admins change them with
``PUT /api/config`` like the rest, validated and audited.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from dialer.rules.charges import money
from dialer.rules.offers import Special, special_offer
from dialer.runtime.agreements import offers_of, record_special
from dialer.store.agreements import AgreementRecord, offer_doc
from dialer.web.common import RouteTable, actor, json_body, now, principal, services

routes = RouteTable()


def _doc(r: AgreementRecord) -> dict[str, Any]:
    return {
        "agreement": r.agreement_id,
        "account": r.account_id,
        "campaign": r.campaign,
        "status": r.status.value,
        "via": r.via,
        "created_at": r.created_at,
        "ended_at": r.ended_at,
        "paid_installments": sorted(r.paid),
        "total": str(money(r.offer.total_cents)),
        "paid": str(money(r.paid_cents)),
        "offer": offer_doc(r.offer),
    }


@routes.route("GET", "/api/agreements", "supervisor")
async def summary(request: web.Request) -> web.Response:
    stats = await services(request).store.agreement_stats()
    return web.json_response(
        {
            name: {
                **{k: v for k, v in s.items() if not k.endswith("_cents")},
                "amount": str(money(s["made_cents"])),
                "paid": str(money(s["paid_cents"])),
            }
            for name, s in sorted(stats.items())
        }
    )


@routes.route("GET", "/api/accounts/{account_id}/agreements", "supervisor")
async def of_account(request: web.Request) -> web.Response:
    records = await services(request).store.account_agreements(request.match_info["account_id"])
    return web.json_response([_doc(r) for r in records])


@routes.route("GET", "/api/campaigns/{name}/accounts/{account_id}/offers", "supervisor")
async def offers(request: web.Request) -> web.Response:
    s = services(request)
    (state,) = await s.store.load_accounts(request.match_info["name"], [request.match_info["account_id"]])
    if state is None:
        return web.json_response({"error": "no such account in that campaign"}, status=404)
    found = await offers_of(s.store, s.runtime.settings, state, now(request))
    return web.json_response([offer_doc(o) for o in found])


def special_from(body: dict[str, Any], by: str, max_interest: Decimal) -> Special:
    """A special offer from a request body; refused where looser than the contract or the law."""
    return special_offer(body, by, max_interest)


def _may_make_special(request: web.Request) -> web.Response | None:
    who = principal(request)
    allowed = services(request).runtime.settings.negotiation.special_offer_roles
    if who is None or (who.role not in allowed and who.role != "admin"):
        role = who.role if who is not None else "nobody"
        return web.json_response(
            {
                "error": f"special offers are for {', '.join(allowed)} (negotiation.special_offer_roles); this is {role}"
            },
            status=403,
        )
    return None


@routes.route("PUT", "/api/accounts/{account_id}/special-offer", "supervisor")
async def make_special(request: web.Request) -> web.Response:
    refused = _may_make_special(request)
    if refused is not None:
        return refused
    s = services(request)
    body = await json_body(request)
    special = special_from(body, actor(request), s.runtime.settings.negotiation.max_interest_percent_month)
    account_id = request.match_info["account_id"]
    await record_special(s.store, account_id, special, now(request), actor(request))
    return web.json_response({"account": account_id, "special_offer": "made"})


@routes.route("DELETE", "/api/accounts/{account_id}/special-offer", "supervisor")
async def withdraw_special(request: web.Request) -> web.Response:
    refused = _may_make_special(request)
    if refused is not None:
        return refused
    s = services(request)
    account_id = request.match_info["account_id"]
    await record_special(s.store, account_id, None, now(request), actor(request))
    return web.json_response({"account": account_id, "special_offer": "withdrawn"})

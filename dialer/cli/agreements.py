"""``agreements``: the agreements (acordos) debtors made, per campaign and one by one; the
offers an account has today; special offers; the keeper run now.

    python -m dialer agreements                        # per campaign: made, current, kept, broken
    python -m dialer agreements list [--json]          # the current ones
    python -m dialer agreements show A-1001            # an account's agreements and installments
    python -m dialer agreements offers c1 A-1001       # what the account is offered today
    python -m dialer agreements special A-1001 --discount 30 --installments 6 --until 2026-12-31
    python -m dialer agreements special A-1001 --withdraw
    python -m dialer agreements review                 # break or keep what is due now
"""

from __future__ import annotations

import argparse
from decimal import Decimal

from dialer.cli.common import Command, Context, print_json, print_table, with_store
from dialer.errors import InputError
from dialer.rules.charges import money
from dialer.rules.offers import Special, special_offer
from dialer.runtime.wiring import Runtime, payments_for
from dialer.store.agreements import AgreementRecord, offer_doc


def _arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="agreements_command")
    sub.add_parser("summary", help="per campaign: made, current, kept, broken, money (the default)")
    ls = sub.add_parser("list", help="the current agreements")
    ls.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="an account's agreements and their installments")
    sh.add_argument("account")
    sh.add_argument("--json", action="store_true")
    of = sub.add_parser("offers", help="the offers an account has today")
    of.add_argument("campaign")
    of.add_argument("account")
    of.add_argument("--json", action="store_true")
    sp = sub.add_parser("special", help="make (or withdraw) a special offer for one account")
    sp.add_argument("account")
    sp.add_argument("--discount", default="0", help="percent off the updated debt")
    sp.add_argument("--installments", type=int, default=1)
    sp.add_argument("--down", default="0", help="down payment, percent")
    sp.add_argument("--interest", default="0", help="percent a month (at most the contract's)")
    sp.add_argument("--until", help="the last day it may be accepted (YYYY-MM-DD)")
    sp.add_argument("--withdraw", action="store_true")
    sub.add_parser("review", help="look at the agreements due now (the service does it every minute)")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)


_OPTIONS = {
    "discount_percent": "--discount",
    "installments": "--installments",
    "down_payment_percent": "--down",
    "interest_percent_month": "--interest",
    "until": "--until",
}


def special_from_args(args: argparse.Namespace, actor: str, max_interest: Decimal) -> Special:
    """A special offer as asked on the command line, refused where the law or contract is looser."""
    values = {
        "discount_percent": args.discount,
        "installments": args.installments,
        "down_payment_percent": args.down,
        "interest_percent_month": args.interest,
        "until": args.until,
    }
    return special_offer(values, actor, max_interest, label=_OPTIONS.__getitem__)


def _row(r: AgreementRecord) -> dict[str, object]:
    return {
        "agreement": r.agreement_id,
        "account": r.account_id,
        "campaign": r.campaign,
        "status": r.status.value,
        "via": r.via,
        "made": r.created_at[:16],
        "installments": f"{len(r.paid)}/{r.offer.count}",
        "total": str(money(r.offer.total_cents)),
        "paid": str(money(r.paid_cents)),
    }


async def run(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.store
    match args.agreements_command or "summary":
        case "summary":
            stats = await store.agreement_stats()
            rows = [
                {"campaign": name, **{k: v for k, v in s.items() if not k.endswith("_cents")},
                 "amount": str(money(s["made_cents"])), "paid": str(money(s["paid_cents"]))}
                for name, s in sorted(stats.items())
            ]  # fmt: skip
            if args.json:
                print_json(rows)
            elif rows:
                cols = ["campaign", "made", "current", "kept", "broken", "amount", "paid"]
                print_table(cols, [[str(r[c]) for c in cols] for r in rows])
            else:
                print("no agreements yet: debtors make them on their page or by key 5 on a call")
            return 0
        case "list":
            ids = await store.all_agreement_ids()
            found = [r for r in [await store.agreement(i) for i in ids] if r is not None]
            if args.json:
                print_json([_row(r) for r in found])
            elif not found:
                print("no current agreements")
            else:
                cols = list(_row(found[0]))
                print_table(cols, [[str(_row(r)[c]) for c in cols] for r in found])
            return 0
        case "show":
            records = await store.account_agreements(args.account)
            if args.json:
                print_json(
                    [
                        {**_row(r), "offer": offer_doc(r.offer), "paid_installments": sorted(r.paid)}
                        for r in records
                    ]
                )
                return 0
            if not records:
                print(f"{args.account}: no agreements")
            for r in records:
                print(", ".join(f"{k}: {v}" for k, v in _row(r).items()))
                for i in r.offer.installments:
                    mark = "paid" if i.number in r.paid else "open"
                    print(f"   {i.number:>2}  {i.due.isoformat()}  {money(i.amount_cents):>10}  {mark}")
            return 0
        case "offers":
            runtime = Runtime.build(ctx.settings, clock=ctx.clock)
            payments = payments_for(runtime, store)
            (state,) = await store.load_accounts(args.campaign, [args.account])
            if state is None:
                raise InputError(f"no account {args.account!r} in campaign {args.campaign!r}")
            offers = await payments.agreements.offers(state, ctx.clock.now())
            if args.json:
                print_json([offer_doc(o) for o in offers])
            elif not offers:
                print(
                    f"{args.account}: no offers today (status {state.account.status.value}; see [negotiation])"
                )
            else:
                print_table(
                    ["offer", "kind", "installments", "first", "total", "until"],
                    [
                        [
                            o.offer_id,
                            o.kind.value,
                            str(o.count),
                            str(money(o.installments[0].amount_cents)),
                            str(money(o.total_cents)),
                            o.valid_until.isoformat(),
                        ]
                        for o in offers
                    ],
                )
            return 0
        case "special":
            runtime = Runtime.build(ctx.settings, clock=ctx.clock)
            payments = payments_for(runtime, store)
            special = (
                None
                if args.withdraw
                else special_from_args(args, ctx.actor, ctx.settings.negotiation.max_interest_percent_month)
            )
            await payments.agreements.make_special(args.account, special, ctx.clock.now(), ctx.actor)
            print(f"{args.account}: special offer {'withdrawn' if special is None else 'made'}")
            return 0
        case "review":
            runtime = Runtime.build(ctx.settings, clock=ctx.clock)
            payments = payments_for(runtime, store)
            done = await payments.agreements.review_due(ctx.clock.now())
            print(f"looked at {done.looked}: {done.kept} kept, {done.broken} broken")
            return 0
    return 2


COMMANDS = (
    Command("agreements", "agreements (acordos), offers and special offers", _arguments, with_store(run)),
)

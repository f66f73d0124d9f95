"""``payments``: what was received, each account's charges, the reconciliation job, the
webhook to register with the provider.

    python -m dialer payments                      # the latest payments (SANDBOX ones say so)
    python -m dialer payments list --account A-1001 --json
    python -m dialer payments charges A-1001       # its charges: state, code, paid, balance
    python -m dialer payments reconcile            # ask the provider now (the job does it hourly)
    python -m dialer payments make                 # make the charges waiting in the queue now
    python -m dialer payments webhook [--register] # the URL the provider must call
"""

from __future__ import annotations

import argparse

from dialer.cli.common import Command, Context, print_json, print_table, with_store
from dialer.errors import InputError
from dialer.rules.charges import money, standing
from dialer.runtime.wiring import Runtime, payments_for


def _arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="payments_command")
    ls = sub.add_parser("list", help="the latest payments and refunds (the default)")
    ls.add_argument("--account")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ch = sub.add_parser("charges", help="an account's charges")
    ch.add_argument("account")
    ch.add_argument("--json", action="store_true")
    rc = sub.add_parser("reconcile", help="run the reconciliation job once, now")
    rc.add_argument("--json", action="store_true")
    mk = sub.add_parser("make", help="make the charges waiting in the queue, now")
    mk.add_argument("--limit", type=int, default=1000)
    wh = sub.add_parser("webhook", help="the webhook URL to give the provider")
    wh.add_argument("--register", action="store_true", help="register it (Pix API: PUT /webhook/{chave})")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)


async def run(args: argparse.Namespace, ctx: Context) -> int:
    runtime = Runtime.build(ctx.settings, clock=ctx.clock)
    payments = payments_for(runtime, ctx.store)
    try:
        match args.payments_command or "list":
            case "list":
                return await _list(args, ctx)
            case "charges":
                return await _charges(args, ctx)
            case "reconcile":
                result = await payments.reconcile(ctx.clock.now())
                summary = {
                    "asked": result.asked,
                    "swept": result.swept,
                    "resettled": result.resettled,
                    **result.received.as_dict(),
                    "errors": result.errors,
                }
                if args.json:
                    print_json(summary)
                else:
                    print(
                        f"asked {result.asked} open charges, swept {result.swept} received, "
                        f"{result.received.accepted} new payments ({result.received.duplicates} known), "
                        f"{len(result.received.paid_accounts)} accounts paid, {len(result.errors)} errors"
                    )
                    for e in result.errors[:10]:
                        print(f"  error: {e}")
                return 1 if result.errors else 0
            case "make":
                total = 0
                while total < args.limit and (
                    n := await payments.make_due(ctx.clock.now(), min(200, args.limit - total))
                ):
                    total += n
                left = await ctx.store.charge_queue_length()
                print(f"{total} charges asked for; {left} still queued (retries wait for their back-off)")
                return 0
            case "webhook":
                return await _webhook(args, ctx, payments)
    finally:
        await payments.provider.close()
    return 0


async def _list(args: argparse.Namespace, ctx: Context) -> int:
    events = await ctx.store.payment_events(count=max(1, min(getattr(args, "limit", 50), 100_000)) * 4)
    account = getattr(args, "account", None)
    charges = {
        c.txid: c for c in await ctx.store.charges(list({e["txid"] for e in events if e.get("txid")})) if c
    }
    rows = []
    for e in events:
        charge = charges.get(e.get("txid", ""))
        rows.append(
            {
                "at": e["at"],
                "kind": e["kind"],
                "amount": e["amount"],
                "account": charge.account_id if charge else e.get("account", ""),
                "provider": e["provider"] + (" (SANDBOX)" if e.get("sandbox") else ""),
                "reference": e.get("reference", ""),
                "matched": "no: unknown charge" if e.get("unknown") else "yes",
            }
        )
    if account:
        rows = [r for r in rows if r["account"] == account]
    rows = rows[: getattr(args, "limit", 50)]
    if args.json:
        for r in rows:
            print_json(r)
        return 0
    if not rows:
        print("no payments yet")
        return 0
    print_table(list(rows[0]), [[str(v) for v in r.values()] for r in rows])
    return 0


async def _charges(args: argparse.Namespace, ctx: Context) -> int:
    records = await ctx.store.account_charges(args.account)
    if not records:
        raise InputError(f"account {args.account} has no charge (is it in a loaded campaign?)")
    tolerance = 0
    rows = []
    for r in records:
        st = standing(r.amount_cents, r.paid_cents, r.refunded_cents, tolerance)
        rows.append(
            {
                "txid": r.txid,
                "provider": r.provider + (" (SANDBOX)" if r.sandbox else ""),
                "state": r.state.value,
                "standing": st.status.value,
                "amount": str(r.amount),
                "paid": str(money(st.net_cents)),
                "balance": str(money(st.balance_cents)),
                "due": r.due,
                "installment": r.installment,
                "error": r.error,
                "pix": r.copy_paste[:40] + ("…" if len(r.copy_paste) > 40 else ""),
            }
        )
    if args.json:
        for row in rows:
            print_json(row)
        return 0
    print_table(list(rows[0]), [[str(v) for v in row.values()] for row in rows])
    return 0


async def _webhook(args: argparse.Namespace, ctx: Context, payments: object) -> int:
    provider = getattr(payments, "provider", None)
    base = ctx.settings.service.public_url.rstrip("/") + "/webhooks/payments/"
    name = getattr(provider, "name", "")
    if name == "pix":
        token = getattr(provider, "webhook_token", "")
        url = f"{base}pix/{token}"
        print(f"webhookUrl for the PSP (it calls {url}/pix): {url}")
        if args.register:
            await provider.register_webhook(url)  # type: ignore[union-attr]
            print("registered with the PSP (PUT /webhook/{chave})")
    elif name == "asaas":
        print(
            f"Asaas webhook URL: {base}asaas  (authentication token: the value of the variable named by webhook_token_env)"
        )
    elif name == "signed":
        print(f"POST signed payments to {base}signed (header Regua-Signature: t=<unix>,v1=<HMAC-SHA256>)")
    else:
        print("the sandbox takes no webhooks: its debtors pay inside the demo")
    return 0


COMMANDS = (Command("payments", "payments received, charges, reconciliation", _arguments, with_store(run)),)

"""``users`` and ``tokens``: the people who use the console and the API, and their tokens.

``python -m dialer users add maria --role admin`` creates the first admin (the password is
asked for, or read from standard input with ``--password-stdin``)."""

from __future__ import annotations

import argparse
import getpass
import sys

from dialer.cli.common import Command, Context, print_json, print_table, with_store
from dialer.errors import InputError
from dialer.runtime import people


def _users_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="users_command", required=True)
    a = sub.add_parser("add", help="create a user")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=people.ROLES)
    a.add_argument("--language", default="pt-BR", choices=people.LANGUAGES)
    a.add_argument("--zone", default="America/Sao_Paulo", help="the time zone the console shows times in")
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    c = sub.add_parser("change", help="change a user (a new password or a disable ends their sessions)")
    c.add_argument("name")
    c.add_argument("--role", choices=people.ROLES)
    c.add_argument("--language", choices=people.LANGUAGES)
    c.add_argument("--zone")
    c.add_argument(
        "--password", action="store_true", help="set a new password (asked for, or --password-stdin)"
    )
    c.add_argument("--password-stdin", action="store_true")
    c.add_argument("--disable", action="store_true")
    c.add_argument("--enable", action="store_true")
    ls = sub.add_parser("list", help="list users")
    ls.add_argument("--json", action="store_true")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InputError("the two passwords differ")
    return first


async def users(args: argparse.Namespace, ctx: Context) -> int:
    now = ctx.clock.now()
    match args.users_command:
        case "add":
            user = await people.add_user(
                ctx.store,
                args.name,
                args.role,
                _password(args),
                now,
                ctx.actor,
                language=args.language,
                zone=args.zone,
            )
            print(f"user {user.name} created ({user.role}); sign in at the console with it")
            return 0
        case "change":
            if args.disable and args.enable:
                raise InputError("--disable or --enable, not both")
            changed = await people.change_user(
                ctx.store,
                args.name,
                now,
                ctx.actor,
                role=args.role,
                language=args.language,
                zone=args.zone,
                password=_password(args) if args.password or args.password_stdin else None,
                disabled=True if args.disable else False if args.enable else None,
            )
            print(f"user {changed.name}: {changed.role}{', disabled' if changed.disabled else ''}")
            return 0
    found = await ctx.store.users()
    rows = [
        {
            "name": n,
            "role": r.get("role"),
            "language": r.get("language"),
            "zone": r.get("zone"),
            "disabled": bool(r.get("disabled")),
        }
        for n, r in sorted(found.items())
    ]
    if args.json:
        for r in rows:
            print_json(r)
        return 0
    print_table(
        ["user", "role", "language", "zone", "disabled"], [[str(v) for v in r.values()] for r in rows]
    )
    return 0


def _tokens_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="tokens_command", required=True)
    i = sub.add_parser("issue", help="a new API token for a user (shown once)")
    i.add_argument("user")
    i.add_argument("--label", default="", help="what it is for, e.g. 'billing system'")
    r = sub.add_parser("revoke", help="revoke a token by its id (the part after rg_)")
    r.add_argument("token_id")
    ls = sub.add_parser("list", help="list tokens (never their secrets)")
    ls.add_argument("--json", action="store_true")


async def tokens(args: argparse.Namespace, ctx: Context) -> int:
    now = ctx.clock.now()
    match args.tokens_command:
        case "issue":
            token = await people.issue_token(ctx.store, args.user, args.label, now, ctx.actor)
            print(token)
            print("(shown this once: keep it where programs read secrets)", file=sys.stderr)
            return 0
        case "revoke":
            if not await people.revoke_token(ctx.store, args.token_id, now, ctx.actor):
                print(f"no token {args.token_id!r}", file=sys.stderr)
                return 1
            print(f"token {args.token_id} revoked")
            return 0
    found = await ctx.store.tokens()
    rows = [
        {
            "id": i,
            "user": r.get("user"),
            "label": r.get("label"),
            "created_at": r.get("created_at"),
            "revoked": bool(r.get("revoked")),
        }
        for i, r in sorted(found.items())
    ]
    if args.json:
        for r in rows:
            print_json(r)
        return 0
    print_table(["id", "user", "label", "created", "revoked"], [[str(v) for v in r.values()] for r in rows])
    return 0


COMMANDS = (
    Command("users", "the people who use the console and the API", _users_arguments, with_store(users)),
    Command("tokens", "API tokens (per user, revocable)", _tokens_arguments, with_store(tokens)),
)

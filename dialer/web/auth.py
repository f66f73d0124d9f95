"""Who is asking: sessions, API tokens, CSRF, and the throttle on signing in.

A request is made by a **person**: a user signed in to the console (a session: a random
cookie whose hash names a record in Redis with its time to live — signing out, disabling
the user or changing the password ends it), or a program holding one of a user's API
tokens (``Authorization: Bearer rg_…``, revocable). ``DIALER_API_TOKENS``
(``role:token,…``) still gives a machine a role without a user (monitoring); the audit
names it ``env-token:<role>``.

State-changing requests made with a session carry the session's CSRF token (a form field
``csrf`` or the ``X-CSRF-Token`` header) and come from our own origin (``Origin``, else
``Referer``). Sign-ins are throttled per account and per client address: after
``ACCOUNT_FAILURES`` failures in ``WINDOW_S`` the account is locked for ``LOCK_S``, after
``ADDRESS_FAILURES`` the address is; every failure and lock is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from dialer.errors import ConfigError
from dialer.runtime.people import GRANTS, ROLES, User, user_of_token
from dialer.store import Store

SESSION_COOKIE = "regua_session"
SESSION_TTL_S = 8 * 3600
WINDOW_S = 15 * 60
LOCK_S = 15 * 60
ACCOUNT_FAILURES = 5
ADDRESS_FAILURES = 20
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

__all__ = ["GRANTS", "ROLES", "Principal", "TokenBook", "allowed"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is from."""

    name: str  # the user (or env-token:<role>)
    role: str
    via: str  # session | token | env-token
    language: str = "pt-BR"
    zone: str = "America/Sao_Paulo"
    csrf: str = ""  # the session's CSRF token
    session: str = ""  # the session's digest (to end it)

    @property
    def actor(self) -> str:
        """How the audit names it."""
        return self.name if self.via == "env-token" else f"user:{self.name}"


def allowed(principal: Principal | None, need: str) -> bool:
    if need == "public":
        return True
    return principal is not None and need in GRANTS.get(principal.role, set())


# ---------------------------------------------------------------------------- machine tokens


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenBook:
    """Tokens from ``DIALER_API_TOKENS``: a role each, no user (kept as SHA-256 digests)."""

    digests: tuple[tuple[str, bytes], ...]  # (role, sha256(token))

    def role_of(self, token: str) -> str | None:
        if not token:
            return None
        d = _digest(token)
        found = None
        for role, expected in self.digests:  # no early exit: constant time over the book
            if hmac.compare_digest(d, expected):
                found = role
        return found

    @classmethod
    def from_pairs(cls, pairs: Mapping[str, str]) -> TokenBook:
        return cls(tuple((role, _digest(token)) for role, token in pairs.items()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenBook:
        text = (os.environ if env is None else env).get("DIALER_API_TOKENS", "")
        pairs: dict[str, str] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            role, sep, token = part.strip().partition(":")
            if not sep or role not in ROLES or len(token) < 16:
                raise ConfigError(
                    "environment $DIALER_API_TOKENS",
                    role or "-",
                    "expected role:token pairs (roles: operator, supervisor, admin; tokens of 16+ characters)",
                )
            pairs[role] = token
        return cls.from_pairs(pairs)


# ---------------------------------------------------------------------------- who is asking


def session_digest(cookie: str) -> str:
    return hashlib.sha256(b"session\x1f" + cookie.encode()).hexdigest()


async def principal_of(request: web.Request, store: Store, book: TokenBook) -> Principal | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header[7:].strip()
        if role := book.role_of(token):
            return Principal(f"env-token:{role}", role, "env-token")
        user = await user_of_token(store, token)
        return _principal(user, "token") if user else None
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie or len(cookie) > 200:
        return None
    digest = session_digest(cookie)
    record = await store.session(digest)
    if record is None:
        return None
    found = await store.user(str(record.get("user", "")))
    if found is None:
        return None
    user = User.from_record(str(record["user"]), found)
    if user.disabled:
        return None
    return _principal(user, "session", str(record.get("csrf", "")), digest)


def _principal(user: User, via: str, csrf: str = "", session: str = "") -> Principal:
    return Principal(user.name, user.role, via, user.language, user.zone, csrf, session)


async def open_session(store: Store, user: User, now: datetime) -> tuple[str, str]:
    """A new session for ``user``: (the cookie's value, the session's CSRF token)."""
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    record = {"user": user.name, "csrf": csrf, "created_at": now.isoformat()}
    await store.open_session(session_digest(cookie), record, SESSION_TTL_S)
    return cookie, csrf


def secure_cookies(request: web.Request, public_url: str) -> bool:
    """``Secure`` when the console is served over HTTPS (directly or behind a proxy that
    terminates TLS: then ``DIALER_PUBLIC_URL`` starts with https://)."""
    return request.secure or public_url.startswith("https://")


# ---------------------------------------------------------------------------- CSRF


def same_origin(request: web.Request, public_url: str) -> bool:
    """The request comes from one of our pages: ``Origin`` (else ``Referer``) is the public
    URL's origin or this host's."""
    sent = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if not sent:
        return False
    seen = urlsplit(sent)
    origin = f"{seen.scheme}://{seen.netloc}"
    ours = {f"{request.scheme}://{request.host}"}
    if public_url:
        p = urlsplit(public_url)
        ours.add(f"{p.scheme}://{p.netloc}")
    return origin in ours


async def csrf_ok(request: web.Request, principal: Principal, public_url: str) -> bool:
    if not principal.csrf or not same_origin(request, public_url):
        return False
    sent = request.headers.get("X-CSRF-Token", "") or request.query.get("csrf", "")
    if not sent and request.content_type == "application/x-www-form-urlencoded":
        sent = str((await request.post()).get("csrf", ""))
    return bool(sent) and hmac.compare_digest(sent, principal.csrf)


# ---------------------------------------------------------------------------- signing in


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


async def sign_in_locked(store: Store, name: str, address: str) -> int:
    """Seconds before this account or this address may try again (0: now)."""
    return max(await store.locked(f"user:{name}", f"ip:{address}"))


async def sign_in_failed(store: Store, name: str, address: str, now: datetime) -> bool:
    """Count a failure; lock the account or the address at its limit. Whether it locked."""
    account = await store.count_failure(f"user:{name}", WINDOW_S)
    here = await store.count_failure(f"ip:{address}", WINDOW_S)
    locked = False
    if account >= ACCOUNT_FAILURES:
        await store.lock(f"user:{name}", LOCK_S)
        locked = True
    if here >= ADDRESS_FAILURES:
        await store.lock(f"ip:{address}", LOCK_S)
        locked = True
    await store.audit_global(
        now,
        f"login:{address}",
        "login_locked" if locked else "login_failed",
        {"user": name[:40], "address": address, "account_failures": account, "address_failures": here},
    )
    return locked

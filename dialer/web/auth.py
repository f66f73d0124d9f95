"""Who may do what: roles, API tokens and dashboard sessions.

Roles, from least to most trusted for supervisors' work:

    operator    health details and /metrics (monitoring)
    supervisor  campaigns (load, start, pause, stop), timelines, callbacks, suppressions
    admin       everything a supervisor does, plus configuration, prompts, archive, lifting
                suppressions

Tokens come from ``DIALER_API_TOKENS`` (``role:token,role:token``). When it is unset a
random token per role is created once in ``<data_dir>/api_tokens.toml`` (mode 0600) and
the log says where, never what. Tokens are compared in constant time and kept in memory
only as SHA-256 digests. The dashboard signs a short session cookie (HMAC, HttpOnly,
SameSite=Strict) after a login with a token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dialer.errors import ConfigError

ROLES = ("operator", "supervisor", "admin")
# what each role may do: a route names the role it needs
GRANTS = {
    "operator": {"operator"},
    "supervisor": {"supervisor", "operator"},
    "admin": {"admin", "supervisor", "operator"},
}
SESSION_COOKIE = "regua_session"
SESSION_TTL_S = 8 * 3600


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenBook:
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
    def from_pairs(cls, pairs: dict[str, str]) -> TokenBook:
        return cls(tuple((role, _digest(token)) for role, token in pairs.items()))


def parse_tokens(text: str) -> dict[str, str]:
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
    return pairs


def load_tokens(data_dir: str | Path, env: dict[str, str] | None = None) -> tuple[TokenBook, str]:
    """The token book, and where the tokens came from (for the log; never the tokens)."""
    env = dict(os.environ) if env is None else env
    if env.get("DIALER_API_TOKENS"):
        return TokenBook.from_pairs(parse_tokens(env["DIALER_API_TOKENS"])), "$DIALER_API_TOKENS"
    path = Path(data_dir) / "api_tokens.toml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f'{role} = "{secrets.token_urlsafe(24)}"\n' for role in ROLES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# API tokens, one per role. Keep this file private.\n" + body)
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return TokenBook.from_pairs({r: str(t) for r, t in data.items() if r in ROLES}), str(path)


def make_session(secret: bytes, role: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_TTL_S)
    payload = f"{role}.{expires}"
    sig = hmac.new(secret, b"session\x1f" + payload.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{payload}.{sig}"


def read_session(secret: bytes, cookie: str, now: float | None = None) -> str | None:
    try:
        role, expires, sig = cookie.split(".")
    except ValueError:
        return None
    expected = hmac.new(secret, f"session\x1f{role}.{expires}".encode(), hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(expected, sig) or role not in ROLES:
        return None
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    return role


def allowed(have: str | None, need: str) -> bool:
    if need == "public":
        return True
    return have is not None and need in GRANTS.get(have, set())

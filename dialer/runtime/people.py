"""People who use Régua: named users with a role, their passwords and API tokens.

Roles, from least to most trusted for supervisors' work:

    operator    health details and /metrics (monitoring)
    supervisor  campaigns (load, start, pause, stop), accounts, callbacks, suppressions
    admin       everything a supervisor does, plus configuration, prompts, archive, lifting
                suppressions, users and tokens

Passwords are hashed with scrypt (memory-hard: 16 MiB and ~0.1 s a hash, by design); API
tokens are ``rg_<id>_<secret>`` and only the secret's SHA-256 is kept, so a token is shown
once, when it is issued, and can be revoked by its id. Every change is audited with the
person who made it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialer.errors import InputError
from dialer.store import Store

ROLES = ("operator", "supervisor", "admin")
GRANTS = {
    "operator": {"operator"},
    "supervisor": {"supervisor", "operator"},
    "admin": {"admin", "supervisor", "operator"},
}
LANGUAGES = ("pt-BR", "en")
NAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    language: str = "pt-BR"
    zone: str = "America/Sao_Paulo"  # times on the console are shown in this zone
    disabled: bool = False

    @classmethod
    def from_record(cls, name: str, record: dict[str, Any]) -> User:
        return cls(
            name,
            str(record.get("role", "operator")),
            str(record.get("language", "pt-BR")),
            str(record.get("zone", "America/Sao_Paulo")),
            bool(record.get("disabled", False)),
        )


def allowed(role: str | None, need: str) -> bool:
    if need == "public":
        return True
    return role is not None and need in GRANTS.get(role, set())


# ---------------------------------------------------------------------------- hashing


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(stored: str, password: str) -> bool:
    """Constant time in the password's value; a malformed record never matches."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


#: the hash a sign-in with an unknown name is checked against: the same work, no answer
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """``rg_<id>_<secret>`` → (id, secret); None for anything else."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "rg" or not parts[1] or len(parts[2]) < 20:
        return None
    return parts[1], parts[2]


# ---------------------------------------------------------------------------- use cases


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise InputError(f"user name {name[:40]!r}: 2-32 lower-case letters, digits, '.', '_' or '-'")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > 256:
        raise InputError("the password is longer than 256 characters")


async def add_user(
    store: Store,
    name: str,
    role: str,
    password: str,
    now: datetime,
    actor: str,
    *,
    language: str = "pt-BR",
    zone: str = "America/Sao_Paulo",
) -> User:
    """A new user (a name already taken is refused)."""
    _check_name(name)
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise InputError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    _check_password(password)
    if await store.user(name) is not None:
        raise InputError(f"there is already a user named {name!r}")
    record = {
        "role": role,
        "password": hash_password(password),
        "language": language,
        "zone": zone,
        "created_at": now.isoformat(),
    }
    await store.save_user(name, record, now, actor, "user_added", {"user": name, "role": role})
    return User(name, role, language, zone)


async def change_user(
    store: Store,
    name: str,
    now: datetime,
    actor: str,
    *,
    role: str | None = None,
    password: str | None = None,
    language: str | None = None,
    zone: str | None = None,
    disabled: bool | None = None,
) -> User:
    """Change a user; a new password or a disable ends the user's sessions."""
    record = await store.user(name)
    if record is None:
        raise InputError(f"no user named {name!r}")
    changed: dict[str, Any] = {}
    if role is not None:
        if role not in ROLES:
            raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
        changed["role"] = role
    if language is not None:
        if language not in LANGUAGES:
            raise InputError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
        changed["language"] = language
    if zone is not None:
        changed["zone"] = zone
    if disabled is not None:
        changed["disabled"] = disabled
    if password is not None:
        _check_password(password)
        record["password"] = hash_password(password)
    record.update(changed)
    audit = {"user": name, **changed, **({"password": "changed"} if password is not None else {})}
    await store.save_user(name, record, now, actor, "user_changed", audit)
    if password is not None or disabled or role is not None:
        await store.end_sessions(name)
    return User.from_record(name, record)


async def issue_token(store: Store, user: str, label: str, now: datetime, actor: str) -> str:
    """A new API token for ``user``, returned whole this once (only its hash is kept)."""
    if await store.user(user) is None:
        raise InputError(f"no user named {user!r}")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    record = {
        "user": user,
        "digest": token_digest(secret),
        "label": label[:80],
        "created_at": now.isoformat(),
        "revoked": False,
    }
    await store.save_token(
        token_id, record, now, actor, "token_issued", {"token": token_id, "user": user, "label": label[:80]}
    )
    return f"rg_{token_id}_{secret}"


async def revoke_token(store: Store, token_id: str, now: datetime, actor: str) -> bool:
    record = await store.token(token_id)
    if record is None:
        return False
    record["revoked"] = True
    record["revoked_at"] = now.isoformat()
    await store.save_token(
        token_id, record, now, actor, "token_revoked", {"token": token_id, "user": record.get("user")}
    )
    return True


async def user_of_token(store: Store, token: str) -> User | None:
    """The active user a token belongs to (None: unknown, revoked, wrong or disabled)."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    record = await store.token(parsed[0])
    if record is None or record.get("revoked"):
        return None
    if not hmac.compare_digest(str(record.get("digest", "")), token_digest(parsed[1])):
        return None
    found = await store.user(str(record.get("user", "")))
    if found is None:
        return None
    user = User.from_record(str(record["user"]), found)
    return None if user.disabled else user

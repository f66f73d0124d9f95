"""The configuration files: ``config/dialer.toml``, a company's file, the admins' overlay
and the environment, read into one ``Settings`` tree and checked against the law.

``config/dialer.toml`` holds every default. ``--config FILE`` (or ``DIALER_CONFIG``)
lays a company's file over it: only the keys it names change; then the admins' overlay
(TOML kept in Redis, changed through the API); then environment variables:
``REDIS_URL``, ``DIALER_TELEPHONY``, ``DIALER_AMI_URLS``, ``DIALER_AGI_HOST``/
``DIALER_AGI_PORT``, ``DIALER_HTTP_HOST``/``DIALER_HTTP_PORT``, ``DIALER_SECRET_KEY``, and
any key as ``DIALER__SECTION__KEY`` (e.g. ``DIALER__POLICY__MIN_DAYS_PAST_DUE_VOICE=12``).
The first problem raises ``ConfigError`` naming the file (or variable), key and reason.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialer.errors import ConfigError
from dialer.rules.config_check import check_settings
from dialer.settings import DEFAULT_CONFIG, Settings

_ENV_ALIASES = {
    "REDIS_URL": ("service", "redis_url"),
    "DIALER_REDIS_URL": ("service", "redis_url"),
    "DIALER_TELEPHONY": ("service", "telephony"),
    "DIALER_AMI_URLS": ("service", "ami_urls"),
    "DIALER_AGI_HOST": ("service", "agi_host"),
    "DIALER_AGI_PORT": ("service", "agi_port"),
    "DIALER_AGI_ADVERTISE": ("service", "agi_advertise"),
    "DIALER_HTTP_HOST": ("service", "http_host"),
    "DIALER_HTTP_PORT": ("service", "http_port"),
    "DIALER_PUBLIC_URL": ("service", "public_url"),
    "DIALER_SECRET_KEY": ("service", "secret_key"),
    "DIALER_DATA_DIR": ("service", "data_dir"),
    "DIALER_SOUNDS_DIR": ("service", "sounds_dir"),
    "DIALER_SMS_PROVIDER": ("service", "sms_provider"),
    "DIALER_SMS_FALLBACK_PROVIDER": ("service", "sms_fallback_provider"),
    "DIALER_WORKERS": ("service", "workers"),
}
_LIST_KEYS = {("service", "ami_urls")}


def _merge(
    base: dict[str, Any],
    over: Mapping[str, Any],
    origin: dict[tuple[str, ...], str],
    source: str,
    path: tuple[str, ...] = (),
) -> None:
    for key, value in over.items():
        here = (*path, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, source, here)
        else:
            base[key] = value
            origin[here] = source


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "-", f"not valid TOML: {exc}") from None


def _env_value(raw: str, path: tuple[str, ...]) -> Any:
    if path in _LIST_KEYS:
        return [p.strip() for p in raw.split(",") if p.strip()]
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _source_of(origin: Mapping[tuple[str, ...], str], loc: tuple[str, ...], default: str) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origin:
            return origin[loc[:n]]
    for key, source in origin.items():  # a key below loc was set (e.g. one day of the hours)
        if key[: len(loc)] == loc:
            return source
    return default


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overlay: str | None = None,
) -> Settings:
    """Load defaults, lay ``path``, an admin's ``overlay`` (TOML text kept in Redis) and the
    environment over them, and validate everything."""
    env = os.environ if env is None else env
    data = _read_toml(DEFAULT_CONFIG)
    origin: dict[tuple[str, ...], str] = {}
    default_name = _display(DEFAULT_CONFIG)
    path = path or env.get("DIALER_CONFIG") or None
    if path:
        _merge(data, _read_toml(Path(path)), origin, _display(Path(path)))
    if overlay:
        try:
            _merge(data, tomllib.loads(overlay), origin, "admin overlay")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("admin overlay", "-", f"not valid TOML: {exc}") from None
    overrides: dict[str, Any] = {}
    env_origin: dict[tuple[str, ...], str] = {}
    for name, value in env.items():
        keypath: tuple[str, ...]
        if name in _ENV_ALIASES:
            keypath = _ENV_ALIASES[name]
        elif name.startswith("DIALER__"):
            keypath = tuple(p.lower() for p in name[len("DIALER__") :].split("__") if p)
        else:
            continue
        keypath = _match_case(data, keypath)
        node = overrides
        for part in keypath[:-1]:
            node = node.setdefault(part, {})
        node[keypath[-1]] = _env_value(value, keypath)
        env_origin[keypath] = f"environment ${name}"
    _merge(data, overrides, origin, "environment")
    origin.update(env_origin)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) or "-"
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            reason = "required key is missing"
        elif err["type"] == "extra_forbidden":
            reason = "unknown key (check its spelling against config/dialer.toml)"
        raise ConfigError(_source_of(origin, loc, default_name), key, reason) from None
    check_settings(settings, lambda loc: _source_of(origin, loc, default_name))
    return settings


def _match_case(data: Mapping[str, Any], keypath: tuple[str, ...]) -> tuple[str, ...]:
    """Environment names are upper case; match each part to the existing key's case."""
    out: list[str] = []
    node: Any = data
    for part in keypath:
        if isinstance(node, Mapping):
            match = next((k for k in node if k.lower() == part.lower()), part)
            out.append(match)
            node = node.get(match)
        else:
            out.append(part)
            node = None
    return tuple(out)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)

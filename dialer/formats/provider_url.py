"""Provider URLs: one URL names a provider (SMS gateways, payment providers) and its
options; secrets come from the environment variables the options name, and a secret
written into the URL itself is refused. Pure: the environment is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dialer.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ProviderUrl:
    """A parsed provider URL: what it names, never printed whole."""

    key: str  # the settings key, for error messages
    scheme: str
    username: str
    host: str
    port: int | None
    path: str
    options: dict[str, str]
    extra: list[tuple[str, str]]  # query parameters that are not options (generic HTTP keeps them)

    def fail(self, reason: str) -> ConfigError:
        return ConfigError("settings", self.key, f"{self.scheme}://: {reason}")

    def text(self, name: str, default: str = "") -> str:
        return self.options.get(name, default)

    def number(self, name: str, default: float, *, cast: Callable[[str], Any] = float) -> Any:
        raw = self.options.get(name)
        if raw in (None, ""):
            return default
        try:
            value = cast(raw)
        except ValueError:
            raise self.fail(f"option {name}={raw!r} is not a number") from None
        if value < 0:
            raise self.fail(f"option {name} must not be negative")
        return value

    def secret(self, option: str, env: Mapping[str, str], *, required: bool = True) -> str:
        name = self.options.get(option, "")
        if not name:
            if required:
                raise self.fail(f"{option}=VARIABLE is required: the secret is read from that variable")
            return ""
        value = env.get(name, "")
        if not value and required:
            raise ConfigError("environment", name, f"not set (named by {option} in {self.key})")
        return value


def parse_url(url: str, key: str, known: frozenset[str]) -> ProviderUrl:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("settings", key, f"{scheme}://: the port is not a number") from None
    if parts.password:
        raise ConfigError(
            "settings",
            key,
            f"{scheme}://: a secret written in the URL is refused; put it in an environment "
            "variable and name it with the *_env option",
        )
    options: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in known:
            options[name] = value
        else:
            extra.append((name, value))
    return ProviderUrl(
        key, scheme, parts.username or "", parts.hostname or "", port, parts.path, options, extra
    )


def refuse_extra(url: ProviderUrl) -> None:
    """A typo in an option name is an error, not a silently ignored setting."""
    if url.extra:
        names = ", ".join(sorted({n for n, _ in url.extra}))
        raise url.fail(f"unknown option(s) {names}")

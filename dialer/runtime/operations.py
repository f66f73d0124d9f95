"""The use cases that change what Régua may do, written once for every caller.

The CLI, the HTTP API and the SMS webhooks (and SMPP) suppress numbers, lift
suppressions, set an account's status and honour an SMS opt-out through these functions;
the worker writes the suppressions a call implies in its batched effects with the same
audit event (``rules.audit.suppression_event``). One shape each:

    kind "suppress"        data {number, channel, reason, source, [campaign, account, keyword]}
    kind "suppress_import" data {file, source, imported, rejected, effective_after_days}
    kind "unsuppress"      data {number, channel, removed}
    kind "account_status"  data {account, status, campaigns, [note]}
    kind "sms_inbound"     data {from, keyword, length}

``actor`` names who did it: a person (``cli:maria``, ``api:supervisor``), a provider
(``sms:twilio``) or a worker (``worker:host-123``).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import tomli_w

from dialer.domain import AccountStatus, Channel, Suppression, SuppressionReason
from dialer.errors import InputError, SmsError
from dialer.formats.config_file import load_settings
from dialer.rules.agreements import AgreementStatus
from dialer.rules.audit import suppression_event
from dialer.rules.local_time import number_country
from dialer.settings import Settings
from dialer.store import Store
from sms_gateway.base import SmsGateway, SmsMessage
from sms_gateway.webhooks import InboundMessage, opt_out_keyword

if TYPE_CHECKING:  # the runtime is wiring's, which imports this module
    from dialer.runtime.wiring import Runtime

log = logging.getLogger("regua.operations")

CONFIRMATION = {
    "BR": "Pronto: você não receberá mais mensagens deste número. Dúvidas: {callback_number}.",
    "US": "You are unsubscribed and will receive no more messages. Questions: {callback_number}.",
}


async def suppress(
    store: Store, entries: Sequence[Suppression], now: datetime, actor: str, **context: str
) -> int:
    """Stop contact on these numbers (every campaign, at once), audited. Returns how many were new."""
    return await store.suppress(entries, now, actor, [suppression_event(s, **context) for s in entries])


async def unsuppress(store: Store, number: str, channel: Channel | None, now: datetime, actor: str) -> bool:
    """Lift a suppression, audited whether or not there was one. Whether there was."""
    data = {"number": number, "channel": channel.value if channel else "*"}
    return bool(await store.unsuppress(number, channel, now, actor, "unsuppress", data))


@dataclass(frozen=True, slots=True)
class ImportSummary:
    file: str
    source: str
    imported: int
    rejected: int
    effective_after_days: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "source": self.source,
            "imported": self.imported,
            "rejected": self.rejected,
            "effective_after_days": self.effective_after_days,
        }


async def import_suppressions(
    store: Store,
    items: Iterable[Suppression | tuple[Any, ...]],
    now: datetime,
    actor: str,
    *,
    file: str,
    source: str,
    effective_after_days: int,
    on_rejected: Any = None,
    batch: int = 5000,
) -> ImportSummary:
    """A registry (SP "Não Me Ligue") or a company list: entries in batches, rejected lines
    to ``on_rejected``, one summary audit event (``suppress_import``) for the whole file."""
    imported = rejected = 0
    chunk: list[Suppression] = []
    for item in items:
        if not isinstance(item, Suppression):
            rejected += 1
            if on_rejected is not None:
                on_rejected(item)
            continue
        chunk.append(item)
        if len(chunk) >= batch:
            imported += len(chunk)
            await store.suppress(chunk, now, actor)
            chunk = []
    if chunk:
        imported += len(chunk)
        await store.suppress(chunk, now, actor)
    summary = ImportSummary(file, source, imported, rejected, effective_after_days)
    await store.audit_global(now, actor, "suppress_import", summary.as_dict())
    return summary


async def set_account_status(
    store: Store,
    account_id: str,
    status: AccountStatus,
    now: datetime,
    actor: str,
    *,
    note: str = "",
    campaign: str | None = None,
) -> list[dict[str, Any]]:
    """Paid, disputed, closed or open again, in every campaign holding the account (or one):
    at once (a worker's pending claim goes stale), audited. One entry per campaign holding it.
    A person who changes an account in agreement ends its agreement (audited): the régua, or
    nothing, takes over from it."""
    changes = await store.set_account_status(account_id, status, now, actor, note=note, campaign=campaign)
    current = (await store.current_agreements([account_id])).get(account_id)
    if current is not None and any(
        c.get("changed") and c.get("from") is AccountStatus.AGREEMENT for c in changes
    ):
        await store.end_agreement(
            current,
            AgreementStatus.BROKEN,
            now,
            {
                "agreement": current.agreement_id,
                "account": account_id,
                "why": f"status set to {status.value} by {actor}",
            },
            actor,
        )
    return changes


async def sms_reply(
    store: Store, sms: SmsGateway | None, settings: Settings, now: datetime, message: InboundMessage
) -> dict[str, Any]:
    """A debtor's SMS reply: every reply is audited; an opt-out keyword suppresses SMS to that
    number at once (and calls, with ``policy.sms_opt_out_stops_calls``) and is confirmed once
    (not by a process without an SMS gateway: the suppression never waits for it)."""
    try:
        country = number_country(message.from_number)
    except Exception:  # a number outside our packs: treat as Brazilian for the keywords
        country = "BR"
    keyword = opt_out_keyword(message.text, country)
    actor = f"sms:{message.provider}"
    await store.audit_global(
        now,
        actor,
        "sms_inbound",
        {"from": message.from_number, "keyword": keyword, "length": len(message.text)},
    )
    if keyword is None:
        return {"opt_out": False}
    channels = [Channel.SMS, *([Channel.VOICE] if settings.policy.sms_opt_out_stops_calls else [])]
    stops = [
        Suppression(message.from_number, SuppressionReason.OPT_OUT, c, None, f"sms:{keyword}")
        for c in channels
    ]
    await suppress(store, stops, now, actor, keyword=keyword)
    confirmed = False
    text = CONFIRMATION.get(country, CONFIRMATION["BR"]).format(
        callback_number=settings.company.callback_number
    )
    masked = message.from_number[:-4] + "****"
    if sms is None:
        log.warning("opt-out of %s recorded; this process has no SMS gateway to confirm it", masked)
    else:
        try:
            # the key is the number: whatever the person sends again, one confirmation at most
            result = await sms.send(
                SmsMessage(message.from_number, text, f"optout:{message.from_number}", "", "none")
            )
            confirmed = not result.duplicate
        except SmsError as exc:
            log.warning("opt-out confirmation to %s not sent: %s", masked, exc)
    return {
        "opt_out": True,
        "keyword": keyword,
        "confirmation_sent": confirmed,
        "stopped": [s.channel.value for s in stops if s.channel],
    }


# ---------------------------------------------------------------------------- configuration

MAX_OVERLAY = 256 * 1024


def parse_overlay(text: str) -> dict[str, Any]:
    """An admin's TOML overlay, parsed; the ``[service]`` section (URLs, secrets, ports) is the
    operator's environment's, refused in any spelling (``[ service ]``, ``service.x = …``)."""
    if len(text.encode()) > MAX_OVERLAY:
        raise InputError(f"the configuration overlay is larger than {MAX_OVERLAY // 1024} KiB")
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"the configuration is not valid TOML: {str(exc)[:200]}") from None
    if "service" in tree:
        raise InputError(
            "the service section (URLs, secrets, ports) is set by the operator's environment, not here"
        )
    return tree


async def change_config(store: Store, runtime: Runtime, text: str, now: datetime, actor: str) -> int:
    """Lay ``text`` (TOML) over the company's files — ``config/dialer.toml``, the ``--config``
    file the service runs with, then this — validated exactly as at start (legal floors
    included): nothing is stored if it fails. Applied at once here, within 2 s in every other
    process, audited. The new version."""
    if not text.strip():
        raise InputError(
            "an empty configuration would drop every change the admins made; to do that, clear it "
            "(DELETE /api/config) instead"
        )
    parse_overlay(text)
    settings = load_settings(runtime.config_path, overlay=text)  # ConfigError names key and reason
    version = await store.set_config_overlay(text, now, actor, f"{len(text)} bytes of TOML")
    await runtime.apply(settings, version)
    return version


async def clear_config(store: Store, runtime: Runtime, now: datetime, actor: str) -> int:
    """Drop every change the admins made: back to the files (audited)."""
    settings = load_settings(runtime.config_path)
    version = await store.set_config_overlay("", now, actor, "cleared: back to the files")
    await runtime.apply(settings, version)
    return version


def merge_overlay(text: str, patch: dict[str, Any]) -> str:
    """``text`` with ``patch`` laid over it (nested tables merged): how a console form
    changes one part of the overlay without losing the others."""
    tree = parse_overlay(text) if text.strip() else {}

    def lay(base: dict[str, Any], over: dict[str, Any]) -> None:
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                lay(base[key], value)
            else:
                base[key] = value

    lay(tree, patch)
    return tomli_w.dumps(tree)

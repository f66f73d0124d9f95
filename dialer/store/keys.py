"""Every Redis key Régua uses, in one place.

Keys of a campaign carry the hash tag ``{c:NAME}`` so that one campaign lives in one
Redis Cluster slot and its multi-key scripts (schedule → stream, finish → account +
schedule + stream) stay atomic on a cluster too. Global keys (campaign registry,
suppression, outbox, audit of non-campaign changes) are single keys.

Per campaign:
  meta            hash    name, state, counters of the lifecycle
  schedule        zset    account_id scored by the next eligible time (epoch ms)
  work            stream  entries handed to workers (consumer group ``workers``)
  stats           hash    outcome / reason counters for status and the dashboard
  series          hash    outcomes per hour ("<epoch hour>|outcome:<o>") for the plots
  audit           stream  lifecycle events of the campaign
  a:<account>     hash    the account (``a``), its phones (``p:<e164>``), history
                          (``h:<attempt>``), history version (``hv``), lock (``lk``),
                          pending SMS fallback (``fb``)
  e:<account>     list    the account's timeline (decisions, attempts, outcomes, SMS)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "regua"
CAMPAIGNS = f"{PREFIX}:campaigns"  # hash: name -> created-at ISO
SUPPRESS = f"{PREFIX}:suppress"  # hash: "<e164>|<channel or *>" -> JSON entry
AUDIT = f"{PREFIX}:audit"  # stream: changes outside a campaign (suppression, config)
OUTBOX = f"{PREFIX}:sms:outbox"  # stream: SMS the sandbox gateway "sent"
CALLBACKS = f"{PREFIX}:callbacks"  # zset: callback requests by requested time
WAKE = f"{PREFIX}:wake"  # pub/sub channel: schedulers wake up early
SMS_SENT = f"{PREFIX}:sms:sent"  # hash: idempotency key -> provider message id
LINKS = f"{PREFIX}:links"  # hash: payment link id -> "<campaign>\x1f<account>"
CONFIG_OVERLAY = f"{PREFIX}:config:overlay"  # string: the admins' TOML laid over the files
CONFIG_VERSION = f"{PREFIX}:config:version"  # int: bumped on every accepted change
IVR_REQUEST = f"{PREFIX}:ivr:req:"  # + attempt id: what the IVR needs (set before Originate)
IVR_RESULT = f"{PREFIX}:ivr:res:"  # + attempt id: what happened in the IVR (read after hang-up)
SMS_MESSAGE = f"{PREFIX}:sms:msg:"  # + day: hash provider:message id -> the attempt it belongs to
GROUP = "workers"

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def valid_campaign_name(name: str) -> bool:
    return bool(NAME.fullmatch(name))


@dataclass(frozen=True, slots=True)
class CampaignKeys:
    name: str

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{c:{self.name}}}"

    @property
    def meta(self) -> str:
        return f"{self.tag}:meta"

    @property
    def schedule(self) -> str:
        return f"{self.tag}:schedule"

    @property
    def work(self) -> str:
        return f"{self.tag}:work"

    @property
    def stats(self) -> str:
        return f"{self.tag}:stats"

    @property
    def series(self) -> str:
        return f"{self.tag}:series"

    @property
    def audit(self) -> str:
        return f"{self.tag}:audit"

    def account(self, account_id: str) -> str:
        return f"{self.tag}:a:{account_id}"

    def events(self, account_id: str) -> str:
        return f"{self.tag}:e:{account_id}"

    @property
    def account_prefix(self) -> str:
        return f"{self.tag}:a:"

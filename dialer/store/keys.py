"""Every Redis key Régua uses, in one place (no other module spells one).

Keys of a campaign carry the hash tag ``{c:NAME}`` so that one campaign lives in one
Redis Cluster slot and its multi-key scripts (schedule → stream, finish → account +
schedule + stream) stay atomic on a cluster too. A trunk's pacing keys share ``{t:NAME}``,
the per-phone day counters ``{phones}``, the SMS ledger ``{sms}``. Global keys (campaign
registry, suppression, audit of non-campaign changes, callbacks, configuration) are
single keys under one hash tag ``{g}``.

Per campaign:
  meta            hash    name, state, counters of the lifecycle
  schedule        zset    account_id scored by the next eligible time (epoch ms)
  work            stream  entries handed to workers (consumer group ``workers``)
  stats           hash    outcome / reason counters for status and the dashboard
  series          hash    outcomes per hour ("<epoch hour>|outcome:<o>") for the plots
  audit           stream  lifecycle events of the campaign
  leases          zset    calls in flight (pacing: attempt id scored by lease expiry)
  a:<account>     hash    the account (``a``), its phones (``p:<e164>``), history
                          (``h:<attempt>``), history version (``hv``), lock (``lk``),
                          pending SMS fallback (``fb``)
  e:<account>     list    the account's timeline (decisions, attempts, outcomes, SMS)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

PREFIX = "regua"
# global records share one hash tag: a change and its audit entry are one transaction,
# in one slot on Redis Cluster too
GLOBAL = f"{PREFIX}:{{g}}"
CAMPAIGNS = f"{GLOBAL}:campaigns"  # hash: name -> created-at ISO
SUPPRESS = f"{GLOBAL}:suppress"  # hash: "<e164>|<channel or *>" -> JSON entry
AUDIT = f"{GLOBAL}:audit"  # stream: changes outside a campaign (suppression, config)
CALLBACKS = f"{GLOBAL}:callbacks"  # zset: callback requests by requested time
CALLBACK_CLAIMS = f"{GLOBAL}:callback-claims"  # hash: callback id -> who took it, when
WAKE = f"{PREFIX}:wake"  # pub/sub channel: schedulers wake up early
LINKS = f"{GLOBAL}:links"  # hash: payment link id -> "<campaign>\x1f<account>"
CONFIG_OVERLAY = f"{GLOBAL}:config:overlay"  # string: the admins' TOML laid over the files
CONFIG_VERSION = f"{GLOBAL}:config:version"  # int: bumped on every accepted change
PROMPT_OVERRIDES = f"{GLOBAL}:prompts:overrides"  # string: JSON of the admins' prompt edits
PROMPT_VERSION = f"{GLOBAL}:prompts:version"  # int: bumped on every prompt edit
USERS = f"{GLOBAL}:users"  # hash: user name -> JSON (role, password hash, language, zone, …)
TOKENS = f"{GLOBAL}:tokens"  # hash: token id -> JSON (user, secret's hash, label, revoked)
IVR_REQUEST = f"{PREFIX}:ivr:req:"  # + attempt id: what the IVR needs (set before Originate)
IVR_RESULT = f"{PREFIX}:ivr:res:"  # + attempt id: what happened in the IVR (read after hang-up)
SANDBOX_CLOCK = f"{PREFIX}:sandbox:clock"  # string: a running sandbox service's simulated clock
SHORT_CALLS = f"{PREFIX}:shortcalls:"  # + day: hash "<trunk>|answered|short" -> count
# the SMS ledger: one hash tag, so the sandbox's outbox script touches one slot
SMS_SENT = f"{PREFIX}:{{sms}}:sent"  # hash: idempotency key -> provider:message id
OUTBOX = f"{PREFIX}:{{sms}}:outbox"  # stream: SMS the sandbox gateway "sent"
SMS_MESSAGE = f"{PREFIX}:sms:msg:"  # + day: hash provider:message id -> the attempt it belongs to
# payments: one hash tag, so recording an event and the charge it moves are one script
PAY = f"{PREFIX}:{{pay}}"
PAY_EVENTS = f"{PAY}:events"  # hash: event id -> JSON (an event twice is recorded once)
PAY_STREAM = f"{PAY}:payments"  # stream: every new payment event, with its charge and account
CURRENT_CHARGE = f"{PAY}:current"  # hash: account -> txid of its latest whole-debt charge
CHARGE_QUEUE = f"{PAY}:charge-queue"  # zset: txid scored by when to (re)try making the charge
RECHECK = f"{PAY}:recheck"  # zset: open charges scored by when the reconciliation job asks again
UNSETTLED = f"{PAY}:unsettled"  # zset: charges whose money moved but whose account is not settled yet
SWEEP = f"{PAY}:sweep"  # string: where the last "received since" sweep ended (ISO)
SANDBOX_PAYS = f"{PAY}:sandbox-pays"  # zset: SANDBOX txid scored by when its debtor "pays"
CURRENT_AGREEMENT = f"{PAY}:agreement-current"  # hash: account -> id of its current agreement
AGREEMENT_REVIEW = f"{PAY}:agreement-review"  # zset: current agreements by when to look again
AGREEMENT_STATS = f"{PAY}:agreement-stats"  # hash: "<campaign>|made|kept|broken|made_cents|paid_cents" -> n
SPECIAL_OFFERS = f"{PAY}:special-offers"  # hash: account -> JSON of a special offer made for it
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

    @property
    def leases(self) -> str:
        return f"{self.tag}:leases"

    def account(self, account_id: str) -> str:
        return f"{self.tag}:a:{account_id}"

    def events(self, account_id: str) -> str:
        return f"{self.tag}:e:{account_id}"

    @property
    def payments(self) -> str:
        """The payment events this campaign has counted (set): a retry never counts twice."""
        return f"{self.tag}:payments"

    @property
    def account_prefix(self) -> str:
        return f"{self.tag}:a:"


def charge(txid: str) -> str:
    """A charge: ``c`` its record (JSON), ``paid`` and ``refunded`` in cents, ``n`` events."""
    return f"{PAY}:charge:{txid}"


def account_charges(account_id: str) -> str:
    """The charges of an account (zset: txid scored by creation), the current one last."""
    return f"{PAY}:account:{account_id}"


def agreement(agreement_id: str) -> str:
    """An agreement: ``doc`` (JSON, as accepted), ``status``, ``ended_at``, ``paid:<n>`` per installment paid."""
    return f"{PAY}:agreement:{agreement_id}"


def account_agreements(account_id: str) -> str:
    """Every agreement of an account (zset: id scored by when it was made)."""
    return f"{PAY}:agreements:{account_id}"


def link_failures(scope: str) -> str:
    """Failed second factors on a debtor page: per link (``link:<nonce>``) or client address."""
    return f"{GLOBAL}:link-failures:{scope}"


def debtor_session(digest: str) -> str:
    """A debtor's verified session (by the hash of its cookie): one account, one link."""
    return f"{GLOBAL}:debtor-session:{digest}"


def link_lock(nonce: str) -> str:
    """A debtor link locked after too many failures (unlocked only by a new link)."""
    return f"{GLOBAL}:link-lock:{nonce}"


def webhook_seen(key: str) -> str:
    """A webhook signature already accepted (expires with the replay window)."""
    return f"{PAY}:seen:{key}"


def session(digest: str) -> str:
    """A console session (by the hash of its cookie), with the session's time to live."""
    return f"{GLOBAL}:session:{digest}"


def user_sessions(user: str) -> str:
    """The sessions a user has open (set of digests): ended together by a disable or logout-all."""
    return f"{GLOBAL}:user-sessions:{user}"


def login_failures(scope: str) -> str:
    """Failed sign-ins of an account (``user:NAME``) or a client address (``ip:ADDR``)."""
    return f"{GLOBAL}:login-failures:{scope}"


def login_lock(scope: str) -> str:
    return f"{GLOBAL}:login-lock:{scope}"


def trunk_keys(trunk: str) -> tuple[str, str]:
    """A trunk's channel leases (zset) and its calls of the last second (zset): one slot."""
    tag = f"{PREFIX}:{{t:{trunk}}}"
    return f"{tag}:leases", f"{tag}:window"


def phone_day(number: str, channel: str, day: date) -> str:
    """The counter of contacts to one phone on one channel on one local day, across campaigns."""
    # one hash tag for every counter: a batch is counted by one script, on a cluster too
    return f"{PREFIX}:{{phones}}:{number}:{channel}:{day.isoformat()}"


def sms_rate_bucket(lane: str, provider: str) -> str:
    """A provider's shared token bucket (its rate is per account, not per process)."""
    return f"{PREFIX}:sms:rate:{lane}:{provider}"


#: Keys renamed when the global records took their hash tags (a Redis written by an earlier
#: version is migrated at start: ``Store.migrate_legacy_keys``).
LEGACY = {
    f"{PREFIX}:campaigns": CAMPAIGNS,
    f"{PREFIX}:suppress": SUPPRESS,
    f"{PREFIX}:audit": AUDIT,
    f"{PREFIX}:callbacks": CALLBACKS,
    f"{PREFIX}:links": LINKS,
    f"{PREFIX}:config:overlay": CONFIG_OVERLAY,
    f"{PREFIX}:config:version": CONFIG_VERSION,
    f"{PREFIX}:prompts:overrides": PROMPT_OVERRIDES,
    f"{PREFIX}:prompts:version": PROMPT_VERSION,
    f"{PREFIX}:sms:sent": SMS_SENT,
    f"{PREFIX}:sms:outbox": OUTBOX,
}

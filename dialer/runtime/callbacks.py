"""The callback queue agents work: who asked, when, for which hours — and whether the rules
let the agent call them *now*, and from when (``decide()``, as for every contact; the debtor
asked for this call, so the attempt caps and the quiet week after their conversation do
not hold it back, while hours, holidays, consent and suppressions do)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dialer.domain import Channel, Contact
from dialer.rules.local_time import locate
from dialer.rules.policy import Policy, decide
from dialer.store import Store


async def queue(store: Store, policy: Policy, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Every open request with what an agent needs: the debtor's local time now, the window
    they asked for (hours in their local time), and the rules' answer for a call now."""
    out = []
    for entry in await store.callbacks(limit):
        states = await store.load_accounts(str(entry.get("campaign", "")), [str(entry.get("account_id", ""))])
        state = states[0] if states else None
        phone = next((p for p in state.phones if p.number == entry.get("phone")), None) if state else None
        if state is None or phone is None:
            out.append({**entry, "may_call_now": False, "reasons": ["account_gone"], "not_before": None})
            continue
        suppressions = (await store.suppressions([phone.number])).get(phone.number, ())
        contact = Contact(state.account, phone, Channel.VOICE, suppressions, requested=True)
        decision = decide(contact, state.history, now, policy)
        zone = (
            entry.get("timezone")
            or locate(phone.number, state.account.region, state.account.timezone).zones[0]
        )
        out.append(
            {
                **entry,
                "name": state.account.name,
                "timezone": zone,
                "debtor_local_time": now.astimezone(ZoneInfo(zone)).isoformat(),
                "may_call_now": decision.allowed,
                "reasons": [str(r) for r in decision.reasons],
                "not_before": decision.not_before.isoformat() if decision.not_before else None,
            }
        )
    return out

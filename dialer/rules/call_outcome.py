"""How a call ended, from what Asterisk said — pure, table-tested.

Sources, most reliable first: what the IVR recorded (a person verified, a third party,
a wrong number), the AMD result (MACHINE), the Hangup event's Q.850 ``Cause``, and the
``Reason`` of OriginateResponse (0 failure, 1 hung up, 3 rang without answer, 4 answered,
5 busy, 8 congestion).
"""

from __future__ import annotations

from dialer.domain import Outcome

# Q.850 cause codes seen on Hangup before answer
CAUSE_OUTCOME: dict[int, Outcome] = {
    1: Outcome.INVALID_NUMBER,  # unallocated (unassigned) number
    2: Outcome.INVALID_NUMBER,  # no route to specified transit network
    3: Outcome.INVALID_NUMBER,  # no route to destination
    22: Outcome.INVALID_NUMBER,  # number changed
    28: Outcome.INVALID_NUMBER,  # invalid number format (address incomplete)
    17: Outcome.BUSY,  # user busy
    18: Outcome.NO_ANSWER,  # no user responding
    19: Outcome.NO_ANSWER,  # no answer from user (user alerted)
    20: Outcome.NO_ANSWER,  # subscriber absent
    21: Outcome.REJECTED,  # call rejected
    27: Outcome.FAILED,  # destination out of order
    34: Outcome.CONGESTION,  # no circuit/channel available
    38: Outcome.CONGESTION,  # network out of order
    41: Outcome.CONGESTION,  # temporary failure
    42: Outcome.CONGESTION,  # switching equipment congestion
    44: Outcome.CONGESTION,  # requested channel not available
}

REASON_OUTCOME: dict[int, Outcome] = {
    0: Outcome.FAILED,
    1: Outcome.NO_ANSWER,  # the far end hung up before answering
    3: Outcome.NO_ANSWER,
    5: Outcome.BUSY,
    8: Outcome.CONGESTION,
}


def classify(
    *,
    answered: bool,
    reason: int | None = None,
    cause: int | None = None,
    amd: str | None = None,
    ivr_outcome: str | None = None,
) -> Outcome:
    """The outcome of one call attempt."""
    if answered or reason == 4:
        if ivr_outcome:
            try:
                return Outcome(ivr_outcome)
            except ValueError:
                pass
        if amd == "MACHINE":
            return Outcome.VOICEMAIL
        return Outcome.ANSWERED_UNVERIFIED
    if cause is not None and cause in CAUSE_OUTCOME:
        return CAUSE_OUTCOME[cause]
    if reason is not None and reason in REASON_OUTCOME:
        return REASON_OUTCOME[reason]
    if cause == 16:  # normal clearing, never answered: the ring timeout ended it
        return Outcome.NO_ANSWER
    return Outcome.FAILED

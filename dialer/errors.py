"""Régua's exception tree. Library errors are converted at the adapter boundary.

ReguaError
├── ConfigError            invalid configuration: file, key and reason
├── InputError             bad external input (CSV row, HTTP body, webhook)
│   └── HeaderError        a campaign file whose header cannot be used
├── UnsupportedNumber      a number outside every rule pack
├── StoreError             Redis misbehaving (a refused command, a bad name)
│   ├── StoreUnavailable   Redis unreachable or timing out: back off and retry
│   └── UnknownCampaign    no campaign by that name
├── TelephonyError         the voice backend failed
│   ├── TelephonyDown      no telephony server can take a call now
│   └── AmiLoginFailed     wrong AMI credentials: do not retry in a loop
├── SmsError
│   ├── SmsRetryable       try again later (throttled, 5xx, timeout)
│   └── SmsPermanent       the provider refused this message for good
├── PaymentError
│   ├── PaymentRetryable   the payment provider may answer later (throttled, 5xx, timeout)
│   └── PaymentPermanent   the provider refused the request (bad data, bad credentials)
└── RetryLater(defer=…)    back off and try again in ``defer`` seconds
"""

from __future__ import annotations


class ReguaError(Exception):
    """Base of every error Régua raises on purpose."""


class ConfigError(ReguaError):
    """Invalid configuration. ``str()`` reads ``file: key: reason``."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}")


class InputError(ReguaError):
    """Bad external input; names where and why."""


class HeaderError(InputError):
    """A campaign file whose header is missing required columns (nothing was written)."""


class UnsupportedNumber(ReguaError):
    """A phone number in a country for which Régua has no rule pack."""


class StoreError(ReguaError):
    """The Redis store could not be used."""


class StoreUnavailable(StoreError):
    """Redis is unreachable or timing out: nothing was (or may have been) written; retry."""


class UnknownCampaign(StoreError):
    """No campaign by that name."""


class TelephonyError(ReguaError):
    """The voice backend failed."""


class TelephonyDown(TelephonyError):
    """No telephony server can take a call now; voice work must be rescheduled."""


class AmiLoginFailed(TelephonyError):
    """Asterisk refused our AMI credentials."""


class SmsError(ReguaError):
    """An SMS could not be sent."""


class SmsRetryable(SmsError):
    """A transient SMS failure: retry with back-off."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SmsPermanent(SmsError):
    """The provider refused the message for good (invalid number, blocked, bad auth).

    ``opted_out``: the provider refused because the recipient unsubscribed there (e.g. Twilio
    21610 after a STOP reply): the number is suppressed for SMS, as if they had told us.
    """

    def __init__(self, message: str, *, opted_out: bool = False) -> None:
        super().__init__(message)
        self.opted_out = opted_out


class PaymentError(ReguaError):
    """A payment provider could not do what was asked."""


class PaymentRetryable(PaymentError):
    """A transient payment-provider failure: retry with back-off."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PaymentPermanent(PaymentError):
    """The provider refused the request for good: surfaced, never retried in a loop."""


class RetryLater(ReguaError):
    """Back off and try again after ``defer`` seconds."""

    def __init__(self, defer: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {defer:.1f}s")
        self.defer = defer

"""Régua — a collections dialer that runs the régua de cobrança by the rules.

The package is a functional core (``domain``, ``local_time``, ``calling_hours``,
``holiday_calendar``, ``policy``, ``cadence``, ``campaign_file``) inside an imperative
shell (Redis store, workers, telephony and SMS adapters, HTTP API, CLI).
"""

__version__ = "0.1.0"

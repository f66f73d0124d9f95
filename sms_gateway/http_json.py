"""A generic HTTP JSON gateway: one POST per message, shaped by configuration.

The body is a JSON template whose placeholders ``{to}``, ``{text}``, ``{id}`` (the
idempotency key) and ``{from}`` are replaced by JSON-escaped strings, so they belong
inside quotes::

    {"to": "{to}", "message": "{text}", "reference": "{id}"}

The provider's message id is read from the JSON reply at ``id_path`` (``id``,
``data.message_id``, ``messages.0.id``). The idempotency key also goes out in a header
(``Idempotency-Key`` by default) so a gateway that deduplicates can do it. A 2xx reply
without an id still counts as sent (``message_id`` "unknown"): resending it could
text the debtor twice.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from dialer.errors import ConfigError
from sms_gateway.base import SendResult, SmsMessage
from sms_gateway.http_transport import HttpReply, HttpTransport, SendCounters

log = logging.getLogger("regua.sms.http_json")

DEFAULT_TEMPLATE = '{"to": "{to}", "text": "{text}", "id": "{id}"}'
PLACEHOLDER = re.compile(r"\{(to|text|id|from)\}")


@dataclass(frozen=True, slots=True)
class HttpJsonConfig:
    url: str
    body_template: str = DEFAULT_TEMPLATE
    id_path: str = "id"
    auth_header: str = "Authorization"
    auth_value: str = field(default="", repr=False)  # the whole header value, e.g. "Bearer …"
    sender: str = ""  # replaces {from}
    idempotency_header: str = "Idempotency-Key"  # "" sends none
    price: float = 0.0  # per segment
    timeout: float = 10.0
    name: str = "http"


def json_escaped(value: str) -> str:
    """``value`` escaped for use between the quotes of a JSON string."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


@dataclass(frozen=True, slots=True)
class BodyTemplate:
    """A template cut once into literal text and placeholders."""

    pieces: tuple[str, ...]  # even indexes: literal text; odd: placeholder names

    @classmethod
    def parse(cls, template: str) -> BodyTemplate:
        pieces = tuple(PLACEHOLDER.split(template))
        tpl = cls(pieces)
        sample = tpl.render({"to": "+5511987654321", "text": 'a "b"\n\\ ç', "id": "k", "from": "s"})
        try:
            json.loads(sample)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                "sms provider URL",
                "body",
                f"the body template is not JSON once filled in ({exc.msg}); "
                'placeholders go inside quotes: {"to": "{to}", "text": "{text}"}',
            ) from None
        return tpl

    def render(self, values: dict[str, str]) -> str:
        return "".join(
            piece if i % 2 == 0 else json_escaped(values[piece]) for i, piece in enumerate(self.pieces)
        )


def value_at(document: Any, path: str) -> Any:
    """The value at a dotted path (``data.items.0.id``), or None."""
    node = document
    for step in path.split("."):
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
    return node


def error_detail(reply: HttpReply) -> str:
    """A provider's own words for an error, from the usual JSON fields or the raw text."""
    body = reply.json()
    if isinstance(body, dict):
        for key in ("message", "error_description", "description", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                code = body.get("code")
                return f"{code} {value}" if code not in (None, "") else value
            if isinstance(value, dict):
                return error_detail(HttpReply(reply.status, reply.headers, json.dumps(value).encode()))
    return reply.body[:200].decode("utf-8", "replace")


class HttpJsonSms(SendCounters):
    """``SmsGateway`` over a configurable HTTP JSON API."""

    def __init__(self, config: HttpJsonConfig) -> None:
        self.config = config
        self.name = config.name
        self._template = BodyTemplate.parse(config.body_template)
        self._http = HttpTransport(config.name, timeout=config.timeout, secrets=(config.auth_value,))
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if config.auth_value:
            self._headers[config.auth_header] = config.auth_value
        SendCounters.__init__(self)

    async def send(self, message: SmsMessage) -> SendResult:
        return await self._counted(message, self._submit(message), self.config.price)

    async def _submit(self, message: SmsMessage) -> str:
        body = self._template.render(
            {
                "to": message.to,
                "text": message.text,
                "id": message.idempotency_key,
                "from": self.config.sender,
            }
        ).encode()
        headers = self._headers
        if self.config.idempotency_header:
            headers = {**headers, self.config.idempotency_header: message.idempotency_key}
        reply = await self._http.post(self.config.url, body=body, headers=headers)
        if not 200 <= reply.status < 300:
            raise self._http.error_for(reply, error_detail(reply))
        message_id = value_at(reply.json(), self.config.id_path)
        if message_id in (None, ""):
            log.warning(
                "%s: HTTP %s without an id at %r: counted as sent",
                self.name,
                reply.status,
                self.config.id_path,
            )
            message_id = "unknown"
        return str(message_id)

    async def close(self) -> None:
        await self._http.close()

"""The Banco Central's Pix API (``cobv``: a charge with a due date), as Efí, Itaú,
Santander, Sicoob, Banco do Brasil and other PSPs implement it.

- **OAuth2 client credentials over mutual TLS**: ``POST token_url`` with
  ``grant_type=client_credentials`` and HTTP Basic ``client_id:client_secret``, our client
  certificate on the connection (the PSPs require it on the API too). One token is shared
  by every request (concurrent ones wait for the one fetch), kept until shortly before
  ``expires_in`` (a minute, or a tenth of a short life), and fetched again on a 401.
- ``PUT /cobv/{txid}``: ``calendario`` (``dataDeVencimento``, ``validadeAposVencimento``),
  ``devedor`` (``cpf`` or ``cnpj``, ``nome``), ``valor`` (``original``, ``multa``
  modalidade 2 = percent, ``juros`` modalidade 3 = percent a month, calendar days),
  ``chave``, ``solicitacaoPagador``; the reply carries ``loc`` and ``pixCopiaECola``. A PSP
  refuses a second PUT on a txid it has: then the charge is read back (``GET /cobv/{txid}``)
  — one charge per txid, however often it is asked for.
- **Webhook**: the PSP calls ``POST {webhookUrl}/pix`` with ``{"pix": [{endToEndId, txid,
  valor, horario, devolucoes…}]}``. Banks authenticate that call with *their* client
  certificate (mTLS), which a TLS terminator checks; see ``mtls`` below.
- **Sweep**: ``GET /pix?inicio&fim&txIdPresente=true`` pages through what was received.

URL ``pix+https://api.psp.com.br/v2`` (``pix+http://`` for a local test server) with options:
``client_id_env``, ``client_secret_env`` (required), ``cert``/``key`` (our client
certificate files), ``ca`` (the PSP's CA, else the system's), ``token_url`` (default
``<origin>/oauth/token``), ``scope``, ``chave`` (the Pix key; default ``company.pix_key``),
``webhook_token_env`` (required: the secret path segment of the webhook URL registered with
the PSP), ``mtls`` = ``proxy`` (default: a TLS proxy verified the bank's certificate and says
so in ``verify_header`` from an address in ``proxies``), ``required`` (the request came over
Régua's own mTLS listener) or ``off`` (the token only: development).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from ipaddress import ip_address, ip_network
from typing import Any
from urllib.parse import quote

from dialer.errors import PaymentPermanent, PaymentRetryable
from dialer.rules.charges import Charge, ChargeRequest, ChargeStatus, EventKind, PaymentEvent, valid_txid
from dialer.rules.documents import document_kind
from payments.base import WebhookRefused, WebhookRequest
from payments.http import HttpRefused, ProviderHttp

_VALOR = re.compile(r"^\d{1,10}\.\d{2}$")
_E2E = re.compile(r"^[A-Za-z0-9]{1,35}$")
_STATUS = {
    "ATIVA": ChargeStatus.ACTIVE,
    "CONCLUIDA": ChargeStatus.PAID,
    "REMOVIDA_PELO_USUARIO_RECEBEDOR": ChargeStatus.REMOVED,
    "REMOVIDA_PELO_PSP": ChargeStatus.REMOVED,
}
MAX_PAGES = 500
MAX_ITEMS = 5000  # pix in one callback: far beyond what a PSP batches


def _amount(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def _rfc3339(at: datetime) -> str:
    """An RFC 3339 time in UTC, as ``GET /pix`` wants it (a naive time is taken as UTC)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _token_life(expires: object) -> float:
    """Seconds to keep a token that lives ``expires_in``: a minute less, or a tenth less when
    it lives under ten minutes (never longer than it lives)."""
    if isinstance(expires, str) and expires.strip().isdigit():
        expires = int(expires)
    if not isinstance(expires, (int, float)) or isinstance(expires, bool) or expires < 0:
        expires = 3600
    life = float(expires)
    return life - min(60.0, life / 10)


def parse_time(text: object) -> datetime:
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("horario is not an RFC 3339 time")
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("horario is not an RFC 3339 time") from None  # (not Python's own wording)
    if at.tzinfo is None:
        raise ValueError("horario has no offset")
    return at


def _valor(text: object) -> Decimal:
    if not isinstance(text, str) or not _VALOR.fullmatch(text):
        raise ValueError("valor must be like 123.45")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern rules it out
        raise ValueError("valor must be like 123.45") from None


def events_from_pix(items: object, provider: str = "pix") -> list[PaymentEvent]:
    """Payment and refund events from a list of ``Pix`` objects (the webhook's, ``GET /pix``'s
    and ``GET /cobv``'s). Raises ValueError naming what is wrong."""
    if not isinstance(items, list):
        raise ValueError("pix must be a list")
    if len(items) > MAX_ITEMS:
        raise ValueError(f"more than {MAX_ITEMS} pix in one request")
    out: list[PaymentEvent] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"pix[{n}] is not an object")
        e2e = item.get("endToEndId")
        if not isinstance(e2e, str) or not _E2E.fullmatch(e2e):
            raise ValueError(f"pix[{n}].endToEndId is missing or malformed")
        tx = item.get("txid")
        if tx not in (None, "") and (  # "": no txid, as some PSPs write it
            not isinstance(tx, str) or not tx.isascii() or not tx.isalnum() or len(tx) > 35
        ):
            raise ValueError(f"pix[{n}].txid is malformed")
        try:
            amount = _valor(item.get("valor"))
            at = parse_time(item.get("horario"))
        except ValueError as exc:
            raise ValueError(f"pix[{n}]: {exc}") from None
        if not tx:
            continue  # a Pix without a txid is not a payment of one of our charges
        out.append(PaymentEvent(f"pix:{e2e}", EventKind.PAID, provider, tx, amount, at, reference=e2e))
        refunds = item.get("devolucoes") or []
        if isinstance(refunds, dict):
            refunds = [refunds]  # one devolução as an object (the spec's own example has it so)
        if not isinstance(refunds, list):
            raise ValueError(f"pix[{n}].devolucoes must be a list")
        for m, dev in enumerate(refunds):
            if not isinstance(dev, dict) or not isinstance(dev.get("id"), str):
                raise ValueError(f"pix[{n}].devolucoes[{m}] is malformed")
            if dev.get("status") != "DEVOLVIDO":
                continue  # EM_PROCESSAMENTO / NAO_REALIZADO: no money has gone back
            horario: dict[str, Any] = dev["horario"] if isinstance(dev.get("horario"), dict) else {}
            try:
                back = _valor(dev.get("valor"))
                when = parse_time(horario.get("liquidacao") or horario.get("solicitacao"))
            except ValueError as exc:
                raise ValueError(f"pix[{n}].devolucoes[{m}]: {exc}") from None
            dev_id = str(dev["id"])[:35]
            out.append(
                PaymentEvent(
                    f"pix:{e2e}:dev:{dev_id}", EventKind.REFUND, provider, tx, back, when, reference=e2e
                )
            )
    return out


class PixApiProvider:
    name = "pix"
    sandbox = False
    needs_document = True
    makes_charges = True
    can_list = True

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        chave: str,
        webhook_token: str,
        http: ProviderHttp,
        scope: str = "",
        mtls: str = "proxy",
        verify_header: str = "X-SSL-Client-Verify",
        proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url
        self.scope = scope
        self.chave = chave
        self.webhook_token = webhook_token
        self.http = http
        self.mtls = mtls
        self.verify_header = verify_header
        self.proxies = tuple(ip_network(p, strict=False) for p in proxies)
        self.clock = clock
        self._token = ""
        self._token_until = 0.0
        self._token_lock = asyncio.Lock()
        self.tokens_fetched = 0
        self._basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        http.add_secret(self._basic, lasting=True)  # a PSP that echoes our Authorization header

    # ---------------------------------------------------------------- OAuth2

    async def _bearer(self, *, stale: str = "") -> str:
        """The current token; a new one when there is none, it is about to lapse, or it is
        ``stale`` (the API refused it). Concurrent callers share one fetch."""
        async with self._token_lock:
            if self._token and self._token != stale and self.clock() < self._token_until:
                return self._token
            form = {"grant_type": "client_credentials"}
            if self.scope:
                form["scope"] = self.scope
            reply = await self.http.request(
                "POST",
                self.token_url,
                data=form,
                headers={"Authorization": f"Basic {self._basic}"},
                retry=True,  # asking for a token twice moves no money
            )
            doc = reply.json()
            if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
                raise PaymentRetryable("pix: the token endpoint answered without an access_token")
            self._token = doc["access_token"]
            self.http.add_secret(self._token)
            self._token_until = self.clock() + _token_life(doc.get("expires_in", 3600))
            self.tokens_fetched += 1
            return self._token

    async def _api(self, method: str, path: str, **kw: Any) -> Any:
        token = await self._bearer()
        for last in (False, True):
            try:
                return await self.http.request(
                    method, self.base + path, headers={"Authorization": f"Bearer {token}"}, **kw
                )
            except HttpRefused as exc:
                if exc.status != 401 or last:
                    raise
                token = await self._bearer(stale=token)  # revoked or lapsed early: a new one
        raise AssertionError("unreachable")  # pragma: no cover

    # ---------------------------------------------------------------- charges

    def cobv_body(self, request: ChargeRequest) -> dict[str, Any]:
        if not request.document:
            raise PaymentPermanent(
                f"pix: account {request.account_id} has no CPF/CNPJ: a cobv needs the debtor's "
                "(add a document column to the campaign file)"
            )
        body: dict[str, Any] = {
            "calendario": {
                "dataDeVencimento": request.due_date.isoformat(),
                "validadeAposVencimento": request.valid_after_due_days,
            },
            "devedor": {document_kind(request.document): request.document, "nome": request.name[:200]},
            "valor": {"original": _amount(request.amount)},
            "chave": self.chave,
        }
        if request.description.strip():
            body["solicitacaoPagador"] = request.description[:140]
        if request.fine_percent > 0:
            body["valor"]["multa"] = {"modalidade": 2, "valorPerc": _amount(request.fine_percent)}
        if request.interest_percent_month > 0:
            body["valor"]["juros"] = {"modalidade": 3, "valorPerc": _amount(request.interest_percent_month)}
        return body

    async def create_charge(self, request: ChargeRequest) -> Charge:
        if not valid_txid(request.txid):
            raise PaymentPermanent("pix: txid must be 26 to 35 letters and digits")
        path = f"/cobv/{quote(request.txid)}"
        try:
            reply = await self._api("PUT", path, json_body=self.cobv_body(request), ok=(200, 201))
        except HttpRefused as exc:
            if exc.status not in (400, 409):
                raise
            existing = await self.fetch_charge(request.txid)  # made before (a retry, a reload)
            if existing is None:
                raise
            return existing
        return self._charge(reply.json(), request.txid)

    async def fetch_charge(self, txid: str) -> Charge | None:
        reply = await self._api("GET", f"/cobv/{quote(txid)}", missing_ok=True)
        if reply.status == 404:
            return None
        return self._charge(reply.json(), txid)

    def _charge(self, doc: Any, txid: str) -> Charge:
        if not isinstance(doc, dict):
            raise PaymentRetryable("pix: the PSP answered with something that is not a cobv")
        try:
            amount = Decimal(str((doc.get("valor") or {}).get("original")))
            due = datetime.fromisoformat(str((doc.get("calendario") or {}).get("dataDeVencimento"))).date()
        except (InvalidOperation, ValueError):
            raise PaymentRetryable("pix: the cobv has no valor.original or dataDeVencimento") from None
        loc: dict[str, Any] = doc["loc"] if isinstance(doc.get("loc"), dict) else {}
        try:
            payments = tuple(events_from_pix(doc.get("pix") or [], self.name))
        except ValueError as exc:
            raise PaymentRetryable(f"pix: the cobv's pix list is malformed ({exc})") from None
        return Charge(
            txid=txid,
            provider=self.name,
            status=_STATUS.get(str(doc.get("status")), ChargeStatus.ACTIVE),
            amount=amount,
            due_date=due,
            provider_id=str(loc.get("id", "")),
            copy_paste=str(doc.get("pixCopiaECola") or ""),
            location=str(loc.get("location") or doc.get("location") or ""),
            payments=payments,
        )

    async def received_since(self, start: datetime, end: datetime) -> list[PaymentEvent]:
        out: list[PaymentEvent] = []
        for page in range(MAX_PAGES):
            query = (
                f"/pix?inicio={quote(_rfc3339(start))}&fim={quote(_rfc3339(end))}&txIdPresente=true"
                f"&paginacao.paginaAtual={page}&paginacao.itensPorPagina=100"
            )
            doc = (await self._api("GET", query)).json()
            if not isinstance(doc, dict):
                raise PaymentRetryable("pix: GET /pix answered with something that is not a list of pix")
            try:
                out += events_from_pix(doc.get("pix") or [], self.name)
            except ValueError as exc:
                raise PaymentRetryable(f"pix: GET /pix: {exc}") from None
            pages = ((doc.get("parametros") or {}).get("paginacao") or {}).get("quantidadeDePaginas", 1)
            if not isinstance(pages, int) or page + 1 >= pages:
                break
        return out

    async def register_webhook(self, webhook_url: str) -> None:
        """``PUT /webhook/{chave}``: tell the PSP where to call (the URL carries the token)."""
        await self._api(
            "PUT", f"/webhook/{quote(self.chave)}", json_body={"webhookUrl": webhook_url}, ok=(200, 201, 204)
        )

    # ---------------------------------------------------------------- webhooks

    def authenticate(self, request: WebhookRequest) -> None:
        # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a 401)
        if not request.path_token or not hmac.compare_digest(
            request.path_token.encode(), self.webhook_token.encode()
        ):
            raise WebhookRefused(401, "unknown webhook URL", "pix webhook: wrong path token")
        if self.mtls == "required" and not request.client_cert_verified:
            raise WebhookRefused(
                403, "a client certificate is required", "pix webhook: no verified client certificate"
            )
        if self.mtls == "proxy":
            try:
                peer = ip_address(request.peer)
            except ValueError:
                raise WebhookRefused(
                    403, "not from the TLS proxy", "pix webhook: peer address unreadable"
                ) from None
            if not any(peer in net for net in self.proxies):
                raise WebhookRefused(
                    403, "not from the TLS proxy", f"pix webhook: from {peer}, not a trusted proxy"
                )
            if request.headers.get(self.verify_header, "") != "SUCCESS":
                raise WebhookRefused(
                    403,
                    "the client certificate was not verified",
                    "pix webhook: the proxy did not verify a certificate",
                )

    def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        try:
            doc = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRefused(400, "the body is not JSON") from None
        if not isinstance(doc, dict) or "pix" not in doc:
            raise WebhookRefused(400, 'the body must be {"pix": [...]}')
        try:
            return events_from_pix(doc["pix"], self.name)
        except ValueError as exc:
            raise WebhookRefused(400, str(exc)) from None

    def health(self) -> dict[str, object]:
        return {
            "provider": self.name,
            "requests": self.http.requests,
            "retries": self.http.retries,
            "tokens": self.tokens_fetched,
            "last_error": self.http.last_error,
        }

    async def close(self) -> None:
        await self.http.close()

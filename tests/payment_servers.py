"""Local servers shaped like each payment provider's documented API, for the adapter tests.

- ``PixApiServer``: the Banco Central's Pix API (v2 OpenAPI) as a PSP serves it. ``POST
  /oauth/token`` (client credentials, HTTP Basic), ``PUT``/``GET /cobv/{txid}`` (the body
  checked as ``CobVSolicitada`` requires; a second PUT on a txid refused with 400
  problem+json, as PSPs do), ``GET /pix`` (paginated by ``paginacao.*``), ``PUT
  /webhook/{chave}``; the PSP's callback ``POST {webhookUrl}/pix`` when a Pix is paid or
  refunded. Optionally over TLS that requires a client certificate (``tls``), and calling
  the webhook with the PSP's own certificate (``webhook_ssl``).
- ``AsaasServer``: Asaas v3. ``/customers``, ``/payments`` (a POST makes a new payment every
  time: Asaas is not idempotent), ``/payments/{id}``, ``/pixQrCode``,
  ``/identificationField``; the ``access_token`` header checked; validation errors as 400
  ``{"errors": [{"code", "description"}]}``; webhooks with ``asaas-access-token``.
- ``WebhookSink``: Régua's side of a webhook, recording each delivery (and whether the
  caller showed a verified client certificate) and answering what the test says.

Every provider server records each request (``Recorded``: method, path, query, headers,
body, the status answered) and takes scripted faults, the next matching requests first:
``fail_next(status, times, retry_after)``, ``delay_next(seconds, times)`` (a late answer:
timeouts), ``commit_then_drop(times)`` (the work is done, then the connection is closed
without an answer: what a worker killed after its request reached the provider sees on
retry). ``drop_webhooks = True`` records payments but calls no webhook. A fault's ``match``
(a substring of ``"METHOD /path"``) limits it to some requests.

The servers share no code with the adapters (the BR Code's CRC is computed here on its own)
so each checks the other.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import secrets
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from payments.base import WebhookRequest

BRT = ZoneInfo("America/Sao_Paulo")
_VALOR = re.compile(r"^\d{1,10}\.\d{2}$")
_TXID = re.compile(r"^[a-zA-Z0-9]{26,35}$")
_CPF = re.compile(r"^\d{11}$")
_CNPJ = re.compile(r"^[0-9A-Z]{14}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PIX_ERROR = "https://pix.bcb.gov.br/api/v2/error/"


# ---------------------------------------------------------------- BR Code (EMV), independently


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), table-free, as the BR Code manual has it."""
    crc = 0xFFFF
    for byte in data:
        x = ((crc >> 8) ^ byte) & 0xFF
        x ^= x >> 4
        crc = ((crc << 8) ^ (x << 12) ^ (x << 5) ^ x) & 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def dynamic_brcode(location: str, merchant: str, city: str) -> str:
    """A dynamic BR Code ("copia e cola") pointing at a payload ``location`` (no amount: the
    payer's app reads the cobv there)."""
    account = _tlv("00", "br.gov.bcb.pix") + _tlv("25", location)
    payload = (
        _tlv("00", "01")
        + _tlv("01", "12")
        + _tlv("26", account)
        + _tlv("52", "0000")
        + _tlv("53", "986")
        + _tlv("58", "BR")
        + _tlv("59", merchant[:25])
        + _tlv("60", city[:15])
        + _tlv("62", _tlv("05", "***"))
        + "6304"
    )
    return payload + f"{crc16_ccitt(payload.encode()):04X}"


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(value: Decimal | str | float | int) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.01'))}"


# ---------------------------------------------------------------- recording and faults


def _peer_subject(request: web.Request) -> str:
    """The subject of the client certificate the peer showed over TLS ("" if none)."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    return ", ".join(f"{k}={v}" for rdn in (cert or {}).get("subject", ()) for k, v in rdn)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    status: int = 0  # what was answered (0: nothing: dropped)
    at: float = field(default_factory=time.monotonic)  # when it arrived
    client_cert: str = ""  # the subject of the client certificate shown (mutual TLS)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class Fault:
    kind: str  # "status", "delay", "hang" or "drop"
    times: int
    match: str = ""
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0
    body: Any = None


@dataclass
class Delivered:
    """A webhook a provider server sent (``status`` 0: it could not be delivered)."""

    url: str
    body: Any
    status: int


class ProviderServer:
    """An aiohttp app on 127.0.0.1 (a free port, in the test's own event loop) that records
    every request and plays scripted faults before the provider's own handling."""

    def __init__(
        self, *, tls: ssl.SSLContext | None = None, webhook_ssl: ssl.SSLContext | None = None
    ) -> None:
        self.app = web.Application(middlewares=[self._middleware])
        self.tls = tls
        self.webhook_ssl = webhook_ssl
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.deliveries: list[Delivered] = []
        self.drop_webhooks = False
        self.echo_credentials = False  # fault answers quote the request's credentials (a leaky provider)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._closing: asyncio.Event | None = None

    # -------------------------------------------------------- lifecycle

    async def start(self) -> str:
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.url

    async def close(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # -------------------------------------------------------- faults

    def fail_next(
        self, status: int, times: int = 1, retry_after: float | str | None = None, *, match: str = ""
    ) -> None:
        """The next ``times`` matching requests are answered ``status`` (the provider's own
        error body) without being handled; ``Retry-After`` when given."""
        after = None if retry_after is None else str(retry_after)
        self.faults.append(Fault("status", times, match, status=status, retry_after=after))

    def delay_next(self, seconds: float, times: int = 1, *, match: str = "") -> None:
        """The next ``times`` matching requests are handled ``seconds`` late."""
        self.faults.append(Fault("delay", times, match, seconds=seconds))

    def commit_then_drop(self, times: int = 1, *, match: str = "") -> None:
        """The next ``times`` matching requests are handled (the cobv or payment is made),
        then the connection is closed without an answer."""
        self.faults.append(Fault("drop", times, match))

    def commit_then_hang(self, seconds: float, times: int = 1, *, match: str = "") -> None:
        """The next ``times`` matching requests are handled (the charge is made), then
        answered ``seconds`` late: a client killed meanwhile never learns it was made."""
        self.faults.append(Fault("hang", times, match, seconds=seconds))

    def _take(self, key: str) -> Fault | None:
        for fault in self.faults:
            if fault.match in key:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def fault_response(self, fault: Fault, request: web.Request) -> web.Response:  # per provider
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        return web.Response(status=fault.status, text="trouble", headers=headers)

    def echo(self, request: web.Request) -> str:
        """What a careless provider puts in its error text: the credentials it was sent."""
        if not self.echo_credentials:
            return ""
        seen = [request.headers.get(h, "") for h in ("Authorization", "access_token")]
        return " (request: " + " / ".join(v for v in seen if v) + ")"

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(request.method, request.path, dict(request.query), CIMultiDict(request.headers), body)
        rec.client_cert = _peer_subject(request)
        self.requests.append(rec)
        fault = self._take(f"{request.method} {request.path}")
        if fault is not None and fault.kind == "status":
            response = self.fault_response(fault, request)
            rec.status = response.status
            return response
        if fault is not None and fault.kind == "delay":
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            rec.status = exc.status
            raise
        if fault is not None and fault.kind == "hang":
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
        if fault is not None and fault.kind == "drop":
            assert request.transport is not None
            request.transport.abort()  # done, and never answered
            raise asyncio.CancelledError
        rec.status = response.status
        return response

    # -------------------------------------------------------- webhooks out

    async def deliver(self, url: str, payload: Any, headers: dict[str, str] | None = None) -> int:
        """POST ``payload`` to ``url`` as the provider does; the status (0: no answer)."""
        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.webhook_ssl or True),
                timeout=aiohttp.ClientTimeout(total=5),
            )
        try:
            async with self._client.post(url, json=payload, headers=headers or {}) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.deliveries.append(Delivered(url, payload, status))
        return status

    def seen(self, method: str, path_part: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]


# ---------------------------------------------------------------- the Pix API (a PSP)


def problem(
    status: int, kind: str, title: str, detail: str = "", violacoes: list[dict[str, str]] | None = None
):
    """An RFC 7807 ``Problema`` as the Pix API answers it."""
    doc: dict[str, Any] = {"type": PIX_ERROR + kind, "title": title, "status": status}
    if detail:
        doc["detail"] = detail
    if violacoes:
        doc["violacoes"] = violacoes
    doc["correlationId"] = uuid.uuid4().hex
    return web.json_response(doc, status=status, content_type="application/problem+json")


def _violation(prop: str, reason: str, value: Any = None) -> dict[str, str]:
    out = {"razao": reason, "propriedade": prop}
    if isinstance(value, str):
        out["valor"] = value[:60]
    return out


def validate_cobv(txid: str, body: Any, chaves: set[str]) -> list[dict[str, str]]:
    """The violations of a ``PUT /cobv/{txid}`` body against ``CobVSolicitada``."""
    out: list[dict[str, str]] = []
    if not _TXID.fullmatch(txid):
        out.append(_violation("cobv.txid", "O txid deve ter de 26 a 35 caracteres [a-zA-Z0-9].", txid))
    if not isinstance(body, dict):
        return [*out, _violation("cobv", "O corpo da requisição não é um objeto JSON.")]
    cal = body.get("calendario")
    if not isinstance(cal, dict):
        out.append(_violation("cobv.calendario", "O objeto cobv.calendario é obrigatório."))
    else:
        due = cal.get("dataDeVencimento")
        try:
            ok = isinstance(due, str) and bool(_DATE.fullmatch(due)) and bool(date.fromisoformat(due))
        except ValueError:
            ok = False
        if not ok:
            out.append(
                _violation(
                    "cobv.calendario.dataDeVencimento", "Deve ser uma data no formato YYYY-MM-DD.", due
                )
            )
        valid = cal.get("validadeAposVencimento")
        if valid is not None and (not isinstance(valid, int) or isinstance(valid, bool) or valid < 0):
            out.append(
                _violation("cobv.calendario.validadeAposVencimento", "Deve ser um inteiro não negativo.")
            )
    dev = body.get("devedor")
    if not isinstance(dev, dict):
        out.append(_violation("cobv.devedor", "O objeto cobv.devedor não respeita o _schema_."))
    else:
        has_cpf, has_cnpj = "cpf" in dev, "cnpj" in dev
        if has_cpf == has_cnpj:
            out.append(_violation("cobv.devedor", "Informe cpf ou cnpj do devedor (um dos dois)."))
        elif has_cpf and not (isinstance(dev["cpf"], str) and _CPF.fullmatch(dev["cpf"])):
            out.append(_violation("cobv.devedor.cpf", "O CPF deve ter 11 dígitos.", dev["cpf"]))
        elif has_cnpj and not (isinstance(dev["cnpj"], str) and _CNPJ.fullmatch(dev["cnpj"])):
            out.append(
                _violation("cobv.devedor.cnpj", "O CNPJ deve ter 14 caracteres [0-9A-Z].", dev["cnpj"])
            )
        nome = dev.get("nome")
        if not isinstance(nome, str) or not nome.strip() or len(nome) > 200:
            out.append(_violation("cobv.devedor.nome", "O nome do devedor é obrigatório (até 200)."))
    valor = body.get("valor")
    if not isinstance(valor, dict):
        out.append(_violation("cobv.valor", "O objeto cobv.valor é obrigatório."))
    else:
        original = valor.get("original")
        if not (isinstance(original, str) and _VALOR.fullmatch(original)):
            out.append(
                _violation("cobv.valor.original", "Deve respeitar o padrão \\d{1,10}\\.\\d{2}.", original)
            )
        elif Decimal(original) <= 0:
            out.append(_violation("cobv.valor.original", "Valor da cobrança não pode ser 0.00", original))
        for name, top in (("multa", 2), ("juros", 8), ("abatimento", 2)):
            part = valor.get(name)
            if part is None:
                continue
            prop = f"cobv.valor.{name}"
            if not isinstance(part, dict):
                out.append(_violation(prop, f"O objeto {prop} não respeita o _schema_."))
                continue
            modalidade = part.get("modalidade")
            if not isinstance(modalidade, int) or isinstance(modalidade, bool) or not 1 <= modalidade <= top:
                out.append(_violation(f"{prop}.modalidade", f"A modalidade deve ser de 1 a {top}."))
            perc = part.get("valorPerc")
            if not (isinstance(perc, str) and _VALOR.fullmatch(perc)):
                out.append(
                    _violation(f"{prop}.valorPerc", "Deve respeitar o padrão \\d{1,10}\\.\\d{2}.", perc)
                )
    chave = body.get("chave")
    if not isinstance(chave, str) or not 1 <= len(chave) <= 77:
        out.append(_violation("cobv.chave", "A chave é obrigatória (até 77 caracteres)."))
    elif chave not in chaves:
        out.append(_violation("cobv.chave", "A chave não pertence ao usuário recebedor.", chave))
    sol = body.get("solicitacaoPagador")
    if sol is not None and (not isinstance(sol, str) or len(sol) > 140):
        out.append(_violation("cobv.solicitacaoPagador", "Até 140 caracteres."))
    return out


class PixApiServer(ProviderServer):
    """A PSP's Pix API. ``api_url`` is the base the adapter is given (``pix+http(s)://…``)."""

    def __init__(
        self,
        *,
        client_id: str = "regua-client",
        client_secret: str = "pix-client-secret",
        chave: str = "cobranca@empresa.example",
        base: str = "/v2",
        expires_in: int = 3600,
        tls: ssl.SSLContext | None = None,
        webhook_ssl: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        duplicate_status: int = 400,
        ispb: str = "12345678",
    ) -> None:
        super().__init__(tls=tls, webhook_ssl=webhook_ssl)
        self.client_id = client_id
        self.client_secret = client_secret
        self.chaves = {chave}
        self.base = base
        self.expires_in = expires_in
        self.clock = clock
        self.duplicate_status = duplicate_status
        self.ispb = ispb
        self.tokens: dict[str, float] = {}  # token -> when it lapses (self.clock)
        self.tokens_issued = 0
        self.cobvs: dict[str, dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []  # every Pix, in arrival order (GET /pix)
        self.webhook_urls: dict[str, str] = {}
        self._loc = 1000
        self._dev = 0
        r = self.app.router
        r.add_post("/oauth/token", self.token)
        r.add_put(base + "/cobv/{txid}", self.put_cobv)
        r.add_get(base + "/cobv/{txid}", self.get_cobv)
        r.add_get(base + "/pix", self.list_pix)
        r.add_put(base + "/webhook/{chave}", self.put_webhook)
        r.add_get(base + "/webhook/{chave}", self.get_webhook)

    @property
    def api_url(self) -> str:
        return self.url + self.base

    @property
    def cobv_count(self) -> int:
        return len(self.cobvs)

    @property
    def puts(self) -> list[Recorded]:
        """Every ``PUT /cobv/…`` that reached the server."""
        return [r for r in self.requests if r.method == "PUT" and "/cobv/" in r.path]

    @property
    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/oauth/token"]

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (the API answers 401)."""
        self.tokens.clear()

    def fault_response(self, fault: Fault, request: web.Request) -> web.Response:
        titles = {429: "Muitas requisições", 500: "Erro interno", 503: "Serviço Indisponível"}
        response = problem(
            fault.status,
            "ServicoIndisponivel" if fault.status >= 500 else "RequisicaoInvalida",
            titles.get(fault.status, "Erro"),
            ("Serviço não está disponível no momento." if fault.status >= 500 else "Recusada.")
            + self.echo(request),
        )
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    # -------------------------------------------------------- OAuth2

    async def token(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        user = password = ""
        if header.startswith("Basic "):
            with contextlib.suppress(ValueError, binascii.Error, UnicodeDecodeError):
                user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        if (user, password) != (self.client_id, self.client_secret):
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "Credenciais inválidas" + self.echo(request),
                },
                status=401,
            )
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + self.expires_in
        self.tokens_issued += 1
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": "cobv.write cobv.read pix.read webhook.write webhook.read",
            }
        )

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        until = self.tokens.get(token)
        if until is not None and self.clock() < until:
            return None
        response = problem(401, "NaoAutorizado", "Não autorizado", "O token de acesso é inválido ou expirou.")
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response

    # -------------------------------------------------------- cobv

    async def put_cobv(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        txid = request.match_info["txid"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        violacoes = validate_cobv(txid, body, self.chaves)
        if violacoes:
            return problem(
                400,
                "CobVOperacaoInvalida",
                "Cobrança inválida.",
                "A requisição que busca alterar ou criar uma cobrança com vencimento não respeita o "
                "_schema_ ou está semanticamente errada.",
                violacoes,
            )
        if txid in self.cobvs:
            return problem(
                self.duplicate_status,
                "CobVOperacaoInvalida",
                "Cobrança inválida.",
                "Já existe uma cobrança com o txid informado.",
                [_violation("cobv.txid", "O txid informado já foi utilizado em outra cobrança.", txid)],
            )
        now = datetime.now(UTC)
        self._loc += 1
        location = f"pix.psp.example/qr/v2/cobv/{uuid.uuid4().hex}"
        cal = body["calendario"]
        cobv: dict[str, Any] = {
            "calendario": {
                "criacao": _rfc3339(now),
                "dataDeVencimento": cal["dataDeVencimento"],
                "validadeAposVencimento": cal.get("validadeAposVencimento", 30),
            },
            "txid": txid,
            "revisao": 0,
            "loc": {"id": self._loc, "location": location, "tipoCob": "cobv", "criacao": _rfc3339(now)},
            "location": location,
            "status": "ATIVA",
            "devedor": body["devedor"],
            "recebedor": {
                "cnpj": "56989000019533",
                "nome": "Empresa de Cobrança SA",
                "logradouro": "Rua 15, 1200",
                "cidade": "São Paulo",
                "uf": "SP",
                "cep": "01310100",
            },
            "valor": body["valor"],
            "chave": body["chave"],
            "pixCopiaECola": dynamic_brcode(location, "EMPRESA DE COBRANCA SA", "SAO PAULO"),
        }
        if "solicitacaoPagador" in body:
            cobv["solicitacaoPagador"] = body["solicitacaoPagador"]
        self.cobvs[txid] = cobv
        return web.json_response(cobv, status=201)

    async def get_cobv(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        cobv = self.cobvs.get(request.match_info["txid"])
        if cobv is None:
            return problem(
                404, "CobVNaoEncontrada", "Cobrança não encontrada", "Não há cobrança com o txid informado."
            )
        return web.json_response(cobv)

    # -------------------------------------------------------- pix received

    async def list_pix(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        q = request.query
        violacoes = []
        bounds: list[datetime] = []
        for name in ("inicio", "fim"):
            try:
                at = datetime.fromisoformat(q.get(name, "").replace("Z", "+00:00"))
                if at.tzinfo is None:
                    raise ValueError
                bounds.append(at)
            except ValueError:
                violacoes.append(
                    _violation(name, "Obrigatório, no formato RFC 3339 (com fuso).", q.get(name))
                )
        try:
            page = int(q.get("paginacao.paginaAtual", "0"))
            per = int(q.get("paginacao.itensPorPagina", "100"))
            if page < 0 or not 1 <= per <= 1000:
                raise ValueError
        except ValueError:
            violacoes.append(_violation("paginacao", "paginaAtual ≥ 0 e itensPorPagina de 1 a 1000."))
            page, per = 0, 100
        if violacoes:
            return problem(400, "ParametroInvalido", "Parâmetros inválidos.", "", violacoes)
        start, end = bounds
        items = [
            p
            for p in self.received
            if start <= datetime.fromisoformat(p["horario"].replace("Z", "+00:00")) <= end
        ]
        if q.get("txIdPresente") == "true":
            items = [p for p in items if p.get("txid")]
        elif q.get("txIdPresente") == "false":
            items = [p for p in items if not p.get("txid")]
        if "txid" in q:
            items = [p for p in items if p.get("txid") == q["txid"]]
        pages = max(1, -(-len(items) // per))
        return web.json_response(
            {
                "parametros": {
                    "inicio": q["inicio"],
                    "fim": q["fim"],
                    "paginacao": {
                        "paginaAtual": page,
                        "itensPorPagina": per,
                        "quantidadeDePaginas": pages,
                        "quantidadeTotalDeItens": len(items),
                    },
                },
                "pix": items[page * per : (page + 1) * per],
            }
        )

    # -------------------------------------------------------- webhook configuration

    async def put_webhook(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        chave = request.match_info["chave"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        url = body.get("webhookUrl") if isinstance(body, dict) else None
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            return problem(
                400,
                "WebhookOperacaoInvalida",
                "Webhook inválido.",
                "",
                [_violation("webhookUrl", "Deve ser uma URL absoluta.", url)],
            )
        if chave not in self.chaves:
            return problem(404, "NaoEncontrado", "Chave não encontrada", "A chave não pertence ao recebedor.")
        self.webhook_urls[chave] = url
        return web.Response(status=200)

    async def get_webhook(self, request: web.Request) -> web.Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        chave = request.match_info["chave"]
        if chave not in self.webhook_urls:
            return problem(404, "NaoEncontrado", "Webhook não encontrado")
        return web.json_response({"webhookUrl": self.webhook_urls[chave], "chave": chave})

    # -------------------------------------------------------- the test's levers

    def _e2e(self, at: datetime, prefix: str = "E") -> str:
        tail = "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz0123456789") for _ in range(11))
        return f"{prefix}{self.ispb}{at.astimezone(UTC):%Y%m%d%H%M}{tail}"

    async def _callback(self, chave: str, items: list[dict[str, Any]]) -> None:
        url = self.webhook_urls.get(chave)
        if url and not self.drop_webhooks:
            await self.deliver(url + "/pix", {"pix": items})

    async def pay(
        self, txid: str, valor: Decimal | str | None = None, horario: datetime | str | None = None
    ) -> str:
        """A Pix paying the cobv ``txid`` (its whole amount unless ``valor``): recorded, the
        cobv CONCLUIDA when covered, and the webhook called. Returns the endToEndId."""
        cobv = self.cobvs[txid]
        at = datetime.now(UTC) if horario is None else horario
        when = at if isinstance(at, datetime) else datetime.fromisoformat(at.replace("Z", "+00:00"))
        amount = _money(valor if valor is not None else cobv["valor"]["original"])
        e2e = self._e2e(when)
        pix: dict[str, Any] = {
            "endToEndId": e2e,
            "txid": txid,
            "valor": amount,
            "componentesValor": {"original": {"valor": amount}},
            "chave": cobv["chave"],
            "horario": at if isinstance(at, str) else _rfc3339(when),
            "infoPagador": "pagamento da fatura",
        }
        cobv.setdefault("pix", []).append(pix)
        self.received.append(pix)
        paid = sum(Decimal(p["valor"]) for p in cobv["pix"])
        if paid >= Decimal(cobv["valor"]["original"]):
            cobv["status"] = "CONCLUIDA"
        await self._callback(cobv["chave"], [pix])
        return e2e

    def receive_untagged(self, valor: str = "10.00", horario: datetime | None = None) -> str:
        """A Pix sent to the key without a txid (not a charge's): listed by GET /pix only."""
        when = horario or datetime.now(UTC)
        e2e = self._e2e(when)
        self.received.append(
            {"endToEndId": e2e, "valor": valor, "chave": next(iter(self.chaves)), "horario": _rfc3339(when)}
        )
        return e2e

    async def refund(self, e2e: str, valor: Decimal | str | None = None) -> str:
        """A devolução of (part of) the Pix ``e2e``, DEVOLVIDO; the webhook called again."""
        pix = next(p for p in self.received if p["endToEndId"] == e2e)
        self._dev += 1
        now = datetime.now(UTC)
        dev_id = f"D{self._dev:04d}"
        pix.setdefault("devolucoes", []).append(
            {
                "id": dev_id,
                "rtrId": self._e2e(now, "D"),
                "valor": _money(valor if valor is not None else pix["valor"]),
                "horario": {"solicitacao": _rfc3339(now), "liquidacao": _rfc3339(now)},
                "status": "DEVOLVIDO",
            }
        )
        if pix.get("txid"):
            await self._callback(pix["chave"], [pix])
        return dev_id


# ---------------------------------------------------------------- Asaas


def asaas_errors(status: int, *errors: tuple[str, str]) -> web.Response:
    return web.json_response(
        {"errors": [{"code": code, "description": text} for code, text in errors]}, status=status
    )


class AsaasServer(ProviderServer):
    """Asaas v3 at ``api_url`` (``…/v3``)."""

    BILLING = frozenset({"UNDEFINED", "BOLETO", "CREDIT_CARD", "PIX"})

    def __init__(
        self,
        *,
        api_key: str = "$aact_test_api_key",
        webhook_token: str = "asaas-webhook-token",
        webhook_url: str = "",
        base: str = "/v3",
        today: date = date(2026, 11, 23),
    ) -> None:
        super().__init__()
        self.today = today  # the day Asaas compares due dates with (fixed: no test reads the wall clock)
        self.api_key = api_key
        self.webhook_token = webhook_token
        self.webhook_url = webhook_url
        self.base = base
        self.customers: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.payments_created = 0
        self.customers_created = 0
        self._serial = 0
        r = self.app.router
        r.add_get(base + "/customers", self.list_customers)
        r.add_post(base + "/customers", self.create_customer)
        r.add_get(base + "/payments", self.list_payments)
        r.add_post(base + "/payments", self.create_payment)
        r.add_get(base + "/payments/{id}", self.get_payment)
        r.add_get(base + "/payments/{id}/pixQrCode", self.pix_qr_code)
        r.add_get(base + "/payments/{id}/identificationField", self.identification_field)

    @property
    def api_url(self) -> str:
        return self.url + self.base

    def fault_response(self, fault: Fault, request: web.Request) -> web.Response:
        text = {429: "Limite de requisições excedido."}.get(fault.status, "Erro interno no servidor.")
        response = asaas_errors(fault.status, ("error", text + self.echo(request)))
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("access_token") == self.api_key:
            return None
        return asaas_errors(401, ("invalid_access_token", "A chave de API fornecida é inválida"))

    def _id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}_{self._serial:012d}"

    @staticmethod
    def _page(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        try:
            offset = max(0, int(request.query.get("offset", "0")))
            limit = min(100, max(1, int(request.query.get("limit", "10"))))
        except ValueError:
            return asaas_errors(400, ("invalid_parameter", "offset e limit devem ser números."))
        return web.json_response(
            {
                "object": "list",
                "hasMore": offset + limit < len(items),
                "totalCount": len(items),
                "limit": limit,
                "offset": offset,
                "data": items[offset : offset + limit],
            }
        )

    async def _json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    # -------------------------------------------------------- customers

    async def list_customers(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        items = [c for c in self.customers.values() if not c["deleted"]]
        if "cpfCnpj" in request.query:
            items = [c for c in items if c["cpfCnpj"] == request.query["cpfCnpj"]]
        return self._page(request, items)

    async def create_customer(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await self._json(request)
        if not isinstance(body, dict):
            return asaas_errors(400, ("invalid_object", "O corpo deve ser um objeto JSON."))
        errors = []
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            errors.append(("invalid_name", "O nome do cliente deve ser informado."))
        doc = body.get("cpfCnpj")
        if not isinstance(doc, str) or not re.fullmatch(r"\d{11}|[0-9A-Z]{12}\d{2}", doc):
            errors.append(("invalid_cpfCnpj", "O CPF/CNPJ informado é inválido."))
        if errors:
            return asaas_errors(400, *errors)
        customer = {
            "object": "customer",
            "id": self._id("cus"),
            "dateCreated": self.today.isoformat(),
            "name": body["name"],
            "email": body.get("email"),
            "cpfCnpj": doc,
            "personType": "FISICA" if len(doc) == 11 else "JURIDICA",
            "deleted": False,
            "notificationDisabled": bool(body.get("notificationDisabled", False)),
            "externalReference": body.get("externalReference"),
        }
        self.customers[customer["id"]] = customer
        self.customers_created += 1
        return web.json_response(customer)

    # -------------------------------------------------------- payments

    async def list_payments(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        q = request.query
        items = [p for p in self.payments.values() if not p["deleted"]]
        for name in ("customer", "billingType", "status", "externalReference"):
            if name in q:
                items = [p for p in items if p.get(name) == q[name]]
        if "paymentDate[ge]" in q:
            items = [p for p in items if p["paymentDate"] and p["paymentDate"] >= q["paymentDate[ge]"]]
        if "paymentDate[le]" in q:
            items = [p for p in items if p["paymentDate"] and p["paymentDate"] <= q["paymentDate[le]"]]
        return self._page(request, items)

    async def create_payment(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await self._json(request)
        if not isinstance(body, dict):
            return asaas_errors(400, ("invalid_object", "O corpo deve ser um objeto JSON."))
        errors = []
        if body.get("customer") not in self.customers:
            errors.append(("invalid_customer", "Cliente inválido ou não informado."))
        if body.get("billingType") not in self.BILLING:
            errors.append(("invalid_billingType", "Forma de pagamento inválida."))
        value = body.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            errors.append(("invalid_value", "O campo value deve ser informado"))
        due = body.get("dueDate")
        try:
            due_ok = isinstance(due, str) and date.fromisoformat(due) >= self.today
        except ValueError:
            due_ok = False
        if not due_ok:
            errors.append(("invalid_dueDate", "A data de vencimento não pode ser inferior à hoje"))
        fine = body.get("fine")
        if fine is not None and not (
            isinstance(fine, dict)
            and isinstance(fine.get("value"), (int, float))
            and fine.get("type", "PERCENTAGE") in ("FIXED", "PERCENTAGE")
        ):
            errors.append(("invalid_fine", "A multa informada é inválida."))
        interest = body.get("interest")
        if interest is not None and not (
            isinstance(interest, dict) and isinstance(interest.get("value"), (int, float))
        ):
            errors.append(("invalid_interest", "Os juros informados são inválidos."))
        if errors:
            return asaas_errors(400, *errors)
        pay_id = self._id("pay")
        payment: dict[str, Any] = {
            "object": "payment",
            "id": pay_id,
            "dateCreated": self.today.isoformat(),
            "customer": body["customer"],
            "dueDate": due,
            "originalDueDate": due,
            "value": value,
            "netValue": round(value * 0.99, 2),
            "description": body.get("description"),
            "billingType": body["billingType"],
            "status": "PENDING",
            "externalReference": body.get("externalReference"),
            "invoiceUrl": f"https://www.asaas.example/i/{pay_id[4:]}",
            "bankSlipUrl": f"https://www.asaas.example/b/pdf/{pay_id[4:]}"
            if body["billingType"] in ("BOLETO", "UNDEFINED")
            else None,
            "invoiceNumber": f"{self._serial:08d}",
            "nossoNumero": f"{self._serial:010d}",
            "fine": {"value": (fine or {}).get("value", 0)},
            "interest": {"value": (interest or {}).get("value", 0)},
            "deleted": False,
            "paymentDate": None,
            "clientPaymentDate": None,
            "confirmedDate": None,
            "pixTransaction": None,
        }
        self.payments[pay_id] = payment
        self.payments_created += 1
        return web.json_response(payment)

    def _payment(self, request: web.Request) -> dict[str, Any] | None:
        return self.payments.get(request.match_info["id"])

    async def get_payment(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        payment = self._payment(request)
        if payment is None:
            return web.json_response({"errors": []}, status=404)
        return web.json_response(payment)

    async def pix_qr_code(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        payment = self._payment(request)
        if payment is None:
            return web.json_response({"errors": []}, status=404)
        if payment["billingType"] == "CREDIT_CARD":
            return asaas_errors(400, ("invalid_action", "Esta cobrança não aceita Pix."))
        return web.json_response(
            {
                "encodedImage": base64.b64encode(b"\x89PNG\r\n\x1a\n" + payment["id"].encode()).decode(),
                "payload": self.pix_payload(payment["id"]),
                "expirationDate": f"{date.fromisoformat(payment['dueDate']) + timedelta(days=365)} 23:59:59",
            }
        )

    async def identification_field(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        payment = self._payment(request)
        if payment is None:
            return web.json_response({"errors": []}, status=404)
        if payment["billingType"] not in ("BOLETO", "UNDEFINED"):
            return asaas_errors(400, ("invalid_action", "Somente cobranças por boleto têm linha digitável."))
        line = self.boleto_line(payment["id"])
        return web.json_response(
            {"identificationField": line, "nossoNumero": payment["nossoNumero"], "barCode": line[:44]}
        )

    def pix_payload(self, payment_id: str) -> str:
        """The payment's dynamic Pix code (``pixQrCode.payload``)."""
        location = f"pix.asaas.example/qr/cobv/{uuid.uuid5(uuid.NAMESPACE_URL, payment_id).hex}"
        return dynamic_brcode(location, "EMPRESA DE COBRANCA", "SAO PAULO")

    def boleto_line(self, payment_id: str) -> str:
        """The boleto's digitable line (``identificationField``): 47 digits."""
        return "46191" + f"{int(self.payments[payment_id]['nossoNumero']):042d}"

    # -------------------------------------------------------- the test's levers

    def by_reference(self, external_reference: str) -> dict[str, Any]:
        return next(
            p
            for p in reversed(self.payments.values())
            if p["externalReference"] == external_reference and not p["deleted"]
        )

    async def _event(self, event: str, payment: dict[str, Any]) -> None:
        if self.drop_webhooks or not self.webhook_url:
            return
        self._serial += 1
        body = {
            "id": f"evt_{secrets.token_hex(16)}&{self._serial}",
            "event": event,
            "dateCreated": datetime.now(BRT).strftime("%Y-%m-%d %H:%M:%S"),
            "payment": dict(payment),
        }
        await self.deliver(self.webhook_url, body, {"asaas-access-token": self.webhook_token})

    async def pay(self, external_reference: str, value: Decimal | float | None = None) -> str:
        """The payment with this ``externalReference`` paid (its value unless ``value``):
        ``PAYMENT_CONFIRMED`` then ``PAYMENT_RECEIVED`` sent to ``webhook_url``. Returns its id."""
        payment = self.by_reference(external_reference)
        today = datetime.now(BRT).date().isoformat()
        if value is not None:
            payment["value"] = float(value)
        payment.update(confirmedDate=today, paymentDate=today, clientPaymentDate=today, status="CONFIRMED")
        await self._event("PAYMENT_CONFIRMED", payment)
        payment["status"] = "RECEIVED"
        await self._event("PAYMENT_RECEIVED", payment)
        return str(payment["id"])

    async def refund(self, payment_id: str) -> None:
        """The payment given back: ``PAYMENT_REFUNDED``."""
        payment = self.payments[payment_id]
        payment["status"] = "REFUNDED"
        payment["refundedDate"] = datetime.now(BRT).date().isoformat()
        await self._event("PAYMENT_REFUNDED", payment)

    def delete(self, payment_id: str) -> None:
        self.payments[payment_id]["deleted"] = True


# ---------------------------------------------------------------- Régua's side


@dataclass
class Delivery:
    """A webhook as it reached Régua's listener."""

    path: str
    headers: CIMultiDict[str]
    body: bytes
    peer: str
    cert_verified: bool
    cert_subject: str
    status: int = 0

    def webhook_request(self, path_token: str = "") -> WebhookRequest:
        return WebhookRequest(
            self.headers, self.body, path_token, self.peer, self.cert_verified, self.cert_subject
        )


@dataclass
class WebhookSink:
    """A listener standing in for Régua's webhook routes. ``respond`` (when set) decides the
    status of each delivery (the adapter's authenticate and parse run there); else 200."""

    respond: Callable[[Delivery], int] | None = None
    tls: ssl.SSLContext | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls).start()
        self.port = self._runner.addresses[0][1]
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _receive(self, request: web.Request) -> web.Response:
        subject = _peer_subject(request)
        delivery = Delivery(
            request.path,
            CIMultiDict(request.headers),
            await request.read(),
            request.remote or "",
            bool(subject),
            subject,
        )
        delivery.status = self.respond(delivery) if self.respond is not None else 200
        self.deliveries.append(delivery)
        return web.json_response({"ok": delivery.status < 300}, status=delivery.status)

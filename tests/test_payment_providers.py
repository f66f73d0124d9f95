"""The payment adapters against local servers shaped like each provider's documented API.

The Pix API adapter (OAuth2, mutual TLS, ``PUT``/``GET /cobv``, ``GET /pix``, the PSP's
callback) and the Asaas adapter (customers, payments, Pix code and boleto line, webhooks)
are built by the factory from their URLs and run against ``tests.payment_servers``; the
webhook checks of every adapter (Pix, Asaas, signed) run on the bytes a provider sends; the
factory's own refusals close the file. Bad inputs are tables.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
import trustme

from dialer.domain import PaymentMethod
from dialer.errors import ConfigError, PaymentError, PaymentPermanent, PaymentRetryable
from dialer.formats.pix import parse as parse_brcode
from dialer.rules.charges import ChargeRequest, ChargeStatus, EventKind, PaymentEvent, txid
from dialer.rules.documents import with_check_digits
from payments.asaas import AsaasProvider
from payments.base import PaymentProvider, WebhookRefused, WebhookRequest
from payments.factory import provider_from_url
from payments.http import ProviderHttp
from payments.pix_api import PixApiProvider
from payments.sandbox import SandboxPayments
from payments.signed import HEADER, SignedWebhookProvider, sign
from tests.payment_servers import AsaasServer, Delivery, PixApiServer, WebhookSink

ENV = {
    "PIX_ID": "regua-client-id",
    "PIX_SECRET": "pix-client-secret-8f2a71",
    "PIX_HOOK": "pix-hook-token-77c1d0",
    "ASAAS_KEY": "$aact_asaas-api-key-31d9e",
    "ASAAS_HOOK": "asaas-hook-token-9e40b2",
    "SIGNED": "signed-secret-0123456789abcdef",
    "SIGNED_OLD": "signed-old-secret-fedcba9876543210",
}
CHAVE = "cobranca@empresa.example"
CPF = with_check_digits("529982247")
CNPJ = with_check_digits("112223330001")
CNPJ_ALNUM = "12ABC34501DE35"  # the Receita's alphanumeric CNPJ (from July 2026)
SECRET = b"test-service-secret"
TODAY = date(2026, 11, 23)  # the AsaasServer's today too: no test reads the wall clock


def request_for(
    account: str = "ACC-1",
    *,
    document: str | None = CPF,
    amount: str = "150.00",
    method: PaymentMethod = PaymentMethod.BOLETO,
    fine: str = "2",
    interest: str = "1",
    name: str = "Maria Silva",
    due: date | None = None,
) -> ChargeRequest:
    due = due or TODAY + timedelta(days=3)
    return ChargeRequest(
        txid=txid(SECRET, account, Decimal(amount), due),
        account_id=account,
        name=name,
        document=document,
        amount=Decimal(amount),
        due_date=due,
        valid_after_due_days=30,
        fine_percent=Decimal(fine),
        interest_percent_month=Decimal(interest),
        method=method,
        description="Empresa: pagamento",
    )


P = TypeVar("P", PixApiProvider, AsaasProvider)


def fast(provider: P) -> P:
    """Retries of the provider's HTTP a hundred times quicker than in production."""
    http: ProviderHttp = provider.http
    http.base_delay = 0.005
    return provider


def error_text(exc: BaseException) -> str:
    return f"{exc} {exc!r}"


class Clock:
    """A monotonic clock the test moves (shared by the PSP and the adapter)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- certificates (trustme)


@dataclass
class Pki:
    ca: trustme.CA
    ca_file: str
    server: trustme.LeafCert  # the PSP's API and Régua's listener: 127.0.0.1
    ours_file: str  # Régua's client certificate and key, one PEM
    ours_cert: str
    ours_key: str
    psp: trustme.LeafCert  # the PSP's own client certificate (its webhook calls)

    def server_context(self, client: ssl.VerifyMode = ssl.CERT_REQUIRED) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        self.ca.configure_trust(context)
        context.verify_mode = client
        return context

    def psp_client_context(self, with_cert: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_cert:
            self.psp.configure_cert(context)
        return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA(organization_name="Regua test CA")
    ours = ca.issue_cert("regua@empresa.example", common_name="regua-client")
    files = {
        "ca": folder / "ca.pem",
        "ours": folder / "ours.pem",
        "cert": folder / "ours.crt",
        "key": folder / "ours.key",
    }
    ca.cert_pem.write_to_path(files["ca"])
    ours.private_key_and_cert_chain_pem.write_to_path(files["ours"])
    ours.cert_chain_pems[0].write_to_path(files["cert"])
    ours.private_key_pem.write_to_path(files["key"])
    return Pki(
        ca,
        str(files["ca"]),
        ca.issue_cert("127.0.0.1", "localhost"),
        str(files["ours"]),
        str(files["cert"]),
        str(files["key"]),
        ca.issue_cert("psp@psp.example", common_name="psp-webhooks"),
    )


# ---------------------------------------------------------------- the Pix API: fixtures


def pix_url(server: PixApiServer, **options: str) -> str:
    scheme, rest = server.api_url.split("://", 1)
    opts = {
        "client_id_env": "PIX_ID",
        "client_secret_env": "PIX_SECRET",
        "webhook_token_env": "PIX_HOOK",
        "chave": CHAVE,
        "mtls": "off",
        "timeout": "2",
        "attempts": "3",
        **options,
    }
    return f"pix+{scheme}://{rest}?{urlencode(opts)}"


def make_pix(server: PixApiServer, **options: str) -> PixApiProvider:
    provider = provider_from_url(pix_url(server, **options), env=ENV)
    assert isinstance(provider, PixApiProvider)
    return fast(provider)


def pix_server(**kw: Any) -> PixApiServer:
    return PixApiServer(client_id=ENV["PIX_ID"], client_secret=ENV["PIX_SECRET"], chave=CHAVE, **kw)


@pytest.fixture
async def psp() -> AsyncIterator[PixApiServer]:
    async with pix_server() as server:
        yield server


@pytest.fixture
async def pix(psp: PixApiServer) -> AsyncIterator[PixApiProvider]:
    provider = make_pix(psp)
    yield provider
    await provider.close()


def bearer_tokens(server: PixApiServer) -> set[str]:
    return {
        r.headers["Authorization"][7:]
        for r in server.requests
        if r.path != "/oauth/token" and r.headers.get("Authorization", "").startswith("Bearer ")
    }


# ---------------------------------------------------------------- OAuth2


async def test_token_fetched_once_and_reused(psp: PixApiServer, pix: PixApiProvider) -> None:
    first = await pix.create_charge(request_for("A-1"))
    await pix.fetch_charge(first.txid)
    await pix.create_charge(request_for("A-2"))
    assert psp.tokens_issued == 1 and len(psp.token_requests) == 1
    token_request = psp.token_requests[0]
    assert token_request.form == {"grant_type": "client_credentials"}
    basic = base64.b64decode(token_request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert basic == f"{ENV['PIX_ID']}:{ENV['PIX_SECRET']}"
    assert len(bearer_tokens(psp)) == 1
    assert pix.health()["tokens"] == 1


async def test_concurrent_requests_share_one_token_fetch(psp: PixApiServer, pix: PixApiProvider) -> None:
    charges = await asyncio.gather(*(pix.create_charge(request_for(f"A-{n}")) for n in range(8)))
    assert len({c.txid for c in charges}) == 8 and psp.cobv_count == 8
    assert psp.tokens_issued == 1


async def test_token_fetched_again_before_it_lapses() -> None:
    clock = Clock()
    async with pix_server(expires_in=20, clock=clock) as server:
        provider = make_pix(server)
        provider.clock = clock
        await provider.create_charge(request_for("A-1"))
        clock.now += 17  # inside the token's life, less the margin
        await provider.create_charge(request_for("A-2"))
        assert server.tokens_issued == 1
        clock.now += 2  # 19 s: within a second of the end: a new token before it lapses
        await provider.create_charge(request_for("A-3"))
        await provider.close()
    assert server.tokens_issued == 2
    assert not [r for r in server.requests if r.status == 401]


async def test_token_fetched_again_on_a_401(psp: PixApiServer, pix: PixApiProvider) -> None:
    charge = await pix.create_charge(request_for())
    psp.revoke_tokens()
    again = await pix.fetch_charge(charge.txid)
    assert again is not None and again.txid == charge.txid
    assert psp.tokens_issued == 2
    assert [r.status for r in psp.requests if r.method == "GET"] == [401, 200]


async def test_a_token_refused_twice_is_permanent() -> None:
    async with pix_server(expires_in=0) as server:  # every token lapses as it is issued
        provider = make_pix(server)
        with pytest.raises(PaymentPermanent) as caught:
            await provider.fetch_charge("rg" + "a" * 30)
        await provider.close()
    assert "HTTP 401" in str(caught.value) and "check the credentials" in str(caught.value)
    assert server.tokens_issued == 2


async def test_wrong_client_secret_is_permanent_and_not_quoted(psp: PixApiServer) -> None:
    psp.echo_credentials = True
    provider = provider_from_url(pix_url(psp), env={**ENV, "PIX_SECRET": "wrong-secret-zz9"})
    with pytest.raises(PaymentPermanent) as caught:
        await provider.create_charge(request_for())
    await provider.close()
    text = error_text(caught.value)
    assert "HTTP 401" in text and "invalid_client" in text and "check the credentials" in text
    assert "wrong-secret-zz9" not in text
    assert base64.b64encode(f"{ENV['PIX_ID']}:wrong-secret-zz9".encode()).decode() not in text
    assert psp.cobv_count == 0


async def test_token_endpoint_unavailable_is_retried(psp: PixApiServer, pix: PixApiProvider) -> None:
    psp.fail_next(503, 2, match="/oauth/token")
    await pix.create_charge(request_for())
    assert [r.status for r in psp.token_requests] == [503, 503, 200]
    assert psp.cobv_count == 1


# ---------------------------------------------------------------- mutual TLS


async def test_mutual_tls_to_the_api(pki: Pki) -> None:
    async with pix_server(tls=pki.server_context()) as server:
        provider = make_pix(server, cert=pki.ours_cert, key=pki.ours_key, ca=pki.ca_file)
        charge = await provider.create_charge(request_for())
        await provider.close()
        one_file = make_pix(server, cert=pki.ours_file, ca=pki.ca_file)  # cert and key in one PEM
        assert await one_file.fetch_charge(charge.txid) is not None
        await one_file.close()
    assert server.url.startswith("https://") and server.cobv_count == 1
    assert server.requests and all("regua-client" in r.client_cert for r in server.requests)


async def test_without_a_client_certificate_the_error_says_so(pki: Pki) -> None:
    async with pix_server(tls=pki.server_context()) as server:
        provider = make_pix(server, ca=pki.ca_file, attempts="1")
        with pytest.raises(PaymentRetryable) as caught:
            await provider.create_charge(request_for())
        await provider.close()
    text = str(caught.value)
    assert text.startswith("pix: ") and "client certificate" in text and "cert and key" in text
    assert server.cobv_count == 0


async def test_an_untrusted_server_certificate_is_permanent(pki: Pki) -> None:
    async with pix_server(tls=pki.server_context()) as server:
        provider = make_pix(server, cert=pki.ours_cert, key=pki.ours_key)  # the system's CAs
        with pytest.raises(PaymentPermanent) as caught:
            await provider.create_charge(request_for())
        await provider.close()
    assert "not trusted" in str(caught.value) and "option ca" in str(caught.value)
    assert not server.requests


# ---------------------------------------------------------------- charges: idempotent


async def test_create_charge_twice_is_one_cobv(psp: PixApiServer, pix: PixApiProvider) -> None:
    request = request_for()
    first = await pix.create_charge(request)
    second = await pix.create_charge(request)
    assert psp.cobv_count == 1 and len(psp.puts) == 2
    assert [r.status for r in psp.puts] == [201, 400]
    assert second.copy_paste == first.copy_paste and second.location == first.location
    assert second.provider_id == first.provider_id and second.status is ChargeStatus.ACTIVE


async def test_create_charge_twice_with_a_psp_answering_409() -> None:
    async with pix_server(duplicate_status=409) as server:
        provider = make_pix(server)
        first = await provider.create_charge(request_for())
        second = await provider.create_charge(request_for())
        await provider.close()
    assert server.cobv_count == 1 and second.copy_paste == first.copy_paste


async def test_commit_then_drop_still_one_cobv(psp: PixApiServer, pix: PixApiProvider) -> None:
    request = request_for()
    psp.commit_then_drop(match="PUT")
    charge = await pix.create_charge(request)
    assert psp.cobv_count == 1
    assert [r.status for r in psp.puts] == [0, 400]  # made and dropped, then refused as a duplicate
    made = psp.cobvs[request.txid]
    assert charge.copy_paste == made["pixCopiaECola"] and charge.location == made["loc"]["location"]
    assert charge.provider_id == str(made["loc"]["id"]) and charge.amount == Decimal("150.00")


@pytest.mark.parametrize(
    ("document", "kind"), [(CPF, "cpf"), (CNPJ, "cnpj"), (CNPJ_ALNUM, "cnpj")], ids=["cpf", "cnpj", "alnum"]
)
async def test_the_cobv_body(psp: PixApiServer, pix: PixApiProvider, document: str, kind: str) -> None:
    request = request_for(document=document)
    charge = await pix.create_charge(request)
    body = psp.puts[0].json
    assert psp.puts[0].path == f"/v2/cobv/{request.txid}"
    assert body["calendario"] == {
        "dataDeVencimento": request.due_date.isoformat(),
        "validadeAposVencimento": 30,
    }
    assert body["devedor"] == {kind: document, "nome": "Maria Silva"}
    assert body["valor"] == {
        "original": "150.00",
        "multa": {"modalidade": 2, "valorPerc": "2.00"},  # percent
        "juros": {"modalidade": 3, "valorPerc": "1.00"},  # percent a month, calendar days
    }
    assert body["chave"] == CHAVE and body["solicitacaoPagador"] == "Empresa: pagamento"
    assert charge.status is ChargeStatus.ACTIVE and charge.due_date == request.due_date
    fields = parse_brcode(charge.copy_paste)  # checks the CRC the PSP computed
    assert charge.location in fields["26"] and fields["58"] == "BR"


async def test_no_fine_and_no_interest_leave_them_out(psp: PixApiServer, pix: PixApiProvider) -> None:
    await pix.create_charge(request_for(fine="0", interest="0"))
    assert psp.puts[0].json["valor"] == {"original": "150.00"}


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (request_for(document=None), "has no CPF/CNPJ"),
        (replace(request_for(), txid="short"), "26 to 35"),
    ],
    ids=["no-document", "bad-txid"],
)
async def test_refused_before_any_request(
    psp: PixApiServer, pix: PixApiProvider, request_: ChargeRequest, reason: str
) -> None:
    with pytest.raises(PaymentPermanent, match=reason):
        await pix.create_charge(request_)
    assert not psp.puts


# ---------------------------------------------------------------- charges: failures


async def test_503_then_success_is_retried_with_back_off(psp: PixApiServer, pix: PixApiProvider) -> None:
    pix.http.base_delay = 0.05
    psp.fail_next(503, 2, match="PUT")
    charge = await pix.create_charge(request_for())
    assert [r.status for r in psp.puts] == [503, 503, 201] and psp.cobv_count == 1
    assert charge.status is ChargeStatus.ACTIVE and pix.http.retries == 2
    first, second, third = (r.at for r in psp.puts)
    assert second - first >= 0.025 and third - second >= 0.05  # doubling, jittered by at most half


async def test_503_every_time_is_retryable_after_the_attempts(psp: PixApiServer, pix: PixApiProvider) -> None:
    psp.fail_next(503, 3, match="PUT")
    with pytest.raises(PaymentRetryable, match="HTTP 503") as caught:
        await pix.create_charge(request_for())
    assert len(psp.puts) == 3 and "Serviço Indisponível" in str(caught.value)


async def test_429_retry_after_is_waited_out(psp: PixApiServer, pix: PixApiProvider) -> None:
    psp.fail_next(429, 1, retry_after=1, match="PUT")
    await pix.create_charge(request_for())
    assert [r.status for r in psp.puts] == [429, 201]
    assert psp.puts[1].at - psp.puts[0].at >= 1.0


async def test_a_retry_after_longer_than_we_wait_is_handed_to_the_caller(
    psp: PixApiServer, pix: PixApiProvider
) -> None:
    pix.http.max_delay = 0.5
    psp.fail_next(429, 1, retry_after=120, match="PUT")
    with pytest.raises(PaymentRetryable) as caught:
        await pix.create_charge(request_for())
    assert caught.value.retry_after == 120 and len(psp.puts) == 1


@pytest.mark.parametrize(
    ("kw", "options", "named"),
    [
        ({"name": " "}, {}, ["cobv.devedor.nome", "nome do devedor"]),
        ({}, {"chave": "outra-chave@empresa.example"}, ["cobv.chave", "não pertence"]),
    ],
    ids=["no-name", "foreign-key"],
)
async def test_400_is_permanent_naming_the_violation(
    psp: PixApiServer, kw: dict[str, Any], options: dict[str, str], named: list[str]
) -> None:
    provider = make_pix(psp, **options)
    with pytest.raises(PaymentPermanent) as caught:
        await provider.create_charge(request_for(**kw))
    await provider.close()
    text = str(caught.value)
    assert text.startswith("pix: HTTP 400: Cobrança inválida.")
    assert all(part in text for part in named), text
    assert psp.cobv_count == 0 and len(psp.puts) == 1  # not retried


async def test_a_timeout_is_retryable(psp: PixApiServer) -> None:
    provider = make_pix(psp, timeout="0.3", attempts="2")
    await provider.fetch_charge("rg" + "a" * 30)  # the token first
    psp.delay_next(2.0, 2, match="GET")
    started = time.monotonic()
    with pytest.raises(PaymentRetryable, match=r"no reply within 0\.3s"):
        await provider.fetch_charge("rg" + "a" * 30)
    assert time.monotonic() - started < 1.5
    await provider.close()


async def test_no_secret_in_any_error(psp: PixApiServer) -> None:
    """A PSP that quotes the credentials it got in its errors: none reaches our text."""
    psp.echo_credentials = True
    provider = make_pix(psp, timeout="0.3", attempts="1")
    failures: list[PaymentError] = []
    for arrange in (
        lambda: psp.fail_next(503, match="PUT"),
        lambda: psp.fail_next(400, match="PUT"),
        lambda: psp.fail_next(429, match="PUT"),
        lambda: psp.delay_next(1.0, match="PUT"),
    ):
        arrange()
        try:
            await provider.create_charge(request_for(f"A-{len(failures)}"))
        except PaymentError as exc:
            failures.append(exc)
    psp.fail_next(401, match="/oauth/token")
    provider._token = ""
    try:
        await provider.create_charge(request_for("A-9"))
    except PaymentError as exc:
        failures.append(exc)
    await provider.close()
    assert len(failures) == 5
    tokens = set(psp.tokens) | bearer_tokens(psp)
    basic = base64.b64encode(f"{ENV['PIX_ID']}:{ENV['PIX_SECRET']}".encode()).decode()
    assert tokens and any("request:" in str(e) for e in failures)  # the PSP did quote them
    for exc in failures:
        text = error_text(exc) + provider.health()["last_error"]  # type: ignore[operator]
        for secret in (ENV["PIX_SECRET"], ENV["PIX_HOOK"], basic, *tokens):
            assert secret not in text, (secret, text)


# ---------------------------------------------------------------- fetch_charge, received_since


async def test_fetch_a_paid_cobv_with_its_refund(psp: PixApiServer, pix: PixApiProvider) -> None:
    request = request_for()
    await pix.create_charge(request)
    e2e = await psp.pay(request.txid)
    charge = await pix.fetch_charge(request.txid)
    assert charge is not None and charge.status is ChargeStatus.PAID
    (paid,) = charge.payments
    assert paid.event_id == f"pix:{e2e}" and paid.kind is EventKind.PAID and paid.reference == e2e
    assert paid.amount == Decimal("150.00") and paid.txid == request.txid and paid.provider == "pix"
    assert paid.at.tzinfo is not None and len(e2e) == 32
    dev = await psp.refund(e2e, "50.00")
    charge = await pix.fetch_charge(request.txid)
    assert charge is not None
    refund = next(e for e in charge.payments if e.kind is EventKind.REFUND)
    assert refund.event_id == f"pix:{e2e}:dev:{dev}" and refund.amount == Decimal("50.00")
    assert refund.reference == e2e


async def test_a_partial_payment_leaves_the_cobv_active(psp: PixApiServer, pix: PixApiProvider) -> None:
    request = request_for()
    await pix.create_charge(request)
    await psp.pay(request.txid, "100.00")
    charge = await pix.fetch_charge(request.txid)
    assert charge is not None and charge.status is ChargeStatus.ACTIVE
    assert [e.amount for e in charge.payments] == [Decimal("100.00")]


async def test_fetch_an_unknown_cobv_is_none(psp: PixApiServer, pix: PixApiProvider) -> None:
    assert await pix.fetch_charge("rg" + "z" * 30) is None


async def test_a_large_reply_is_read_whole(psp: PixApiServer, pix: PixApiProvider) -> None:
    """A cobv paid in 800 parts is a reply of ~300 KB, which arrives in many chunks."""
    request = request_for(amount="1000.00")
    await pix.create_charge(request)
    for _ in range(800):
        await psp.pay(request.txid, "1.00")
    charge = await pix.fetch_charge(request.txid)
    assert charge is not None and len(charge.payments) == 800


async def test_received_since_pages_through_get_pix(psp: PixApiServer, pix: PixApiProvider) -> None:
    psp.drop_webhooks = True
    request = request_for(amount="1000.00")
    await pix.create_charge(request)
    start = datetime.now(UTC) - timedelta(minutes=1)
    e2es = [await psp.pay(request.txid, "1.00") for _ in range(230)]
    for _ in range(3):
        psp.receive_untagged()  # no txid: not ours
    await psp.refund(e2es[0], "1.00")
    events = await pix.received_since(start, datetime.now(UTC) + timedelta(minutes=1))
    paid = [e for e in events if e.kind is EventKind.PAID]
    assert sorted(e.reference for e in paid) == sorted(e2es)
    assert [e.event_id for e in events if e.kind is EventKind.REFUND] == [f"pix:{e2es[0]}:dev:D0001"]
    listed = [r for r in psp.requests if r.path == "/v2/pix"]
    assert [r.query["paginacao.paginaAtual"] for r in listed] == ["0", "1", "2"]
    query = listed[0].query
    assert query["txIdPresente"] == "true" and query["paginacao.itensPorPagina"] == "100"
    for bound in (query["inicio"], query["fim"]):  # RFC 3339, with its offset
        assert datetime.fromisoformat(bound.replace("Z", "+00:00")).tzinfo is not None


async def test_received_since_outside_the_window_is_empty(psp: PixApiServer, pix: PixApiProvider) -> None:
    request = request_for()
    await pix.create_charge(request)
    await psp.pay(request.txid)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await pix.received_since(later, later + timedelta(hours=1)) == []


# ---------------------------------------------------------------- the PSP's callback


def adapter_sink(provider: PaymentProvider, received: list[PaymentEvent], token_at: int = -1) -> WebhookSink:
    """A listener doing what Régua's webhook route does: authenticate, then parse."""

    def respond(delivery: Delivery) -> int:
        parts = delivery.path.strip("/").split("/")
        token = parts[token_at] if len(parts) > abs(token_at) else ""
        incoming = delivery.webhook_request(token)
        try:
            provider.authenticate(incoming)
            received.extend(provider.parse_webhook(incoming))
        except WebhookRefused as exc:
            return exc.status
        return 200

    return WebhookSink(respond)


async def test_pay_and_refund_reach_the_webhook(psp: PixApiServer, pix: PixApiProvider) -> None:
    received: list[PaymentEvent] = []
    async with adapter_sink(pix, received, token_at=-2) as sink:
        await pix.register_webhook(f"{sink.url}/webhooks/payments/pix/{ENV['PIX_HOOK']}")
        assert psp.webhook_urls[CHAVE].endswith(ENV["PIX_HOOK"])
        request = request_for()
        await pix.create_charge(request)
        e2e = await psp.pay(request.txid)
        await psp.refund(e2e)
    assert [d.path for d in sink.deliveries] == [f"/webhooks/payments/pix/{ENV['PIX_HOOK']}/pix"] * 2
    assert [d.status for d in sink.deliveries] == [200, 200]
    assert [(e.event_id, e.kind) for e in received] == [
        (f"pix:{e2e}", EventKind.PAID),
        (f"pix:{e2e}", EventKind.PAID),  # the refund's callback carries the Pix again: one event id
        (f"pix:{e2e}:dev:D0001", EventKind.REFUND),
    ]


async def test_a_wrong_path_token_is_refused_at_the_webhook(psp: PixApiServer, pix: PixApiProvider) -> None:
    received: list[PaymentEvent] = []
    async with adapter_sink(pix, received, token_at=-2) as sink:
        await pix.register_webhook(f"{sink.url}/webhooks/payments/pix/not-the-token")
        request = request_for()
        await pix.create_charge(request)
        await psp.pay(request.txid)
    assert [d.status for d in sink.deliveries] == [401] and received == []


async def test_dropped_webhooks_are_found_by_fetch_charge(psp: PixApiServer, pix: PixApiProvider) -> None:
    received: list[PaymentEvent] = []
    async with adapter_sink(pix, received, token_at=-2) as sink:
        await pix.register_webhook(f"{sink.url}/webhooks/payments/pix/{ENV['PIX_HOOK']}")
        psp.drop_webhooks = True
        request = request_for()
        await pix.create_charge(request)
        e2e = await psp.pay(request.txid)
    assert sink.deliveries == [] and psp.deliveries == []
    charge = await pix.fetch_charge(request.txid)
    assert charge is not None and [e.reference for e in charge.payments] == [e2e]


@pytest.mark.parametrize("psp_shows_cert", [True, False], ids=["psp-cert", "no-cert"])
async def test_mtls_required_webhook_end_to_end(pki: Pki, psp_shows_cert: bool) -> None:
    """Régua's own mTLS listener asks for a certificate; the adapter needs it verified."""
    async with pix_server(webhook_ssl=pki.psp_client_context(with_cert=psp_shows_cert)) as server:
        provider = make_pix(server, mtls="required")
        received: list[PaymentEvent] = []
        sink = adapter_sink(provider, received, token_at=-2)
        sink.tls = pki.server_context(ssl.CERT_OPTIONAL)
        async with sink:
            await provider.register_webhook(f"{sink.url}/webhooks/payments/pix/{ENV['PIX_HOOK']}")
            request = request_for()
            await provider.create_charge(request)
            await server.pay(request.txid)
        await provider.close()
    (delivery,) = sink.deliveries
    assert delivery.cert_verified is psp_shows_cert
    if psp_shows_cert:
        assert delivery.status == 200 and "psp-webhooks" in delivery.cert_subject and len(received) == 1
    else:
        assert delivery.status == 403 and received == []


# ---------------------------------------------------------------- Pix webhooks: authenticate


def pix_webhook(mtls: str = "off", **options: str) -> PixApiProvider:
    provider = provider_from_url(
        "pix+https://api.psp.example/v2?"
        + urlencode(
            {
                "client_id_env": "PIX_ID",
                "client_secret_env": "PIX_SECRET",
                "webhook_token_env": "PIX_HOOK",
                "chave": CHAVE,
                "mtls": mtls,
                **options,
            }
        ),
        env=ENV,
    )
    assert isinstance(provider, PixApiProvider)
    return provider


TOKEN = ENV["PIX_HOOK"]
VERIFIED = {"X-SSL-Client-Verify": "SUCCESS"}


@pytest.mark.parametrize(
    ("mtls", "options", "incoming", "status"),
    [
        ("off", {}, WebhookRequest({}, b"", TOKEN), None),
        ("off", {}, WebhookRequest({}, b"", "wrong-token"), 401),
        ("off", {}, WebhookRequest({}, b"", ""), 401),
        ("off", {}, WebhookRequest({}, b"", TOKEN[:-1]), 401),
        ("off", {}, WebhookRequest({}, b"", "tökén-ü"), 401),  # non-ASCII: a 401, not a TypeError
        ("proxy", {}, WebhookRequest(VERIFIED, b"", TOKEN, "127.0.0.1"), None),
        ("proxy", {}, WebhookRequest(VERIFIED, b"", TOKEN, "::1"), None),
        ("proxy", {}, WebhookRequest(VERIFIED, b"", "wrong", "127.0.0.1"), 401),
        ("proxy", {}, WebhookRequest(VERIFIED, b"", TOKEN, "203.0.113.9"), 403),
        ("proxy", {}, WebhookRequest(VERIFIED, b"", TOKEN, ""), 403),
        ("proxy", {}, WebhookRequest({}, b"", TOKEN, "127.0.0.1"), 403),
        ("proxy", {}, WebhookRequest({"X-SSL-Client-Verify": "FAILED:x"}, b"", TOKEN, "127.0.0.1"), 403),
        (
            "proxy",
            {"proxies": "10.0.0.0/8, 192.0.2.7"},
            WebhookRequest(VERIFIED, b"", TOKEN, "10.1.2.3"),
            None,
        ),
        ("proxy", {"proxies": "10.0.0.0/8"}, WebhookRequest(VERIFIED, b"", TOKEN, "127.0.0.1"), 403),
        (
            "proxy",
            {"verify_header": "X-Client-Verify"},
            WebhookRequest(VERIFIED, b"", TOKEN, "127.0.0.1"),
            403,
        ),
        ("required", {}, WebhookRequest({}, b"", TOKEN, "198.51.100.4", True, "CN=psp"), None),
        ("required", {}, WebhookRequest(VERIFIED, b"", TOKEN, "127.0.0.1"), 403),
    ],
)
def test_pix_webhook_authenticate(
    mtls: str, options: dict[str, str], incoming: WebhookRequest, status: int | None
) -> None:
    provider = pix_webhook(mtls, **options)
    if status is None:
        provider.authenticate(incoming)
        return
    with pytest.raises(WebhookRefused) as caught:
        provider.authenticate(incoming)
    assert caught.value.status == status
    assert TOKEN not in caught.value.reason and TOKEN not in caught.value.audit


# ---------------------------------------------------------------- Pix webhooks: parse


def pix_item(**fields: Any) -> dict[str, Any]:
    item = {
        "endToEndId": "E12345678202606011200abcdefghijk",
        "txid": "rg" + "a" * 30,
        "valor": "150.00",
        "horario": "2026-06-01T12:00:00.358Z",
    }
    item.update(fields)
    return {k: v for k, v in item.items() if v is not None}


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "the body is not JSON"),
        (b"\xff\xfe{", "the body is not JSON"),
        (b"[]", 'the body must be {"pix": [...]}'),
        (b'{"pix_list": []}', 'the body must be {"pix": [...]}'),
        (body({"pix": {"endToEndId": "x"}}), "pix must be a list"),
        (body({"pix": ["E123"]}), "pix[0] is not an object"),
        (body({"pix": [pix_item(endToEndId=None)]}), "pix[0].endToEndId is missing or malformed"),
        (body({"pix": [pix_item(endToEndId="E-1/2")]}), "pix[0].endToEndId is missing or malformed"),
        (body({"pix": [pix_item(txid="rg-aaaa")]}), "pix[0].txid is malformed"),
        (body({"pix": [pix_item(valor="12,50")]}), "pix[0]: valor must be like 123.45"),
        (body({"pix": [pix_item(valor=12.5)]}), "pix[0]: valor must be like 123.45"),
        (body({"pix": [pix_item(valor=None)]}), "pix[0]: valor must be like 123.45"),
        (body({"pix": [pix_item(), pix_item(horario="ontem")]}), "pix[1]: horario is not an RFC 3339 time"),
        (body({"pix": [pix_item(horario="2026-06-01T12:00:00")]}), "pix[0]: horario has no offset"),
        (body({"pix": [pix_item(horario=1780000000)]}), "pix[0]: horario is not an RFC 3339 time"),
        (body({"pix": [pix_item(devolucoes="D1")]}), "pix[0].devolucoes must be a list"),
        (body({"pix": [pix_item(devolucoes=[{"valor": "1.00"}])]}), "pix[0].devolucoes[0] is malformed"),
        (
            body({"pix": [pix_item(devolucoes=[{"id": "D1", "status": "DEVOLVIDO", "valor": "1,00"}])]}),
            "pix[0].devolucoes[0]: valor must be like 123.45",
        ),
        (body({"pix": [pix_item()] * 5001}), "more than 5000 pix in one request"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_pix_webhook_malformed_bodies(raw: bytes, reason: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        pix_webhook().parse_webhook(WebhookRequest({}, raw, TOKEN))
    assert caught.value.status == 400 and caught.value.reason == reason


def test_pix_webhook_items_without_txid_are_ignored() -> None:
    events = pix_webhook().parse_webhook(
        WebhookRequest(
            {},
            body(
                {
                    "pix": [
                        pix_item(txid=None, endToEndId="E12345678202606011200notourstxid"),
                        pix_item(txid=""),
                        pix_item(),
                    ]
                }
            ),
            TOKEN,
        )
    )
    assert [e.event_id for e in events] == ["pix:E12345678202606011200abcdefghijk"]
    assert events[0].at == datetime(2026, 6, 1, 12, 0, 0, 358000, tzinfo=UTC)


def test_pix_webhook_refunds_count_only_when_returned() -> None:
    devolucoes = [
        {"id": "D1", "rtrId": "D" * 32, "valor": "10.00", "horario": {"solicitacao": "2026-06-02T10:00:00Z"}}
        | {"status": "EM_PROCESSAMENTO"},
        {
            "id": "D2",
            "rtrId": "D" * 32,
            "valor": "20.00",
            "horario": {"solicitacao": "2026-06-02T10:00:00Z", "liquidacao": "2026-06-02T10:00:05Z"},
            "status": "DEVOLVIDO",
        },
        {"id": "D3", "rtrId": "D" * 32, "valor": "5.00", "horario": {}, "status": "NAO_REALIZADO"},
    ]
    events = pix_webhook().parse_webhook(WebhookRequest({}, body({"pix": [pix_item(devolucoes=devolucoes)]})))
    assert [(e.kind, e.amount) for e in events] == [
        (EventKind.PAID, Decimal("150.00")),
        (EventKind.REFUND, Decimal("20.00")),
    ]
    assert events[1].at == datetime(2026, 6, 2, 10, 0, 5, tzinfo=UTC)


def test_pix_webhook_devolucao_as_one_object() -> None:
    """The Banco Central's own example (pixWebhook1) sends ``devolucoes`` as one object."""
    dev = {"id": "123ABC", "rtrId": "D" * 32, "valor": "10.00", "status": "DEVOLVIDO"}
    dev["horario"] = {"solicitacao": "2020-09-09T20:15:00.358Z"}  # type: ignore[assignment]
    events = pix_webhook().parse_webhook(WebhookRequest({}, body({"pix": [pix_item(devolucoes=dev)]})))
    assert [e.kind for e in events] == [EventKind.PAID, EventKind.REFUND]


# ---------------------------------------------------------------- Asaas: fixtures


def asaas_url(server: AsaasServer, **options: str) -> str:
    opts = {
        "token_env": "ASAAS_KEY",
        "webhook_token_env": "ASAAS_HOOK",
        "api": server.api_url,
        "timeout": "2",
        "attempts": "3",
        **options,
    }
    return "asaas://?" + urlencode(opts)


def make_asaas(server: AsaasServer, env: dict[str, str] | None = None, **options: str) -> AsaasProvider:
    provider = provider_from_url(asaas_url(server, **options), env=env or ENV)
    assert isinstance(provider, AsaasProvider)
    return fast(provider)


@pytest.fixture
async def asaas_server() -> AsyncIterator[AsaasServer]:
    async with AsaasServer(api_key=ENV["ASAAS_KEY"], webhook_token=ENV["ASAAS_HOOK"]) as server:
        yield server


@pytest.fixture
async def asaas(asaas_server: AsaasServer) -> AsyncIterator[AsaasProvider]:
    provider = make_asaas(asaas_server)
    yield provider
    await provider.close()


# ---------------------------------------------------------------- Asaas: charges


async def test_asaas_create_twice_is_one_payment(asaas_server: AsaasServer, asaas: AsaasProvider) -> None:
    request = request_for()
    first = await asaas.create_charge(request)
    second = await asaas.create_charge(request)
    assert asaas_server.payments_created == 1 and asaas_server.customers_created == 1
    assert second.provider_id == first.provider_id and second.copy_paste == first.copy_paste
    calls = [(r.method, r.path) for r in asaas_server.requests]
    assert calls[:4] == [
        ("GET", "/v3/payments"),  # by externalReference, before anything is made
        ("GET", "/v3/customers"),
        ("POST", "/v3/customers"),
        ("POST", "/v3/payments"),
    ]
    assert asaas_server.requests[0].query == {"externalReference": request.txid}
    assert all(r.headers["access_token"] == ENV["ASAAS_KEY"] for r in asaas_server.requests)


async def test_asaas_customer_made_once_without_notifications(
    asaas_server: AsaasServer, asaas: AsaasProvider
) -> None:
    await asaas.create_charge(request_for("A-1", document=CNPJ_ALNUM, name="Padaria Exemplo Ltda"))
    await asaas.create_charge(request_for("A-2", document=CNPJ_ALNUM, amount="80.00"))
    assert asaas_server.customers_created == 1 and asaas_server.payments_created == 2
    (post,) = asaas_server.seen("POST", "/customers")
    assert post.json == {
        "name": "Padaria Exemplo Ltda",
        "cpfCnpj": CNPJ_ALNUM,
        "externalReference": "A-1",
        "notificationDisabled": True,  # Asaas would otherwise e-mail and text the debtor itself
    }
    (customer,) = asaas_server.customers.values()
    assert customer["notificationDisabled"] is True and customer["personType"] == "JURIDICA"


async def test_asaas_payment_body(asaas_server: AsaasServer, asaas: AsaasProvider) -> None:
    request = request_for()
    await asaas.create_charge(request)
    (post,) = asaas_server.seen("POST", "/payments")
    assert post.json == {
        "customer": next(iter(asaas_server.customers)),
        "billingType": "BOLETO",
        "value": 150.0,
        "dueDate": request.due_date.isoformat(),
        "description": "Empresa: pagamento",
        "externalReference": request.txid,
        "fine": {"value": 2.0, "type": "PERCENTAGE"},
        "interest": {"value": 1.0},
    }


async def test_asaas_commit_then_drop_on_post_finds_the_payment(
    asaas_server: AsaasServer, asaas: AsaasProvider
) -> None:
    request = request_for()
    asaas_server.commit_then_drop(match="POST /v3/payments")
    charge = await asaas.create_charge(request)  # the lookup after the lost answer finds it
    assert asaas_server.payments_created == 1
    assert charge.provider_id == asaas_server.by_reference(request.txid)["id"]
    again = await asaas.create_charge(request)
    assert asaas_server.payments_created == 1 and again.provider_id == charge.provider_id
    assert len(asaas_server.seen("POST", "/payments")) == 1  # never posted twice


async def test_asaas_commit_then_drop_on_the_customer(
    asaas_server: AsaasServer, asaas: AsaasProvider
) -> None:
    asaas_server.commit_then_drop(match="POST /v3/customers")
    await asaas.create_charge(request_for())
    assert asaas_server.customers_created == 1 and asaas_server.payments_created == 1


async def test_asaas_post_timeout_then_retry_is_still_one(asaas_server: AsaasServer) -> None:
    provider = make_asaas(asaas_server, timeout="0.3")
    request = request_for()
    asaas_server.delay_next(0.6, match="POST /v3/payments")
    with pytest.raises(PaymentRetryable, match="no reply"):
        await provider.create_charge(request)  # not made yet when we looked
    for _ in range(100):
        if asaas_server.payments_created:
            break
        await asyncio.sleep(0.01)
    charge = await provider.create_charge(request)  # the caller's retry
    await provider.close()
    assert asaas_server.payments_created == 1 and len(asaas_server.seen("POST", "/payments")) == 1
    assert charge.provider_id == asaas_server.by_reference(request.txid)["id"]


async def test_asaas_post_is_never_retried(asaas_server: AsaasServer, asaas: AsaasProvider) -> None:
    asaas_server.fail_next(503, 3, match="POST /v3/payments")
    with pytest.raises(PaymentRetryable, match="HTTP 503"):
        await asaas.create_charge(request_for())
    assert len(asaas_server.seen("POST", "/payments")) == 1 and asaas_server.payments_created == 0


@pytest.mark.parametrize(
    ("billing", "method", "expected"),
    [
        ("auto", PaymentMethod.BOLETO, "BOLETO"),
        ("auto", PaymentMethod.CARD, "PIX"),
        ("auto", PaymentMethod.CREDIARIO, "PIX"),
        ("PIX", PaymentMethod.BOLETO, "PIX"),
        ("pix", PaymentMethod.BOLETO, "PIX"),
        ("BOLETO", PaymentMethod.CARD, "BOLETO"),
    ],
)
async def test_asaas_pix_or_boleto(
    asaas_server: AsaasServer, billing: str, method: PaymentMethod, expected: str
) -> None:
    provider = make_asaas(asaas_server, billing=billing)
    charge = await provider.create_charge(request_for(method=method))
    await provider.close()
    (post,) = asaas_server.seen("POST", "/payments")
    assert post.json["billingType"] == expected
    assert charge.copy_paste == asaas_server.pix_payload(charge.provider_id)  # pixQrCode.payload
    assert parse_brcode(charge.copy_paste)["26"].startswith("0014br.gov.bcb.pix")
    payment = asaas_server.payments[charge.provider_id]
    if expected == "BOLETO":
        assert charge.boleto_line == asaas_server.boleto_line(charge.provider_id)
        assert len(charge.boleto_line) == 47 and charge.boleto_line.isdigit()
    else:
        assert charge.boleto_line == "" and not asaas_server.seen("GET", "/identificationField")
    assert charge.status is ChargeStatus.ACTIVE and charge.amount == Decimal("150.00")
    assert charge.due_date.isoformat() == payment["dueDate"]


async def test_asaas_400_is_permanent_with_the_description(
    asaas_server: AsaasServer, asaas: AsaasProvider
) -> None:
    with pytest.raises(PaymentPermanent) as caught:
        await asaas.create_charge(request_for(due=TODAY - timedelta(days=2)))
    assert str(caught.value) == "asaas: HTTP 400: A data de vencimento não pode ser inferior à hoje"
    assert asaas_server.payments_created == 0


async def test_asaas_wrong_key_is_permanent_and_not_quoted(asaas_server: AsaasServer) -> None:
    provider = make_asaas(asaas_server, env={**ENV, "ASAAS_KEY": "$aact_wrong-key-0042"})
    with pytest.raises(PaymentPermanent) as caught:
        await provider.create_charge(request_for())
    await provider.close()
    text = error_text(caught.value)
    assert "HTTP 401" in text and "check the credentials" in text and "wrong-key-0042" not in text


async def test_asaas_get_retried_and_no_secret_quoted(
    asaas_server: AsaasServer, asaas: AsaasProvider
) -> None:
    asaas_server.echo_credentials = True
    asaas_server.fail_next(503, 1, match="GET /v3/payments")
    asaas_server.fail_next(429, 1, retry_after="0.2", match="GET /v3/payments")
    await asaas.create_charge(request_for())
    statuses = [r.status for r in asaas_server.seen("GET", "/v3/payments") if r.path == "/v3/payments"]
    assert statuses[:3] == [503, 429, 200]
    asaas_server.fail_next(503, 3, match="GET /v3/payments")
    with pytest.raises(PaymentRetryable) as caught:
        await asaas.fetch_charge(request_for().txid)
    assert "request:" in str(caught.value)  # Asaas did quote the key…
    for secret in (ENV["ASAAS_KEY"], ENV["ASAAS_HOOK"]):
        assert secret not in error_text(caught.value) + asaas.http.last_error  # …and we did not


async def test_asaas_fetch_charge(asaas_server: AsaasServer, asaas: AsaasProvider) -> None:
    request = request_for()
    assert await asaas.fetch_charge(request.txid) is None
    await asaas.create_charge(request)
    pay_id = await asaas_server.pay(request.txid)
    charge = await asaas.fetch_charge(request.txid)
    assert charge is not None and charge.status is ChargeStatus.PAID
    assert [(e.event_id, e.kind, e.amount) for e in charge.payments] == [
        (f"asaas:{pay_id}:paid", EventKind.PAID, Decimal("150.00"))
    ]
    await asaas_server.refund(pay_id)
    charge = await asaas.fetch_charge(request.txid)
    assert charge is not None
    assert [e.kind for e in charge.payments] == [EventKind.PAID, EventKind.REFUND]


async def test_asaas_received_since_pages_with_has_more(
    asaas_server: AsaasServer, asaas: AsaasProvider
) -> None:
    asaas_server.drop_webhooks = True
    for n in range(130):
        request = request_for(f"A-{n}", amount=f"{10 + n}.00")
        await asaas.create_charge(request)
        await asaas_server.pay(request.txid)
    refunded = asaas_server.by_reference(request_for("A-7", amount="17.00").txid)["id"]
    await asaas_server.refund(refunded)
    await asaas.create_charge(request_for("OPEN-1"))  # not paid: not listed
    now = datetime.now(UTC)
    events = await asaas.received_since(now - timedelta(days=1), now + timedelta(minutes=1))
    paid = {e.event_id for e in events if e.kind is EventKind.PAID}
    assert len(paid) == 130
    assert [e.event_id for e in events if e.kind is EventKind.REFUND] == [f"asaas:{refunded}:refund"]
    received = [
        r.query for r in asaas_server.seen("GET", "/v3/payments") if r.query.get("status") == "RECEIVED"
    ]
    assert [q["offset"] for q in received] == ["0", "100"] and received[0]["limit"] == "100"
    assert received[0]["paymentDate[ge]"] <= received[0]["paymentDate[le]"]


# ---------------------------------------------------------------- Asaas: webhooks


async def test_asaas_webhooks_confirmed_received_and_refunded(
    asaas_server: AsaasServer, asaas: AsaasProvider
) -> None:
    received: list[PaymentEvent] = []
    async with adapter_sink(asaas, received) as sink:
        asaas_server.webhook_url = sink.url + "/webhooks/payments/asaas"
        request = request_for()
        await asaas.create_charge(request)
        pay_id = await asaas_server.pay(request.txid)
        await asaas_server.refund(pay_id)
    assert [json.loads(d.body)["event"] for d in sink.deliveries] == [
        "PAYMENT_CONFIRMED",
        "PAYMENT_RECEIVED",
        "PAYMENT_REFUNDED",
    ]
    assert all(
        d.status == 200 and d.headers["asaas-access-token"] == ENV["ASAAS_HOOK"] for d in sink.deliveries
    )
    paid = [e for e in received if e.kind is EventKind.PAID]
    assert {e.event_id for e in paid} == {f"asaas:{pay_id}:paid"}  # CONFIRMED + RECEIVED: once
    assert all(e.txid == request.txid and e.amount == Decimal("150.00") for e in paid)
    (refund,) = [e for e in received if e.kind is EventKind.REFUND]
    assert refund.event_id == f"asaas:{pay_id}:refund" and refund.method == "boleto"


async def test_asaas_dropped_webhooks(asaas_server: AsaasServer, asaas: AsaasProvider) -> None:
    received: list[PaymentEvent] = []
    async with adapter_sink(asaas, received) as sink:
        asaas_server.webhook_url = sink.url + "/webhooks/payments/asaas"
        asaas_server.drop_webhooks = True
        request = request_for()
        await asaas.create_charge(request)
        await asaas_server.pay(request.txid)
    assert sink.deliveries == []
    charge = await asaas.fetch_charge(request.txid)
    assert charge is not None and charge.status is ChargeStatus.PAID


def asaas_webhook() -> AsaasProvider:
    provider = provider_from_url("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK", env=ENV)
    assert isinstance(provider, AsaasProvider)
    return provider


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "the asaas-access-token header is missing"),
        ({"asaas-access-token": ""}, "the asaas-access-token header is missing"),
        ({"asaas-access-token": "wrong"}, "the asaas-access-token is wrong"),
        ({"asaas-access-token": ENV["ASAAS_HOOK"] + "x"}, "the asaas-access-token is wrong"),
        ({"asaas-access-token": "tökén"}, "the asaas-access-token is wrong"),
        ({"access_token": ENV["ASAAS_HOOK"]}, "the asaas-access-token header is missing"),
    ],
)
def test_asaas_webhook_token_refused(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        asaas_webhook().authenticate(WebhookRequest(headers, b"{}"))
    assert caught.value.status == 401 and caught.value.reason == reason


def test_asaas_webhook_token_accepted() -> None:
    asaas_webhook().authenticate(WebhookRequest({"asaas-access-token": ENV["ASAAS_HOOK"]}, b"{}"))


def asaas_event(event: str = "PAYMENT_RECEIVED", **payment: Any) -> dict[str, Any]:
    pay = {
        "object": "payment",
        "id": "pay_080225913252",
        "value": 100,
        "externalReference": "rg" + "b" * 30,
        "billingType": "PIX",
        "status": "RECEIVED",
        "paymentDate": "2026-06-12",
        "clientPaymentDate": "2026-06-12",
    }
    pay.update(payment)
    return {
        "id": "evt_05b708f961d739ea7eba7e4db318f621&368604920",
        "event": event,
        "dateCreated": "2026-06-12 16:45:03",
        "payment": {k: v for k, v in pay.items() if v is not None},
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "the body is not JSON"),
        (b"[]", "the body must be an Asaas event with an event field"),
        (body({"payment": {}}), "the body must be an Asaas event with an event field"),
        (body({"event": 7}), "the body must be an Asaas event with an event field"),
        (body({"event": "PAYMENT_RECEIVED"}), "payment.id is missing"),
        (body(asaas_event(id=None)), "payment.id is missing"),
        (body(asaas_event(value="abc")), "payment.value is not a number"),
        (body(asaas_event(value=-5)), "payment.value is out of range"),
        (body(asaas_event(value="NaN")), "payment.value is out of range"),
        (
            body({**asaas_event(paymentDate="ontem", clientPaymentDate=None), "dateCreated": None}),
            "a date is missing or malformed",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_asaas_webhook_malformed_bodies(raw: bytes, reason: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        asaas_webhook().parse_webhook(WebhookRequest({}, raw))
    assert caught.value.status == 400 and caught.value.reason == reason


@pytest.mark.parametrize(
    "doc",
    [
        asaas_event("PAYMENT_CREATED", status="PENDING", paymentDate=None, clientPaymentDate=None),
        {
            "event": "PAYMENT_OVERDUE",
            "payment": {"id": "pay_1", "status": "OVERDUE"},
        },  # an old-style event: no id, no dateCreated
        asaas_event("PAYMENT_UPDATED", value=None),
        {"id": "evt_1", "event": "TRANSFER_DONE", "transfer": {"id": "t_1"}},
    ],
    ids=["created", "overdue", "updated", "transfer"],
)
def test_asaas_webhook_events_without_money(doc: dict[str, Any]) -> None:
    assert asaas_webhook().parse_webhook(WebhookRequest({}, body(doc))) == []


def test_asaas_webhook_received_event() -> None:
    (event,) = asaas_webhook().parse_webhook(WebhookRequest({}, body(asaas_event(value=99.9))))
    assert event.event_id == "asaas:pay_080225913252:paid" and event.amount == Decimal("99.90")
    assert event.txid == "rg" + "b" * 30 and event.method == "pix"
    assert event.at.date() == date(2026, 6, 12) and event.at.tzinfo is not None
    (event,) = asaas_webhook().parse_webhook(WebhookRequest({}, body(asaas_event(externalReference="A-1/2"))))
    assert event.txid == ""  # not one of our txids


# ---------------------------------------------------------------- signed webhooks


NOW = 1_780_000_000


def signed_provider(**options: str) -> SignedWebhookProvider:
    query = urlencode({"secret_env": "SIGNED", **options})
    provider = provider_from_url(f"signed://?{query}", env=ENV)
    assert isinstance(provider, SignedWebhookProvider)
    provider._now = lambda: float(NOW)
    return provider


def signed_event(**fields: Any) -> dict[str, Any]:
    doc = {
        "id": "evt-8812",
        "type": "payment",
        "account_id": "A-1001",
        "amount": "150.00",
        "paid_at": "2026-12-01T14:03:00-03:00",
        "method": "pix",
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def signed_request(raw: bytes, secret: str = ENV["SIGNED"], at: int = NOW) -> WebhookRequest:
    return WebhookRequest({HEADER: sign(secret, raw, at)}, raw)


def test_signed_round_trip() -> None:
    provider = signed_provider()
    raw = body(signed_event())
    incoming = signed_request(raw)
    provider.authenticate(incoming)
    (event,) = provider.parse_webhook(incoming)
    assert event.event_id == "signed:evt-8812" and event.kind is EventKind.PAID
    assert event.account_id == "A-1001" and event.txid == "" and event.amount == Decimal("150.00")
    assert event.at == datetime.fromisoformat("2026-12-01T14:03:00-03:00") and event.method == "pix"
    assert provider.replay_key(incoming) == provider.replay_key(signed_request(raw))
    assert provider.replay_key(incoming) != provider.replay_key(signed_request(raw, at=NOW + 1))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda raw: signed_request(raw, "another-secret-000000"), "the signature does not match"),
        (lambda raw: WebhookRequest(signed_request(raw).headers, raw + b" "), "the signature does not match"),
        (
            lambda raw: WebhookRequest(signed_request(raw).headers, raw.replace(b"150", b"950")),
            "does not match",
        ),
        (lambda raw: signed_request(raw, at=NOW - 301), "301 s from our clock (at most 300)"),
        (lambda raw: signed_request(raw, at=NOW + 900), "900 s from our clock"),
        (lambda raw: WebhookRequest({}, raw), "missing or malformed"),
        (lambda raw: WebhookRequest({HEADER: "sha256=abc"}, raw), "missing or malformed"),
        (lambda raw: WebhookRequest({HEADER: f"t=abc,v1={'0' * 64}"}, raw), "missing or malformed"),
        (lambda raw: WebhookRequest({HEADER: f"v1={'0' * 64},t={NOW}"}, raw), "missing or malformed"),
        (lambda raw: WebhookRequest({HEADER: f"t={NOW},v1={'0' * 63}"}, raw), "missing or malformed"),
        (lambda raw: WebhookRequest({HEADER: f"t={NOW},v1={'g' * 64}"}, raw), "missing or malformed"),
        (lambda raw: WebhookRequest({HEADER: f"t={NOW},v1={'0' * 64},v1={'0' * 64}"}, raw), "malformed"),
    ],
    ids=[
        "other-secret",
        "body-changed",
        "amount-changed",
        "old",
        "future",
        "no-header",
        "other-scheme",
        "bad-t",
        "order",
        "short-mac",
        "not-hex",
        "two-macs",
    ],
)
def test_signed_refused(make: Callable[[bytes], WebhookRequest], reason: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        signed_provider().authenticate(make(body(signed_event())))
    assert caught.value.status == 401 and reason in caught.value.reason
    assert ENV["SIGNED"] not in caught.value.reason + caught.value.audit


def test_signed_previous_secret_during_rotation() -> None:
    raw = body(signed_event())
    rotating = signed_provider(previous_secret_env="SIGNED_OLD")
    rotating.authenticate(signed_request(raw, ENV["SIGNED_OLD"]))
    rotating.authenticate(signed_request(raw, ENV["SIGNED"]))
    with pytest.raises(WebhookRefused):
        signed_provider().authenticate(signed_request(raw, ENV["SIGNED_OLD"]))  # rotation over


def test_signed_tolerance_option() -> None:
    raw = body(signed_event())
    signed_provider(tolerance="1000").authenticate(signed_request(raw, at=NOW - 900))


def test_signed_batch() -> None:
    events = [
        signed_event(id="e-1"),
        signed_event(id="e-2", type="refund", amount="50.00"),
        signed_event(id="e-3", account_id=None, txid="rg" + "c" * 30, amount=12),
    ]
    out = signed_provider().parse_webhook(WebhookRequest({}, body({"events": events})))
    assert [(e.event_id, e.kind, e.amount) for e in out] == [
        ("signed:e-1", EventKind.PAID, Decimal("150.00")),
        ("signed:e-2", EventKind.REFUND, Decimal("50.00")),
        ("signed:e-3", EventKind.PAID, Decimal("12")),
    ]
    assert out[2].txid == "rg" + "c" * 30 and out[2].account_id == ""


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (signed_event(id=None), "id is required"),
        (signed_event(id="evt 1"), "id is required"),
        (signed_event(id="x" * 101), "id is required"),
        (signed_event(type=None), "type must be payment or refund"),
        (signed_event(type="gift"), "type must be payment or refund"),
        (signed_event(txid="rg-1"), "txid must be letters and digits"),
        (signed_event(txid=42), "txid must be letters and digits"),
        (signed_event(account_id="A 1001"), "account_id is malformed"),
        (signed_event(account_id=["A"]), "account_id is malformed"),
        (signed_event(account_id=None), "txid or account_id is required"),
        (signed_event(amount=None), "amount must be a number like 150.00"),
        (signed_event(amount="abc"), "amount must be a number like 150.00"),
        (signed_event(amount="0"), "amount must be positive, with at most two decimals"),
        (signed_event(amount="-5.00"), "amount must be positive, with at most two decimals"),
        (signed_event(amount="1.234"), "amount must be positive, with at most two decimals"),
        (signed_event(amount="Infinity"), "amount must be positive, with at most two decimals"),
        (signed_event(paid_at=None), "paid_at must be an ISO 8601 time with its offset"),
        (signed_event(paid_at="2026-12-01T14:03:00"), "paid_at must be an ISO 8601 time with its offset"),
        (signed_event(paid_at="ontem"), "paid_at must be an ISO 8601 time with its offset"),
        ({"events": [signed_event(), signed_event(amount="x")]}, "events[1]: amount must be a number"),
        ({"events": [signed_event(type="gift")]}, "events[0]: type must be payment or refund"),
        ({"events": []}, "events must be a non-empty list"),
        ({"events": {"id": "e"}}, "events must be a non-empty list"),
        ({"events": [signed_event()] * 1001}, "at most 1000 events in one request"),
        (5, "an event must be an object"),
        (None, "an event must be an object"),
        ([signed_event()], "an event must be an object"),
        ("events", "an event must be an object"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_signed_each_malformed_field_is_named(doc: Any, reason: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        signed_provider().parse_webhook(WebhookRequest({}, body(doc)))
    assert caught.value.status == 400 and caught.value.reason.startswith(reason), caught.value.reason


def test_signed_body_not_json() -> None:
    with pytest.raises(WebhookRefused, match="not JSON"):
        signed_provider().parse_webhook(WebhookRequest({}, b"\x00{"))


async def test_signed_makes_no_charge() -> None:
    provider = signed_provider()
    request = request_for()
    charge = await provider.create_charge(request)
    assert charge.txid == request.txid and charge.status is ChargeStatus.ACTIVE and charge.copy_paste == ""
    assert await provider.fetch_charge(request.txid) is None
    assert await provider.received_since(datetime.now(UTC), datetime.now(UTC)) == []
    assert provider.makes_charges is False and provider.can_list is False


# ---------------------------------------------------------------- the factory


PIX_OK = "client_id_env=PIX_ID&client_secret_env=PIX_SECRET&webhook_token_env=PIX_HOOK&chave=" + CHAVE


@pytest.mark.parametrize(
    ("url", "kind", "name"),
    [
        ("sandbox://", SandboxPayments, "sandbox"),
        ("sandbox://?pay_ratio=0.5", SandboxPayments, "sandbox"),
        (f"pix+https://api.psp.example/v2?{PIX_OK}", PixApiProvider, "pix"),
        (f"PIX+HTTPS://api.psp.example/v2?{PIX_OK}", PixApiProvider, "pix"),
        ("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK", AsaasProvider, "asaas"),
        ("signed://?secret_env=SIGNED", SignedWebhookProvider, "signed"),
    ],
)
def test_factory_builds(url: str, kind: type, name: str) -> None:
    provider = provider_from_url(url, env=ENV)
    assert isinstance(provider, kind) and provider.name == name


def test_factory_pix_urls() -> None:
    provider = provider_from_url(f"pix+http://[::1]:8443/api/v2?{PIX_OK}", env=ENV)
    assert isinstance(provider, PixApiProvider)
    assert (
        provider.base == "http://[::1]:8443/api/v2" and provider.token_url == "http://[::1]:8443/oauth/token"
    )
    other = provider_from_url(
        f"pix+https://api.psp.example/v2?{PIX_OK}&token_url=https://oauth.psp.example/token&scope=cobv.write",
        env=ENV,
    )
    assert isinstance(other, PixApiProvider)
    assert other.token_url == "https://oauth.psp.example/token" and other.scope == "cobv.write"
    assert other.mtls == "proxy" and other.verify_header == "X-SSL-Client-Verify"


def _pix_cert_options(pki: Pki) -> dict[str, str]:
    return {"cert": pki.ours_cert, "key": pki.ours_key, "ca": pki.ca_file}


@pytest.mark.parametrize(
    ("url", "where", "named"),
    [
        ("stripe://", "payments.provider", "unknown payment provider 'stripe'"),
        ("pix+ftp://api.psp.example", "payments.provider", "unknown payment provider"),
        ("api.psp.example/v2", "payments.provider", "unknown payment provider"),
        (f"pix+https://regua:s3cr3t-in-url@api.psp.example/v2?{PIX_OK}", "payments.provider", "refused"),
        ("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&tokn=x", "payments.provider", "tokn"),
        (
            "asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&api_key=x",
            "payments.provider",
            "api_key",
        ),
        ("asaas://?webhook_token_env=ASAAS_HOOK", "payments.provider", "token_env=VARIABLE is required"),
        ("asaas://?token_env=NOT_SET&webhook_token_env=ASAAS_HOOK", "NOT_SET", "not set"),
        ("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&billing=card", "", "billing must be"),
        ("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&api=ftp://x", "", "api must be"),
        ("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&timeout=abc", "", "not a number"),
        ("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&timeout=0", "", "more than 0"),
        ("asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&attempts=-1", "", "not be negative"),
        (f"pix+https://api.psp.example/v2?{PIX_OK}&mtls=yes", "", "mtls must be proxy, required or off"),
        (f"pix+https://api.psp.example/v2?{PIX_OK}&proxies=not-an-ip", "", "proxies must be addresses"),
        (f"pix+https://api.psp.example/v2?{PIX_OK}&cert=/nonexistent/c.pem", "", "cert: no file at"),
        (f"pix+https://api.psp.example/v2?{PIX_OK.replace('&chave=' + CHAVE, '')}", "", "chave"),
        (
            f"pix+https://api.psp.example/v2?{PIX_OK.replace('PIX_SECRET', 'NO_SUCH_VAR')}",
            "NO_SUCH_VAR",
            "not set",
        ),
        (f"pix+https://api.psp.example/v2?{PIX_OK}&client_secret=abc", "", "client_secret"),
        ("pix+https:///v2?" + PIX_OK, "", "pix+https://api.psp.com.br/v2"),
        ("signed://?secret_env=PIX_ID", "PIX_ID", "at least 16 characters"),
        ("signed://", "", "secret_env=VARIABLE is required"),
        ("sandbox://?pay_ratio=2", "", "pay_ratio is a share"),
    ],
)
def test_factory_refuses(url: str, where: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        provider_from_url(url, env=ENV)
    text = str(caught.value)
    assert named in text and where in text
    for secret in (*ENV.values(), "s3cr3t-in-url"):
        assert secret not in text


def test_factory_key_without_cert_and_unreadable_files(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give cert too"):
        provider_from_url(f"pix+https://api.psp.example/v2?{PIX_OK}&key={pki.ours_key}", env=ENV)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match="certificate files cannot be read"):
        provider_from_url(f"pix+https://api.psp.example/v2?{PIX_OK}&cert={garbage}", env=ENV)
    provider = provider_from_url(
        f"pix+https://api.psp.example/v2?{PIX_OK}&{urlencode(_pix_cert_options(pki))}", env=ENV
    )
    assert isinstance(provider, PixApiProvider) and provider.http.client_cert

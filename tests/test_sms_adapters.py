"""The SMS adapters against local servers speaking each provider's API.

One contract suite runs against every adapter (generic JSON, Twilio, Zenvia, SMPP), each
built by the factory from its URL; provider-specific tests check the wire shapes; the
factory's tests check URLs, secrets and errors.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
import redis.asyncio as aioredis

from dialer.errors import ConfigError, SmsPermanent, SmsRetryable
from sms_gateway.base import SmsGateway, SmsMessage, send_all
from sms_gateway.encoding import analyse
from sms_gateway.factory import gateway_from_settings, gateway_from_urls, provider_from_url
from sms_gateway.http_json import HttpJsonSms
from sms_gateway.resilient import ResilientSms
from sms_gateway.sandbox import SandboxSms
from sms_gateway.smpp import SmppSms
from sms_gateway.twilio import TwilioSms
from sms_gateway.zenvia import ZenviaSms
from tests.sms_servers import Fault, GenericServer, SmppServer, TwilioServer, ZenviaServer, twilio_error

SECRETS = {
    "GEN_TOKEN": "gen-secret-token",
    "TW_TOKEN": "tw-secret-token",
    "ZV_TOKEN": "zv-secret-token",
    "SMPP_PW": "smpp-pw",
}
WRONG = {
    "GEN_TOKEN": "gen-WRONG-token",
    "TW_TOKEN": "tw-WRONG-token",
    "ZV_TOKEN": "zv-WRONG-token",
    "SMPP_PW": "nopenope",
}
ACCOUNT = "AC" + "0" * 32
TEMPLATE = '{"to": "{to}", "message": "{text}", "ref": "{id}", "sender": "{from}"}'
TEXT_UCS2 = (
    "Olá, Maria Silva. Aqui é Ana, da Central de Atendimento. Por favor, ligue para "
    "0800 123 4567 em horário comercial. Obrigada."
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Case:
    """One adapter with its server and the levers the contract pulls."""

    name: str
    url: Callable[[str], str]  # port -> the provider URL
    port: int
    throttle: Callable[[], None]  # the next send is throttled, retry after 2 s
    trouble: Callable[[], None]  # the next send meets a provider fault
    stall: Callable[[], None]  # the next send gets no answer in time
    invalid_number: str
    refuse_invalid: Callable[[], None]  # make the server refuse invalid_number

    def gateway(self, env: dict[str, str] | None = None, port: int | None = None) -> SmsGateway:
        gw, _ = provider_from_url(self.url(str(port or self.port)), env=env or SECRETS)
        return gw


@pytest.fixture(params=["http", "twilio", "zenvia", "smpp"])
async def case(request) -> AsyncIterator[Case]:
    name = request.param
    if name == "smpp":
        smsc = SmppServer()
        await smsc.start()

        def stall() -> None:
            smsc.submit_delay = 4.0  # beyond the 1.5 s timeout, however busy the machine

        yield Case(
            name,
            lambda port: (
                f"smpp://regua@127.0.0.1:{port}?password_env=SMPP_PW&system_type=COB&source=REGUA"
                "&price=0.05&timeout=1.5&throttle_pause=2"
            ),
            smsc.port,
            lambda: smsc.statuses.append(0x58),
            lambda: smsc.statuses.append(0x08),
            stall,
            "+5511900000000",
            lambda: smsc.refuse_numbers.add("5511900000000"),
        )
        smsc.submit_delay = 0
        await smsc.stop()
        return
    server = {"http": GenericServer, "twilio": TwilioServer, "zenvia": ZenviaServer}[name]()
    await server.start()
    if name == "http":

        def url(port: str) -> str:
            return (
                f"http://127.0.0.1:{port}/api/v1/sms?auth_env=GEN_TOKEN&auth_scheme=Bearer"
                f"&id_path=data.message_id&body={quote(TEMPLATE)}&from=REGUA&price=0.05&timeout=1.5"
            )

        throttled = Fault(429, {"message": "slow down"}, retry_after="2")
        trouble = Fault(503, {"message": "maintenance"})
        invalid = "+123"
    elif name == "twilio":

        def url(port: str) -> str:
            return (
                f"twilio://{ACCOUNT}@?from=%2B15550001111&token_env=TW_TOKEN&api=http://127.0.0.1:{port}"
                "&price=0.05&timeout=1.5&status_callback=https://regua.example/sms/twilio"
            )

        throttled = Fault(429, twilio_error(20429, "Too Many Requests", 429), retry_after="2")
        trouble = Fault(500, twilio_error(20500, "Internal Server Error", 500))
        invalid = "+123"
    else:

        def url(port: str) -> str:
            return (
                f"zenvia://?from=regua&token_env=ZV_TOKEN&api=http://127.0.0.1:{port}&price=0.05&timeout=1.5"
            )

        throttled = Fault(429, {"code": "TOO_MANY_REQUESTS", "message": "Too many requests"}, retry_after="2")
        trouble = Fault(500, {"code": "INTERNAL_ERROR", "message": "Internal error"})
        invalid = "+551198"
    yield Case(
        name,
        url,
        server.port,
        lambda: server.fail_next(throttled),
        lambda: server.fail_next(trouble),
        lambda: server.fail_next(Fault(200, {}, delay=4.0)),  # beyond the 1.5 s timeout
        invalid,
        lambda: None,
    )
    await server.stop()


def message(
    text: str = "Pague sua fatura pelo Pix. Duvidas: 0800 123 4567", key: str = "att-1"
) -> SmsMessage:
    return SmsMessage("+5511987654321", text, key, "nov26", "limited")


# ---------------------------------------------------------------- the contract


@pytest.mark.parametrize("text", ["Pague sua fatura pelo Pix. Duvidas: 0800 123 4567", TEXT_UCS2])
async def test_send_reports_what_went_out(case, text):
    gw = case.gateway()
    try:
        result = await gw.send(message(text))
    finally:
        await gw.close()
    info = analyse(text)
    assert result.provider == case.name == gw.name
    assert result.message_id and result.message_id != "unknown"
    assert (result.segments, result.encoding) == (info.segments, info.encoding)
    assert result.cost == pytest.approx(0.05 * info.segments)
    assert not result.duplicate and not result.sandbox


async def test_throttling_is_retryable_and_says_when(case):
    gw = case.gateway()
    try:
        case.throttle()
        with pytest.raises(SmsRetryable) as caught:
            await gw.send(message())
        assert caught.value.retry_after == pytest.approx(2.0)
        assert (await gw.send(message(key="att-2"))).provider == case.name
    finally:
        await gw.close()


async def test_provider_trouble_is_retryable(case):
    gw = case.gateway()
    try:
        case.trouble()
        with pytest.raises(SmsRetryable):
            await gw.send(message())
        assert gw.health()["state"] == "down"
        await gw.send(message(key="att-2"))
        assert gw.health()["state"] == "up"
    finally:
        await gw.close()


async def test_an_invalid_number_is_permanent(case):
    case.refuse_invalid()
    gw = case.gateway()
    try:
        with pytest.raises(SmsPermanent):
            await gw.send(SmsMessage(case.invalid_number, "Oi", "att-1"))
        assert gw.health()["state"] == "up"  # the provider answered: it is not down
    finally:
        await gw.close()


async def test_wrong_credentials_are_permanent_and_never_shown(case, caplog):
    caplog.set_level(logging.DEBUG)
    gw = case.gateway(env=WRONG)
    wrong = WRONG[
        {"http": "GEN_TOKEN", "twilio": "TW_TOKEN", "zenvia": "ZV_TOKEN", "smpp": "SMPP_PW"}[case.name]
    ]
    try:
        with pytest.raises(SmsPermanent) as caught:
            await gw.send(message())
    finally:
        await gw.close()
    shown = " ".join(
        [str(caught.value), repr(caught.value), repr(gw), json.dumps(gw.health(), default=str), caplog.text]
    )
    shown += repr(getattr(gw, "config", ""))
    assert wrong not in shown
    assert SECRETS[next(k for k, v in WRONG.items() if v == wrong)] not in shown


async def test_no_answer_in_time_is_retryable(case):
    gw = case.gateway()
    try:
        case.stall()
        with pytest.raises(SmsRetryable):
            await gw.send(message())
    finally:
        await gw.close()


async def test_nobody_listening_is_retryable(case):
    gw = case.gateway(port=closed_port())
    try:
        with pytest.raises(SmsRetryable):
            await gw.send(message())
    finally:
        await gw.close()


async def test_many_at_once_and_close_twice(case):
    gw = case.gateway()
    results = await asyncio.gather(*(gw.send(message(key=f"k{i}")) for i in range(30)))
    assert len({r.message_id for r in results}) == 30
    health = gw.health()
    assert health["provider"] == case.name and health["sent"] == 30
    await gw.close()
    await gw.close()


# ---------------------------------------------------------------- Twilio's wire shape


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioServer]:
    server = TwilioServer(ACCOUNT)
    await server.start()
    yield server
    await server.stop()


def twilio_gateway(server: TwilioServer, extra: str = "&from=%2B15550001111") -> SmsGateway:
    url = f"twilio://{ACCOUNT}@?token_env=TW_TOKEN&api={server.url}{extra}"
    return provider_from_url(url, env=SECRETS)[0]


async def test_twilio_request_shape(twilio):
    gw = twilio_gateway(twilio, "&from=%2B15550001111&status_callback=https://regua.example/sms/tw?x=1")
    try:
        result = await gw.send(message(TEXT_UCS2, key="nov26:C1:3"))
    finally:
        await gw.close()
    req = twilio.requests[0]
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert req.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert base64.b64decode(req.headers["Authorization"][6:]).decode() == f"{ACCOUNT}:tw-secret-token"
    assert req.form == {
        "To": "+5511987654321",
        "From": "+15550001111",
        "Body": TEXT_UCS2,
        "StatusCallback": "https://regua.example/sms/tw?x=1&regua_key=nov26%3AC1%3A3",
    }
    assert result.message_id.startswith("SM") and len(result.message_id) == 34


async def test_twilio_messaging_service(twilio):
    gw = twilio_gateway(twilio, "&messaging_service=MG" + "1" * 32)
    try:
        await gw.send(message())
    finally:
        await gw.close()
    assert twilio.requests[0].form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in twilio.requests[0].form


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (
            Fault(400, twilio_error(21610, "Attempt to send to unsubscribed recipient", 400)),
            SmsPermanent,
            "21610",
        ),
        (Fault(400, twilio_error(21211, "Invalid 'To' Phone Number", 400)), SmsPermanent, "21211"),
        (
            Fault(
                400,
                twilio_error(
                    21611, "This 'From' number has exceeded the maximum number of queued messages", 400
                ),
            ),
            SmsRetryable,
            "21611",
        ),
        (Fault(401, twilio_error(20003, "Authenticate", 401)), SmsPermanent, "authentication refused"),
        (Fault(503, None), SmsRetryable, "HTTP 503"),
        (
            Fault(
                201,
                {
                    "sid": "SM" + "f" * 32,
                    "status": "failed",
                    "error_code": 30007,
                    "error_message": "Carrier violation",
                },
            ),
            SmsPermanent,
            "30007",
        ),
    ],
)
async def test_twilio_errors(twilio, fault, kind, words):
    twilio.fail_next(fault)
    gw = twilio_gateway(twilio)
    try:
        with pytest.raises(kind, match=words):
            await gw.send(message())
    finally:
        await gw.close()


async def test_twilio_unsubscribed_recipient_is_permanent(twilio):
    twilio.unsubscribed.add("+5511987654321")
    gw = twilio_gateway(twilio)
    try:
        with pytest.raises(SmsPermanent, match="21610 Attempt to send to unsubscribed recipient") as refused:
            await gw.send(message())
        assert refused.value.opted_out  # the worker suppresses the number for SMS
        twilio.fail_next(Fault(400, twilio_error(21211, "Invalid 'To' Phone Number", 400)))
        with pytest.raises(SmsPermanent, match="21211") as invalid:
            await gw.send(message(key="other"))
        assert not invalid.value.opted_out
    finally:
        await gw.close()


async def test_worker_suppresses_a_number_twilio_reports_unsubscribed(twilio, redis_url, settings, tmp_path):
    """Twilio 21610 (the person replied STOP to our sender there) is an opt-out: the number is
    suppressed for SMS at once, audited, and never texted again; calls are not affected."""
    from datetime import datetime, timedelta

    from tests.runtime_helpers import campaign_csv, make_rig

    start = datetime.fromisoformat("2026-11-23T10:00:00-03:00")  # Monday; D+13
    rig = await make_rig(redis_url, settings, start)
    gw = twilio_gateway(twilio)
    rig.sms = gw  # type: ignore[assignment]
    stopped, other = "+5511987654313", "+5511987654323"  # both: no answer -> fallback SMS
    twilio.unsubscribed.add(stopped)
    try:
        rows = [("U3", "11987654313", "10/11/2026"), ("K3", "11987654323", "10/11/2026")]
        await rig.load(campaign_csv(tmp_path, rows), campaign="tw")
        await rig.drive(start)
        sup = {e["number"]: e for e in await rig.store.suppression_list()}
        assert set(sup) == {stopped}
        assert sup[stopped]["reason"] == "opt_out" and sup[stopped]["channel"] == "sms"
        assert sup[stopped]["source"] == "sms-provider:twilio"
        events = await rig.store.timeline("U3")
        assert any(e["kind"] == "suppressed" and e["channel"] == "sms" for e in events)

        def texts_to(number: str) -> int:
            return sum(1 for r in twilio.requests if r.form.get("To") == number)

        assert texts_to(stopped) == 1 and texts_to(other) == 1
        await rig.drive(start + timedelta(days=10), step=timedelta(hours=3))
        assert texts_to(stopped) == 1  # never again
        assert texts_to(other) > 1  # the régua went on texting the other debtor
        (u3,) = await rig.store.load_accounts("tw", ["U3"])
        assert sum(1 for a in u3.history if a.channel.value == "voice") > 1  # calls go on
    finally:
        await gw.close()
        await rig.close()


# ---------------------------------------------------------------- Zenvia's wire shape


@pytest.fixture
async def zenvia() -> AsyncIterator[ZenviaServer]:
    server = ZenviaServer()
    await server.start()
    yield server
    await server.stop()


def zenvia_gateway(server: ZenviaServer) -> SmsGateway:
    return provider_from_url(f"zenvia://?from=regua&token_env=ZV_TOKEN&api={server.url}", env=SECRETS)[0]


async def test_zenvia_request_shape(zenvia):
    gw = zenvia_gateway(zenvia)
    try:
        result = await gw.send(message(TEXT_UCS2))
    finally:
        await gw.close()
    req = zenvia.requests[0]
    assert req.path == "/v2/channels/sms/messages"
    assert req.headers["X-API-TOKEN"] == "zv-secret-token"
    assert req.json == {
        "from": "regua",
        "to": "5511987654321",
        "contents": [{"type": "text", "text": TEXT_UCS2}],
    }
    assert len(result.message_id) == 36  # the message object's id


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (
            Fault(
                400,
                {
                    "code": "VALIDATION_ERROR",
                    "message": "Validation error",
                    "details": [{"code": "X", "path": "to", "message": "bad"}],
                },
            ),
            SmsPermanent,
            "VALIDATION_ERROR Validation error \\(to bad\\)",
        ),
        (Fault(409, {"code": "DUPLICATED", "message": "Entity already exists"}), SmsPermanent, "DUPLICATED"),
        (Fault(500, {"code": "INTERNAL_ERROR", "message": "Internal error"}), SmsRetryable, "INTERNAL_ERROR"),
        (Fault(502, None), SmsRetryable, "HTTP 502"),
        (Fault(404, {"code": "NOT_FOUND", "description": "Not found"}), SmsPermanent, "NOT_FOUND Not found"),
    ],
)
async def test_zenvia_errors(zenvia, fault, kind, words):
    zenvia.fail_next(fault)
    gw = zenvia_gateway(zenvia)
    try:
        with pytest.raises(kind, match=words):
            await gw.send(message())
    finally:
        await gw.close()


async def test_zenvia_refuses_a_non_e164_number_before_sending(zenvia):
    gw = zenvia_gateway(zenvia)
    try:
        with pytest.raises(SmsPermanent, match=r"not an E\.164"):
            await gw.send(SmsMessage("011 98765-4321", "Oi", "k"))
    finally:
        await gw.close()
    assert zenvia.requests == []


# ---------------------------------------------------------------- the generic gateway


@pytest.fixture
async def generic() -> AsyncIterator[GenericServer]:
    server = GenericServer()
    await server.start()
    yield server
    await server.stop()


def generic_gateway(server: GenericServer, query: str = "") -> SmsGateway:
    url = (
        f"{server.url}/api/v1/sms?auth_env=GEN_TOKEN&auth_scheme=Bearer&id_path=data.message_id"
        f"&body={quote(TEMPLATE)}&from=REGUA{query}"
    )
    return provider_from_url(url, env=SECRETS)[0]


async def test_generic_template_escapes_every_placeholder(generic):
    tricky = 'Diga "SIM" ou \\NAO\\\nLinha 2\t{to} 🙏 ção </script>'
    gw = generic_gateway(generic)
    try:
        result = await gw.send(SmsMessage("+5511987654321", tricky, 'key "with" quotes'))
    finally:
        await gw.close()
    req = generic.requests[0]
    assert req.json == {
        "to": "+5511987654321",
        "message": tricky,
        "ref": 'key "with" quotes',
        "sender": "REGUA",
    }
    assert req.headers["Idempotency-Key"] == 'key "with" quotes'
    assert req.headers["Authorization"] == "Bearer gen-secret-token"
    assert result.message_id == "gw-000001"


async def test_generic_gateway_deduplicates_on_the_idempotency_key(generic):
    gw = generic_gateway(generic)
    try:
        first = await gw.send(message(key="same"))
        again = await gw.send(message(key="same"))
    finally:
        await gw.close()
    assert first.message_id == again.message_id and generic.unique_sends == 1


async def test_generic_other_query_parameters_stay_on_the_url(generic):
    gw = generic_gateway(generic, "&channel=sms&idempotency_header=")
    try:
        await gw.send(message())
    finally:
        await gw.close()
    assert "Idempotency-Key" not in generic.requests[0].headers
    assert isinstance(gw, HttpJsonSms) and urlsplit(gw.config.url).query == "channel=sms"


async def test_generic_success_without_an_id_counts_as_sent(generic, caplog):
    generic.fail_next(Fault(202, {"ok": True}))
    gw = generic_gateway(generic)
    try:
        result = await gw.send(message())
    finally:
        await gw.close()
    assert result.message_id == "unknown"
    assert "without an id" in caplog.text


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ('{"to": {to}, "text": "{text}"}', "placeholders go inside quotes"),
        ('{"to": "{to}", "text": "{text}"', "not JSON"),
    ],
)
def test_generic_bad_templates_are_config_errors(template, reason):
    with pytest.raises(ConfigError, match=reason):
        provider_from_url(f"https://gw.example/send?body={quote(template)}", env={})


# ---------------------------------------------------------------- the factory


def test_each_scheme_builds_its_adapter():
    env = {**SECRETS}
    assert isinstance(
        provider_from_url("https://gw.example/send?auth_env=GEN_TOKEN", env=env)[0], HttpJsonSms
    )
    assert isinstance(
        provider_from_url(f"twilio://{ACCOUNT}@?from=%2B15550001111&token_env=TW_TOKEN", env=env)[0],
        TwilioSms,
    )
    assert isinstance(provider_from_url("zenvia://?from=regua&token_env=ZV_TOKEN", env=env)[0], ZenviaSms)
    smpp = provider_from_url(
        "smpp://regua@smsc.example:2776?password_env=SMPP_PW&source=REGUA&bind=transmitter", env=env
    )[0]
    assert isinstance(smpp, SmppSms)
    assert (smpp.config.host, smpp.config.port, smpp.config.bind) == ("smsc.example", 2776, "transmitter")


def test_an_unknown_scheme_says_what_is_supported():
    with pytest.raises(ConfigError) as caught:
        provider_from_url("nexmo://key@?secret_env=X", env={})
    text = str(caught.value)
    assert "service.sms_provider" in text and "nexmo://" in text
    for scheme in ("sandbox://", "http(s)://", "twilio://", "zenvia://", "smpp://"):
        assert scheme in text
    assert "nothing to install" in text


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"twilio://{ACCOUNT}@?from=%2B15550001111", "token_env=VARIABLE is required"),
        (f"twilio://{ACCOUNT}@?from=%2B15550001111&token_env=NOT_SET", "NOT_SET: not set"),
        (f"twilio://{ACCOUNT}@?token_env=TW_TOKEN", "from=+E164"),
        ("twilio://?from=%2B15550001111&token_env=TW_TOKEN", "account SID"),
        (f"twilio://{ACCOUNT}@?from=%2B1&token_env=TW_TOKEN&frm=x", "unknown option"),
        ("zenvia://?token_env=ZV_TOKEN", "from=<the SMS account alias"),
        ("smpp://smsc.example?password_env=SMPP_PW", "system_id and host are required"),
        ("smpp://regua@smsc.example?password_env=SMPP_PW&bind=receiver", "bind must be one of"),
        ("smpp://regua@smsc.example?password_env=SMPP_PW&window=lots", "not a number"),
        ("smpp://regua@smsc.example:port?password_env=SMPP_PW", "port is not a number"),
    ],
)
def test_configuration_mistakes(url, words):
    with pytest.raises(ConfigError, match=words.replace("+", r"\+").replace("(", r"\(")):
        provider_from_url(url, env=SECRETS)


@pytest.mark.parametrize(
    "url",
    [
        f"twilio://{ACCOUNT}:tw-inline-secret@?from=%2B15550001111",
        "smpp://regua:tw-inline-secret@smsc.example:2775",
        "https://user:tw-inline-secret@gw.example/send",
    ],
)
def test_a_secret_in_the_url_is_refused_and_not_repeated(url):
    with pytest.raises(ConfigError) as caught:
        provider_from_url(url, env=SECRETS)
    assert "tw-inline-secret" not in str(caught.value)
    assert "_env" in str(caught.value)


async def test_sandbox_and_resilient_wiring(redis_url, settings):
    from dialer.clock import SystemClock
    from dialer.store import Store

    store = await Store.connect(redis_url)
    clock = SystemClock()
    try:
        assert isinstance(
            gateway_from_urls("sandbox://", ledger=store, outbox=store, clock=clock), SandboxSms
        )
        with pytest.raises(ConfigError, match="sandbox cannot be combined"):
            gateway_from_urls(
                "sandbox://",
                "zenvia://?from=regua&token_env=ZV_TOKEN",
                ledger=store,
                outbox=store,
                clock=clock,
                env=SECRETS,
            )
        gw = gateway_from_urls(
            f"twilio://{ACCOUNT}@?from=%2B15550001111&token_env=TW_TOKEN&rate=40&burst=5&max_attempts=4"
            "&circuit_failures=7&circuit_cool_down=12&sending_timeout=60",
            "zenvia://?from=regua&token_env=ZV_TOKEN&rate=10",
            ledger=store,
            clock=clock,
            env=SECRETS,
        )
        assert isinstance(gw, ResilientSms) and gw.name == "twilio|zenvia"
        assert (gw.policy.max_attempts, gw.policy.circuit_failures, gw.policy.circuit_cool_down) == (
            4,
            7,
            12.0,
        )
        assert gw.policy.sending_timeout == 60.0
        assert (gw.primary.bucket.rate, gw.primary.bucket.burst) == (40.0, 5.0)
        assert gw.secondary is not None and gw.secondary.bucket.rate == 10.0
        health = gw.health()
        assert health["primary"]["provider"] == "twilio" and health["secondary"]["circuit"] == "closed"
        await gw.close()

        service = settings.service.model_copy(update={"sms_provider": "sandbox://"})
        assert isinstance(
            gateway_from_settings(settings.model_copy(update={"service": service}), store, clock),
            SandboxSms,
        )
    finally:
        await store.close()


async def test_sandbox_batch_sends_each_key_once(redis_url):
    """send_many (the worker's path) and send (one message) share the outbox and its keys:
    a key already sent is never written twice, in the same batch or a later one."""
    from datetime import datetime

    from dialer.clock import ManualClock
    from dialer.store import Store, keys

    client = aioredis.from_url(redis_url, decode_responses=True)
    store = await Store.connect(redis_url)
    await client.delete(keys.OUTBOX, keys.SMS_SENT)
    try:
        sms = SandboxSms(store, ManualClock(datetime.fromisoformat("2026-11-23T10:00:00-03:00")))
        first = [SmsMessage(f"+55119876543{i:02d}", f"Olá {i}", f"c:k{i}", "c", "limited") for i in range(5)]
        results = await send_all(sms, [*first, first[2]])  # a key twice in one batch
        assert [r.duplicate for r in results] == [False] * 5 + [True]  # type: ignore[union-attr]
        assert results[5].message_id == results[2].message_id  # type: ignore[union-attr]
        assert results[0].encoding == "UCS-2" and results[0].sandbox  # type: ignore[union-attr]
        again = await sms.send(first[4])
        assert again.duplicate and again.message_id == results[4].message_id  # type: ignore[union-attr]
        outbox = await client.xrange(keys.OUTBOX)
        assert sorted(f["key"] for _, f in outbox) == [f"c:k{i}" for i in range(5)]
        assert sms.sent == 5
    finally:
        await client.aclose()
        await store.close()

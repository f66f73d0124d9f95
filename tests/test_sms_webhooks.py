"""Delivery receipts, inbound replies, signatures and opt-out keywords (pure functions)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.errors import InputError
from sms_gateway.webhooks import (
    DeliveryReceipt,
    InboundMessage,
    opt_out_keyword,
    parse_generic,
    parse_twilio,
    parse_zenvia,
    regua_signature,
    smpp_receipt,
    twilio_signature,
    verify_regua_signature,
    verify_shared_token,
    verify_twilio_signature,
)

# Twilio's published request-validation example (its SDKs' tests use the same vector)
TW_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TW_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TW_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_twilio_signature_matches_the_published_vector():
    assert twilio_signature("12345", TW_URL, TW_PARAMS) == TW_SIGNATURE
    assert verify_twilio_signature("12345", TW_URL, TW_PARAMS, TW_SIGNATURE)


def test_twilio_signature_with_repeated_parameters():
    repeated = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert twilio_signature("12345", TW_URL, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("12345", TW_URL, {**TW_PARAMS, "Digits": "9999"}, TW_SIGNATURE),  # a value changed
        ("12345", TW_URL + "&extra=1", TW_PARAMS, TW_SIGNATURE),  # the URL changed
        ("54321", TW_URL, TW_PARAMS, TW_SIGNATURE),  # another account's token
        ("12345", TW_URL, TW_PARAMS, ""),  # no header
        ("12345", TW_URL, TW_PARAMS, None),
        ("", TW_URL, TW_PARAMS, TW_SIGNATURE),  # no token configured: never valid
        ("12345", TW_URL, TW_PARAMS, "invalid 王"),
    ],
)
def test_twilio_signature_refusals(token, url, params, signature):
    assert not verify_twilio_signature(token, url, params, signature)


def test_twilio_signature_with_or_without_the_default_port():
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert verify_twilio_signature("12345", with_port, TW_PARAMS, TW_SIGNATURE)
    signed_with_port = twilio_signature("12345", with_port, TW_PARAMS)
    assert verify_twilio_signature("12345", TW_URL, TW_PARAMS, signed_with_port)
    assert not verify_twilio_signature(
        "12345", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", TW_PARAMS, TW_SIGNATURE
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("delivered", "delivered"),
        ("read", "delivered"),
        ("undelivered", "failed"),
        ("failed", "failed"),
        ("sent", "sent"),
        ("queued", "sent"),
        ("accepted", "sent"),
        ("sending", "sent"),
        ("receiving", "unknown"),
    ],
)
def test_twilio_status_callback(status, expected):
    params = {
        "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "MessageStatus": status,
        "SmsSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "SmsStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "From": "+15557122661",
        "To": "+15558675310",
        "ApiVersion": "2010-04-01",
    }
    if expected == "failed":
        params["ErrorCode"] = "30003"
    receipt = parse_twilio(params)
    assert receipt == DeliveryReceipt(
        "twilio", "SM1f0e8ae6ade43cb3c0ce4525424e404f", expected, "30003" if expected == "failed" else ""
    )


def test_twilio_incoming_message():
    params = {
        "MessageSid": "SM" + "a" * 32,
        "SmsSid": "SM" + "a" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": "+5511987654321",
        "To": "+15558675310",
        "Body": "SAIR",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    assert parse_twilio(params) == InboundMessage("twilio", "+5511987654321", "SAIR")


def test_twilio_garbage_is_refused():
    with pytest.raises(InputError):
        parse_twilio({"foo": "bar"})


ZENVIA_STATUS = {
    "id": "f5a5a1b0-0000-4000-8000-000000000001",
    "timestamp": "2026-11-23T13:01:02.000Z",
    "type": "MESSAGE_STATUS",
    "subscriptionId": "sub-1",
    "channel": "sms",
    "messageId": "2ab6ed0c-9a52-4c64-b34c-9e9d0f0a7c11",
    "contentIndex": 0,
    "messageStatus": {
        "timestamp": "2026-11-23T13:01:01.000Z",
        "code": "DELIVERED",
        "description": "The message has been delivered by the provider",
    },
}


@pytest.mark.parametrize(
    ("code", "expected", "error"),
    [
        ("DELIVERED", "delivered", ""),
        ("READ", "delivered", ""),
        ("SENT", "sent", ""),
        ("NOT_DELIVERED", "failed", "UNDELIVERABLE-42"),
        ("REJECTED", "failed", "UNDELIVERABLE-42"),
        ("SOMETHING_NEW", "unknown", ""),
    ],
)
def test_zenvia_status(code, expected, error):
    event = json.loads(json.dumps(ZENVIA_STATUS))
    event["messageStatus"]["code"] = code
    if expected == "failed":
        event["messageStatus"]["causes"] = [
            {"channelErrorCode": "UNDELIVERABLE-42", "reason": "absent subscriber"}
        ]
    receipt = parse_zenvia(json.dumps(event).encode())
    assert receipt == DeliveryReceipt("zenvia", ZENVIA_STATUS["messageId"], expected, error)


def test_zenvia_incoming_message():
    event = {
        "id": "evt-2",
        "timestamp": "2026-11-23T13:05:00.000Z",
        "type": "MESSAGE",
        "subscriptionId": "sub-2",
        "channel": "sms",
        "direction": "IN",
        "message": {
            "id": "msg-9",
            "from": "5511987654321",
            "to": "regua",
            "direction": "IN",
            "channel": "sms",
            "contents": [{"type": "text", "text": "Pare!"}],
        },
    }
    assert parse_zenvia(json.dumps(event)) == InboundMessage("zenvia", "+5511987654321", "Pare!")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"type": "MESSAGE_STATUS"}).encode(),
        json.dumps({"type": "X"}).encode(),
    ],
)
def test_zenvia_bad_bodies(body):
    with pytest.raises(InputError):
        parse_zenvia(body)


def test_zenvia_shared_token():
    assert verify_shared_token("s3cret-token", "s3cret-token")
    assert not verify_shared_token("s3cret-token", "s3cret-tokem")
    assert not verify_shared_token("s3cret-token", None)
    assert not verify_shared_token("", "")


def test_generic_signature_and_receipt():
    body = json.dumps({"message_id": "gw-000001", "status": "DELIVRD", "error": None}).encode()
    expected = hmac.new(b"shared", body, hashlib.sha256).hexdigest()
    assert regua_signature("shared", body) == expected
    assert verify_regua_signature("shared", body, expected)
    assert verify_regua_signature("shared", body, "sha256=" + expected.upper())
    assert not verify_regua_signature("shared", body + b" ", expected)
    assert not verify_regua_signature("other", body, expected)
    assert not verify_regua_signature("shared", body, None)
    assert parse_generic(body) == DeliveryReceipt("http", "gw-000001", "delivered", "")
    failed = parse_generic(b'{"message_id": 17, "status": "undelivered", "error": "absent"}')
    assert failed == DeliveryReceipt("http", "17", "failed", "absent")


def test_generic_inbound():
    reply = parse_generic(b'{"from": "55 11 98765-4321", "text": "stop"}')
    assert reply == InboundMessage("http", "+5511987654321", "stop")
    with pytest.raises(InputError):
        parse_generic(b'{"from": "98765", "text": "stop"}')  # not an international number
    with pytest.raises(InputError):
        parse_generic(b'{"hello": 1}')


@pytest.mark.parametrize(
    ("stat", "status", "error"),
    [
        ("DELIVRD", "delivered", ""),
        ("UNDELIV", "failed", "001"),
        ("REJECTD", "failed", "001"),
        ("EXPIRED", "failed", "001"),
        ("ACCEPTD", "sent", ""),
        ("ENROUTE", "sent", ""),
        ("UNKNOWN", "unknown", ""),
    ],
)
def test_smpp_receipt(stat, status, error):
    assert smpp_receipt("0A1B", stat, "001") == DeliveryReceipt("smpp", "0A1B", status, error)


# ---------------------------------------------------------------- opt-out keywords


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [
        ("SAIR", "BR", "SAIR"),
        ("sair", "BR", "SAIR"),
        ("  Sair!! ", "BR", "SAIR"),
        ("Párar.", "BR", "PARAR"),
        ("PARE", "BR", "PARE"),
        ("pare...", "BR", "PARE"),
        ("Cancelar", "BR", "CANCELAR"),
        ("descadastrar", "BR", "DESCADASTRAR"),
        ("Stop", "BR", "STOP"),
        ("STOP", "US", "STOP"),
        ("sair", "US", "SAIR"),  # a Portuguese speaker in the US is heard too
        ("quit", "US", "QUIT"),
        ("End.", "US", "END"),
        ("revoke", "US", "REVOKE"),
        ("OPTOUT", "US", "OPTOUT"),
        ("opt out", "US", "OPTOUT"),
        ("Opt-Out!", "US", "OPTOUT"),
        ("unsubscribe", "US", "UNSUBSCRIBE"),
        ("STOPALL", "US", "STOPALL"),
        ("cancel", "US", "CANCEL"),
        # US words are not keywords on Brazilian numbers
        ("quit", "BR", None),
        ("end", "BR", None),
        ("unsubscribe", "BR", None),
        # not alone: a sentence is for a person to read
        ("quero sair", "BR", None),
        ("não vou parar de pagar", "BR", None),
        ("stop calling me", "US", None),
        ("SAIRR", "BR", None),
        ("sa ir", "BR", None),
        ("", "BR", None),
        ("!!!", "BR", None),
        ("ok", "BR", None),
    ],
)
def test_opt_out_keywords(text, country, expected):
    assert opt_out_keyword(text, country) == expected


KEYWORDS_ALL = ["SAIR", "PARAR", "PARE", "CANCELAR", "DESCADASTRAR", "STOP"]
KEYWORDS_US = ["QUIT", "END", "REVOKE", "OPTOUT", "UNSUBSCRIBE", "STOPALL"]
ACCENT = {"A": "ÁÂÃÀ", "E": "ÉÊ", "I": "Í", "O": "ÓÔÕ", "U": "ÚÜ", "C": "Ç"}


@st.composite
def disguised(draw, words):
    word = draw(st.sampled_from(words))
    letters = []
    for c in word:
        if c in ACCENT and draw(st.booleans()):
            c = draw(st.sampled_from(ACCENT[c]))
        letters.append(c.lower() if draw(st.booleans()) else c)
    punct = st.text(alphabet=st.sampled_from(list(" .,!?;:-()\"'¡¿…\t\n")), max_size=4)
    return word, draw(punct) + "".join(letters) + draw(punct)


@settings(max_examples=300, deadline=None)
@given(disguised(KEYWORDS_ALL), st.sampled_from(["BR", "US", "br", "us"]))
def test_any_case_accent_or_punctuation_is_recognised(pair, country):
    word, text = pair
    assert opt_out_keyword(text, country) == word


@settings(max_examples=200, deadline=None)
@given(disguised(KEYWORDS_US))
def test_us_keywords_only_for_us_numbers(pair):
    word, text = pair
    assert opt_out_keyword(text, "US") == word
    assert opt_out_keyword(text, "BR") is None


@settings(max_examples=200, deadline=None)
@given(
    disguised(KEYWORDS_ALL),
    st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz")), min_size=1, max_size=8),
)
def test_a_keyword_with_another_word_is_not_an_opt_out(pair, other):
    _, text = pair
    assert opt_out_keyword(f"{text} {other}", "BR") is None
    assert opt_out_keyword(f"{other} {text}", "US") is None


def test_non_ascii_signatures_are_refused_not_raised():
    assert not verify_regua_signature("shared", b"{}", "sha256=王")
    assert not verify_shared_token("token", "tokén")


async def test_an_opt_out_is_recorded_by_a_process_without_an_sms_gateway(redis_url, settings):
    """An API-only process takes the webhook: the number is suppressed at once; only the
    confirmation waits for a process that can send it."""
    from datetime import datetime

    from dialer.domain import Channel
    from dialer.runtime import operations
    from dialer.store import Store
    from sms_gateway.webhooks import InboundMessage

    store = await Store.connect(redis_url)
    try:
        now = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
        out = await operations.sms_reply(
            store, None, settings, now, InboundMessage("twilio", "+5511987654321", "SAIR")
        )
        assert out["opt_out"] is True and out["confirmation_sent"] is False
        found = await store.suppressions(["+5511987654321"])
        assert [s.channel for s in found["+5511987654321"]] == [Channel.SMS]
    finally:
        await store.close()

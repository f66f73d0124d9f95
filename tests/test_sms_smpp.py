"""SMPP 3.4: the pure PDU codec against hand-written bytes, and the client against a local SMSC."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from dialer.errors import SmsPermanent, SmsRetryable
from sms_gateway import smpp_pdu as p
from sms_gateway.base import SmsMessage
from sms_gateway.encoding import analyse
from sms_gateway.smpp import SmppConfig, SmppSms, source_address
from sms_gateway.webhooks import DeliveryReceipt, InboundMessage
from tests.sms_servers import ENQUIRE_LINK, GENERIC_NACK, RESP, UNBIND, SmppServer

# ---------------------------------------------------------------- the codec, byte for byte

BIND_TRANSMITTER_BYTES = bytes.fromhex(
    "00000023"  # command_length 35
    "00000002"  # bind_transmitter
    "00000000"  # command_status
    "00000001"  # sequence_number
    "726567756100"  # system_id "regua"
    "736d70702d707700"  # password "smpp-pw"
    "00"  # system_type ""
    "34"  # interface_version 3.4
    "00"
    "00"  # addr_ton, addr_npi
    "00"  # address_range ""
)

SUBMIT_SM_BYTES = bytes.fromhex(
    "00000038"
    "00000004"
    "00000000"
    "00000002"  # 56 octets, submit_sm, seq 2
    "00"  # service_type ""
    "05"
    "00"
    "524547554100"  # source: alphanumeric, unknown NPI, "REGUA"
    "01"
    "01"
    "3535313139383736353433323100"  # dest: international, ISDN, "5511987654321"
    "00"
    "00"
    "00"  # esm_class, protocol_id, priority_flag
    "00"
    "00"  # schedule_delivery_time, validity_period (NULL)
    "01"
    "00"
    "00"
    "00"  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    "05"
    "48656c6c6f"  # sm_length 5, "Hello"
)


def test_bind_transmitter_bytes():
    body = p.Bind("regua", "smpp-pw").encode()
    assert p.encode_pdu(p.Pdu(p.Command.BIND_TRANSMITTER, 0, 1, body)) == BIND_TRANSMITTER_BYTES
    pdu = p.decode_pdu(BIND_TRANSMITTER_BYTES)
    assert (pdu.command_id, pdu.status, pdu.sequence) == (2, 0, 1)
    assert p.Bind.decode(pdu.body) == p.Bind("regua", "smpp-pw")
    assert "smpp-pw" not in repr(p.Bind("regua", "smpp-pw"))


def test_submit_sm_bytes():
    sm = p.ShortMessage(
        destination_addr="5511987654321",
        short_message=p.gsm7_encode("Hello"),
        source_addr="REGUA",
        source_addr_ton=5,
        source_addr_npi=0,
        registered_delivery=1,
    )
    assert p.encode_pdu(p.Pdu(p.Command.SUBMIT_SM, 0, 2, sm.encode())) == SUBMIT_SM_BYTES
    assert p.ShortMessage.decode(p.decode_pdu(SUBMIT_SM_BYTES).body) == sm


def test_submit_sm_resp_and_error_without_body():
    ok = bytes.fromhex("00000019800000040000000000000002") + b"0A1B2C3D\x00"
    pdu = p.decode_pdu(ok)
    assert pdu.is_response and p.MessageIdResp.decode(pdu.body).message_id == "0A1B2C3D"
    throttled = bytes.fromhex("00000010800000040000005800000003")
    pdu = p.decode_pdu(throttled)
    assert (
        p.status_name(pdu.status) == "ESME_RTHROTTLED" and p.MessageIdResp.decode(pdu.body).message_id == ""
    )


def test_split_frames_keeps_a_partial_tail():
    stream = BIND_TRANSMITTER_BYTES + SUBMIT_SM_BYTES[:20]
    pdus, rest = p.split_frames(stream)
    assert [x.command_id for x in pdus] == [p.Command.BIND_TRANSMITTER]
    assert rest == SUBMIT_SM_BYTES[:20]
    pdus, rest = p.split_frames(rest + SUBMIT_SM_BYTES[20:])
    assert [x.sequence for x in pdus] == [2] and rest == b""


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x00\x00\x08" + b"\x00" * 4,  # command_length shorter than the header
        struct.pack(">I", 10_000_000) + b"\x00" * 12,  # absurd length
    ],
)
def test_malformed_frames(frame):
    with pytest.raises(p.PduError):
        p.split_frames(frame)


def test_bad_bodies():
    with pytest.raises(p.PduError):
        p.Bind.decode(b"regua")  # no NUL
    with pytest.raises(p.PduError):
        p.Bind("a-system-id-too-long", "pw").encode()  # system_id is at most 15 octets
    with pytest.raises(p.PduError):
        p.ShortMessage("5511", short_message=b"x" * 255).encode()


def test_gsm7_unpacked_codes():
    assert p.gsm7_encode("@£$¥") == bytes((0x00, 0x01, 0x02, 0x03))
    assert p.gsm7_encode("Ç é à") == bytes((0x09, 0x20, 0x05, 0x20, 0x7F))
    assert p.gsm7_encode("€[]{}") == bytes((0x1B, 0x65, 0x1B, 0x3C, 0x1B, 0x3E, 0x1B, 0x28, 0x1B, 0x29))
    assert p.gsm7_decode(p.gsm7_encode("R$ 10,00 {boleto} ^~|\\ €")) == "R$ 10,00 {boleto} ^~|\\ €"
    with pytest.raises(ValueError):
        p.gsm7_encode("ã")


def test_concatenation_gsm7():
    text = "Pague sua fatura pelo Pix ou boleto. " * 6  # 222 septets: 2 parts
    info = analyse(text)
    parts = p.message_parts(info, reference=0xAB)
    assert len(parts) == 2
    for seq, part in enumerate(parts, start=1):
        assert part.esm_class == p.ESM_UDHI and part.data_coding == 0
        assert part.short_message[:6] == bytes((0x05, 0x00, 0x03, 0xAB, 2, seq))
    assert len(parts[0].short_message) == 6 + 153
    assert "".join(p.gsm7_decode(x.short_message[6:]) for x in parts) == text


def test_concatenation_ucs2_and_single():
    text = "Olá! Sua fatura de novembro está disponível. Pague até sexta-feira e evite juros." * 2
    parts = p.message_parts(analyse(text), reference=7)
    assert len(parts) == 3 and all(x.data_coding == 8 for x in parts)
    assert len(parts[0].short_message) == 6 + 67 * 2
    assert "".join(x.short_message[6:].decode("utf-16-be") for x in parts) == text
    single = p.message_parts(analyse("Olá"), reference=7)
    assert single == [p.Part(8, 0, "Olá".encode("utf-16-be"))]


def test_receipt_from_text_and_tlvs():
    text = b"id:1234567890 sub:001 dlvrd:000 submit date:2611231000 done date:2611231005 stat:UNDELIV err:034 text:"
    sm = p.ShortMessage("REGUA", short_message=text, source_addr="5511987654321", esm_class=0x04)
    assert p.parse_receipt(sm) == p.Receipt("1234567890", "UNDELIV", "034")
    with_tlvs = p.ShortMessage(
        "REGUA",
        short_message=text,
        esm_class=0x04,
        tlvs=((p.Tag.RECEIPTED_MESSAGE_ID, b"499602D2\x00"), (p.Tag.MESSAGE_STATE, b"\x02")),
    )
    assert p.parse_receipt(with_tlvs) == p.Receipt("499602D2", "DELIVRD", "034")
    assert p.parse_receipt(p.ShortMessage("REGUA", short_message=b"SAIR")) is None  # an MO, not a receipt


@pytest.mark.parametrize(
    ("source", "expected"),
    [("REGUA", (5, 0, "REGUA")), ("+5511987654321", (1, 1, "5511987654321")), ("28888", (3, 0, "28888"))],
)
def test_source_address_forms(source, expected):
    assert source_address(SmppConfig("h", source=source)) == expected


def test_status_classes():
    assert p.is_transient(p.Status.ESME_RTHROTTLED) and p.is_transient(p.Status.ESME_RMSGQFUL)
    assert p.is_transient(0x400)  # vendor-specific: assume transient
    assert not p.is_transient(p.Status.ESME_RINVDSTADR)
    assert not p.is_transient(p.Status.ESME_RINVSRCADR)


# ---------------------------------------------------------------- the client against an SMSC


@pytest.fixture
async def smsc():
    server = SmppServer()
    await server.start()
    yield server
    await server.stop()


def gateway(server: SmppServer, **overrides) -> SmppSms:
    receipts: list[DeliveryReceipt] = []
    inbound: list[InboundMessage] = []
    config = dict(
        host="127.0.0.1",
        port=server.port,
        system_id="regua",
        password="smpp-pw",
        system_type="COB",
        source="REGUA",
        response_timeout_s=2.0,
        throttle_pause_s=0.01,
        price=0.04,
    )
    config.update(overrides)
    gw = SmppSms(SmppConfig(**config), on_receipt=receipts.append, on_inbound=inbound.append)
    gw.receipts_seen = receipts  # type: ignore[attr-defined]
    gw.inbound_seen = inbound  # type: ignore[attr-defined]
    return gw


async def until(predicate, within_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def msg(text: str = "Pague sua fatura", to: str = "+5511987654321", key: str = "att-1") -> SmsMessage:
    return SmsMessage(to, text, key)


async def test_send_one_message_and_get_its_receipt(smsc):
    gw = gateway(smsc)
    try:
        result = await gw.send(msg("Ola Maria, ligue 0800 123 4567. @ Ç"))
        assert (result.provider, result.message_id, result.segments, result.encoding) == (
            "smpp",
            "00000001",
            1,
            "GSM-7",
        )
        assert result.cost == pytest.approx(0.04) and not result.sandbox and not result.duplicate
        assert smsc.binds == [
            {"command_id": 0x09, "system_id": "regua", "system_type": "COB", "interface_version": 0x34}
        ]
        sub = smsc.submits[0]
        assert (sub["source_addr_ton"], sub["source_addr_npi"], sub["source_addr"]) == (5, 0, "REGUA")
        assert (sub["dest_addr_ton"], sub["dest_addr_npi"], sub["destination_addr"]) == (
            1,
            1,
            "5511987654321",
        )
        assert (sub["esm_class"], sub["data_coding"], sub["registered_delivery"]) == (0, 0, 1)
        assert sub["short_message"] == b"Ola Maria, ligue 0800 123 4567. \x00 \x09"
        await until(lambda: gw.receipts_seen)
        assert gw.receipts_seen == [DeliveryReceipt("smpp", "00000001", "delivered", "")]
        await until(lambda: smsc.deliver_resps)
        assert smsc.deliver_resps == [0]
        assert gw.health()["bound"] is True and gw.health()["receipts"] == 1
    finally:
        await gw.close()
    assert smsc.unbinds == 1
    assert gw.health()["bound"] is False


async def test_the_bind_goes_out_byte_for_byte(smsc):
    gw = gateway(smsc, bind="transmitter", system_type="")
    try:
        await gw.send(msg())
        expected = p.encode_pdu(p.Pdu(p.Command.BIND_TRANSMITTER, 0, 1, p.Bind("regua", "smpp-pw").encode()))
        assert bytes(smsc.raw_in[: len(expected)]) == expected
        assert smsc.submits[0]["registered_delivery"] == 0  # no receipts on a transmitter bind
    finally:
        await gw.close()


async def test_a_long_ucs2_message_goes_in_concatenated_parts(smsc):
    text = "Olá, Maria. Sua fatura de novembro está disponível; pague até sexta e evite juros. " * 2
    gw = gateway(smsc)
    try:
        result = await gw.send(msg(text))
        assert (result.segments, result.encoding) == (3, "UCS-2")
        assert result.message_id == "00000001,00000002,00000003"
        assert result.cost == pytest.approx(0.12)
        udhs = [s["short_message"][:6] for s in smsc.submits]
        ref = udhs[0][3]
        assert udhs == [bytes((5, 0, 3, ref, 3, i)) for i in (1, 2, 3)]
        assert all(s["esm_class"] == 0x40 and s["data_coding"] == 8 for s in smsc.submits)
        assert "".join(s["short_message"][6:].decode("utf-16-be") for s in smsc.submits) == text
        second = await gw.send(msg(text, key="att-2"))
        assert smsc.submits[3]["short_message"][3] != ref  # a new reference for a new message
        assert second.message_id.startswith("00000004")
    finally:
        await gw.close()


async def test_throttled_is_retryable_then_the_next_send_works(smsc):
    smsc.statuses.append(0x58)
    gw = gateway(smsc, throttle_pause_s=0.25)
    try:
        with pytest.raises(SmsRetryable, match="ESME_RTHROTTLED") as caught:
            await gw.send(msg())
        assert caught.value.retry_after == 0.25
        assert (await gw.send(msg(key="att-2"))).message_id == "00000001"
        assert smsc.connections == 1  # the link survived the refusal
    finally:
        await gw.close()


async def test_a_later_part_is_retried_in_place(smsc):
    smsc.statuses.extend([0x00, 0x58, 0x14])  # part 2 throttled, then queue full, then accepted
    gw = gateway(smsc)
    try:
        result = await gw.send(msg("x" * 200))
        assert result.message_id == "00000001,00000002"
        assert [s["short_message"][5] for s in smsc.submits] == [1, 2, 2, 2]
    finally:
        await gw.close()


async def test_a_later_part_that_keeps_failing_is_not_resent_whole(smsc):
    smsc.statuses.extend([0x00] + [0x08] * 10)
    gw = gateway(smsc, part_retries=2)
    try:
        with pytest.raises(SmsPermanent, match="part 2/2 failed after part 1 was accepted"):
            await gw.send(msg("x" * 200))
        assert len(smsc.submits) == 1 + 1 + 2
    finally:
        await gw.close()


async def test_an_invalid_destination_is_permanent(smsc):
    smsc.refuse_numbers.add("5511900000000")
    gw = gateway(smsc)
    try:
        with pytest.raises(SmsPermanent, match="ESME_RINVDSTADR"):
            await gw.send(msg(to="+5511900000000"))
        with pytest.raises(SmsPermanent, match=r"not an E\.164"):
            await gw.send(msg(to="+55abc"))
    finally:
        await gw.close()


async def test_wrong_password_is_permanent_and_never_shown(smsc):
    gw = gateway(smsc, password="wrongpw")
    with pytest.raises(SmsPermanent, match="ESME_RINVPASWD") as caught:
        await gw.send(msg())
    assert "wrongpw" not in str(caught.value) and "wrongpw" not in repr(gw.config)
    await gw.close()


async def test_no_smsc_is_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = SmppSms(SmppConfig("127.0.0.1", port, "regua", "pw", connect_timeout_s=1))
    with pytest.raises(SmsRetryable, match="cannot connect"):
        await gw.send(msg())
    assert gw.health()["state"] == "down"
    await gw.close()


async def test_generic_nack_for_a_submit_is_retryable(smsc):
    smsc.nack_next = 1
    gw = gateway(smsc)
    try:
        with pytest.raises(SmsRetryable, match="ESME_RSYSERR"):
            await gw.send(msg())
        assert (await gw.send(msg(key="2"))).message_id == "00000001"
    finally:
        await gw.close()


async def test_no_response_in_time_is_retryable(smsc):
    smsc.submit_delay = 0.5
    gw = gateway(smsc, response_timeout_s=0.1)
    try:
        with pytest.raises(SmsRetryable, match="no response to submit_sm"):
            await gw.send(msg())
    finally:
        smsc.submit_delay = 0
        await gw.close()


async def test_enquire_link_keeps_an_idle_link_alive(smsc):
    gw = gateway(smsc, enquire_link_s=0.1)
    try:
        await gw.send(msg())
        await until(lambda: smsc.enquire_links >= 2)
        assert gw.health()["bound"] is True and smsc.connections == 1
    finally:
        await gw.close()


async def test_an_unanswered_enquire_link_drops_the_link_and_the_next_send_reconnects(smsc):
    smsc.answer_enquire_link = False
    gw = gateway(smsc, enquire_link_s=0.05, response_timeout_s=0.1)
    try:
        await gw.send(msg())
        await until(lambda: not gw.health()["bound"])
        smsc.answer_enquire_link = True
        await gw.send(msg(key="2"))
        assert smsc.connections == 2 and len(smsc.binds) == 2
    finally:
        await gw.close()


async def test_the_smsc_enquire_link_is_answered(smsc):
    gw = gateway(smsc)
    try:
        await gw.send(msg())
        seq = await smsc.enquire_link()
        await until(lambda: (ENQUIRE_LINK | RESP, 0, seq) in smsc.pdus_in)
    finally:
        await gw.close()


async def test_an_unknown_request_gets_a_generic_nack(smsc):
    gw = gateway(smsc)
    try:
        await gw.send(msg())
        seq = await smsc.send_unknown(0x00000099)
        await until(lambda: (GENERIC_NACK, 0x03, seq) in smsc.pdus_in)  # ESME_RINVCMDID
        assert gw.health()["bound"] is True
    finally:
        await gw.close()


async def test_the_smsc_unbinds_and_the_next_send_binds_again(smsc):
    gw = gateway(smsc)
    try:
        await gw.send(msg())
        seq = await smsc.unbind_clients()
        await until(lambda: (UNBIND | RESP, 0, seq) in smsc.pdus_in)  # unbind_resp, same sequence
        await until(lambda: not gw.health()["bound"])
        await gw.send(msg(key="2"))
        assert smsc.connections == 2
    finally:
        await gw.close()


async def test_a_connection_lost_mid_submit_is_retryable(smsc):
    smsc.submit_delay = 0.3
    gw = gateway(smsc)
    try:
        task = asyncio.create_task(gw.send(msg()))
        await until(lambda: smsc.submits)
        smsc.drop_all()
        with pytest.raises(SmsRetryable, match="connection lost"):
            await task
        smsc.submit_delay = 0
        assert (await gw.send(msg(key="2"))).provider == "smpp"
    finally:
        await gw.close()


async def test_replies_reach_on_inbound(smsc):
    gw = gateway(smsc)
    try:
        await gw.send(msg())
        await smsc.deliver("5511987654321", "REGUA", b"SAIR")
        await smsc.deliver("5511987654321", "REGUA", "Pare já".encode("utf-16-be"), coding=8)
        await until(lambda: len(gw.inbound_seen) == 2)
        assert gw.inbound_seen == [
            InboundMessage("smpp", "+5511987654321", "SAIR"),
            InboundMessage("smpp", "+5511987654321", "Pare já"),
        ]
    finally:
        await gw.close()


async def test_many_messages_share_one_link(smsc):
    gw = gateway(smsc, window=5)
    try:
        results = await asyncio.gather(*(gw.send(msg(key=f"k{i}")) for i in range(40)))
        assert len({r.message_id for r in results}) == 40
        assert smsc.connections == 1 and len(smsc.binds) == 1
    finally:
        await gw.close()


async def test_async_receivers_are_awaited(smsc):
    seen: list[DeliveryReceipt] = []

    async def store_receipt(receipt: DeliveryReceipt) -> None:
        await asyncio.sleep(0.01)
        seen.append(receipt)

    gw = SmppSms(
        SmppConfig("127.0.0.1", smsc.port, "regua", "smpp-pw", source="REGUA"), on_receipt=store_receipt
    )
    try:
        result = await gw.send(msg())
        await until(lambda: seen)
        assert seen == [DeliveryReceipt("smpp", result.message_id, "delivered", "")]
    finally:
        await gw.close()

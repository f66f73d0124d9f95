"""SMPP 3.4 PDUs, pure: encode and decode bytes, no I/O.

Every PDU is a 16-octet header — ``command_length``, ``command_id``,
``command_status``, ``sequence_number``, big-endian unsigned 32-bit integers; the length
counts the header — and a body of mandatory fields (integers of 1 octet, C-Octet
strings ending in NUL, the octet string ``short_message`` preceded by ``sm_length``)
followed by optional TLVs (tag and length on 2 octets each).

Text goes out as GSM 03.38 septets, one per octet (``data_coding`` 0, the SMSC default
alphabet; extension characters are ESC + code) or UCS-2 big-endian (``data_coding``
8). A message longer than one segment is cut by ``encoding.analyse`` (153 septets / 67
UTF-16 units per part) and each part carries a concatenation UDH with an 8-bit
reference (``05 00 03 ref total seq``) and the UDHI bit (0x40) in ``esm_class``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum

from sms_gateway.encoding import GSM_BASIC, GSM_EXTENSION, SmsInfo

HEADER = struct.Struct(">IIII")
HEADER_SIZE = HEADER.size
MAX_PDU = 64 * 1024  # far above any legal PDU: a longer length means a broken stream
INTERFACE_VERSION = 0x34


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


RESPONSE_BIT = 0x80000000


class Status(IntEnum):
    """``command_status`` values of SMPP 3.4 section 5.1.3."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVDLNAME = 0x34
    ESME_RINVDESTFLAG = 0x40
    ESME_RINVSUBREP = 0x42
    ESME_RINVESMCLASS = 0x43
    ESME_RCNTSUBDL = 0x44
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RINVREPFLAG = 0x54
    ESME_RINVNUMMSGS = 0x55
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDFTMSGID = 0x63
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RQUERYFAIL = 0x67
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF


#: Worth another try later: the SMSC is busy or had a passing fault.
TRANSIENT = frozenset(
    {
        Status.ESME_RSYSERR,
        Status.ESME_RMSGQFUL,
        Status.ESME_RTHROTTLED,
        Status.ESME_RX_T_APPN,
        Status.ESME_RINVBNDSTS,
        Status.ESME_RSUBMITFAIL,
        Status.ESME_RDELIVERYFAILURE,
        Status.ESME_RUNKNOWNERR,
    }
)
#: A bind refused for these reasons will not succeed by trying again.
BIND_REFUSED = frozenset(
    {Status.ESME_RBINDFAIL, Status.ESME_RINVPASWD, Status.ESME_RINVSYSID, Status.ESME_RINVSYSTYP}
)


def status_name(code: int) -> str:
    try:
        return Status(code).name
    except ValueError:
        return f"0x{code:08X}"


def is_transient(code: int) -> bool:
    """Whether a ``command_status`` is worth retrying; vendor codes (0x400+) are assumed so."""
    if code in TRANSIENT:
        return True
    try:
        Status(code)
    except ValueError:
        return True
    return False


class Tag(IntEnum):
    RECEIPTED_MESSAGE_ID = 0x001E
    USER_MESSAGE_REFERENCE = 0x0204
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


class DataCoding(IntEnum):
    SMSC_DEFAULT = 0x00  # GSM 03.38 on the SMSCs we target
    LATIN1 = 0x03
    UCS2 = 0x08


ESM_UDHI = 0x40
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04


class PduError(ValueError):
    """Bytes that are not a valid SMPP 3.4 PDU."""

    def __init__(self, message: str, status: int = Status.ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    @property
    def command_name(self) -> str:
        try:
            return Command(self.command_id).name.lower()
        except ValueError:
            return f"0x{self.command_id:08X}"


def encode_pdu(pdu: Pdu) -> bytes:
    """Header and body as they go on the wire."""
    return HEADER.pack(HEADER_SIZE + len(pdu.body), pdu.command_id, pdu.status, pdu.sequence) + pdu.body


def frame_length(first4: bytes) -> int:
    """The ``command_length`` a frame announces; PduError when it cannot be a PDU."""
    (length,) = struct.unpack(">I", first4)
    if not HEADER_SIZE <= length <= MAX_PDU:
        raise PduError(f"command_length {length} out of range")
    return int(length)


def decode_pdu(frame: bytes) -> Pdu:
    """One whole frame (header included) into a ``Pdu``."""
    if len(frame) < HEADER_SIZE:
        raise PduError("shorter than a PDU header")
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    if length != len(frame):
        raise PduError(f"command_length {length} but {len(frame)} octets")
    return Pdu(command_id, status, sequence, bytes(frame[HEADER_SIZE:]))


def split_frames(buffer: bytes) -> tuple[list[Pdu], bytes]:
    """Every complete PDU at the start of ``buffer``, and what is left over."""
    pdus: list[Pdu] = []
    offset = 0
    while len(buffer) - offset >= 4:
        length = frame_length(buffer[offset : offset + 4])
        if len(buffer) - offset < length:
            break
        pdus.append(decode_pdu(buffer[offset : offset + length]))
        offset += length
    return pdus, buffer[offset:]


# ---------------------------------------------------------------- field codecs


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def cstring(self, max_len: int, name: str) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise PduError(f"{name}: no terminating NUL", Status.ESME_RINVMSGLEN)
        if end - self.pos + 1 > max_len:
            raise PduError(f"{name}: longer than {max_len - 1} octets", Status.ESME_RINVPARLEN)
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def u8(self, name: str) -> int:
        if self.pos >= len(self.data):
            raise PduError(f"{name}: body too short", Status.ESME_RINVMSGLEN)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def octets(self, n: int, name: str) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError(f"{name}: body too short", Status.ESME_RINVMSGLEN)
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> tuple[tuple[int, bytes], ...]:
        found: list[tuple[int, bytes]] = []
        while self.pos < len(self.data):
            if self.pos + 4 > len(self.data):
                raise PduError("truncated TLV header", Status.ESME_RINVOPTPARSTREAM)
            tag, length = struct.unpack_from(">HH", self.data, self.pos)
            self.pos += 4
            found.append((tag, self.octets(length, f"TLV 0x{tag:04X}")))
        return tuple(found)


def cstring(value: str, max_len: int, name: str) -> bytes:
    """A C-Octet string; ``max_len`` counts the NUL as the specification does."""
    raw = value.encode("latin-1")
    if b"\x00" in raw or len(raw) + 1 > max_len:
        raise PduError(f"{name}: at most {max_len - 1} octets, no NUL", Status.ESME_RINVPARLEN)
    return raw + b"\x00"


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


def tlv_value(tlvs: tuple[tuple[int, bytes], ...], tag: int) -> bytes | None:
    for t, v in tlvs:
        if t == tag:
            return v
    return None


# ---------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class Bind:
    """Body of bind_transmitter / bind_receiver / bind_transceiver."""

    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def __repr__(self) -> str:  # never show the password
        return f"Bind(system_id={self.system_id!r}, system_type={self.system_type!r})"

    def encode(self) -> bytes:
        return (
            cstring(self.system_id, 16, "system_id")
            + cstring(self.password, 9, "password")
            + cstring(self.system_type, 13, "system_type")
            + bytes((self.interface_version, self.addr_ton, self.addr_npi))
            + cstring(self.address_range, 41, "address_range")
        )

    @classmethod
    def decode(cls, body: bytes) -> Bind:
        r = _Reader(body)
        return cls(
            r.cstring(16, "system_id"),
            r.cstring(9, "password"),
            r.cstring(13, "system_type"),
            r.u8("interface_version"),
            r.u8("addr_ton"),
            r.u8("addr_npi"),
            r.cstring(41, "address_range"),
        )


@dataclass(frozen=True, slots=True)
class BindResp:
    system_id: str
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        return cstring(self.system_id, 16, "system_id") + b"".join(tlv(t, v) for t, v in self.tlvs)

    @classmethod
    def decode(cls, body: bytes) -> BindResp:
        if not body:  # an error response may carry no body
            return cls("")
        r = _Reader(body)
        return cls(r.cstring(16, "system_id"), r.tlvs())


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """Body of submit_sm and deliver_sm (the same mandatory fields, SMPP 3.4 4.4.1 / 4.6.1)."""

    destination_addr: str
    short_message: bytes = b""
    source_addr: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    service_type: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        if len(self.short_message) > 254:
            raise PduError("short_message longer than 254 octets", Status.ESME_RINVMSGLEN)
        return (
            cstring(self.service_type, 6, "service_type")
            + bytes((self.source_addr_ton, self.source_addr_npi))
            + cstring(self.source_addr, 21, "source_addr")
            + bytes((self.dest_addr_ton, self.dest_addr_npi))
            + cstring(self.destination_addr, 21, "destination_addr")
            + bytes((self.esm_class, self.protocol_id, self.priority_flag))
            + cstring(self.schedule_delivery_time, 17, "schedule_delivery_time")
            + cstring(self.validity_period, 17, "validity_period")
            + bytes(
                (
                    self.registered_delivery,
                    self.replace_if_present_flag,
                    self.data_coding,
                    self.sm_default_msg_id,
                    len(self.short_message),
                )
            )
            + self.short_message
            + b"".join(tlv(t, v) for t, v in self.tlvs)
        )

    @classmethod
    def decode(cls, body: bytes) -> ShortMessage:
        r = _Reader(body)
        service_type = r.cstring(6, "service_type")
        source_ton, source_npi = r.u8("source_addr_ton"), r.u8("source_addr_npi")
        source = r.cstring(21, "source_addr")
        dest_ton, dest_npi = r.u8("dest_addr_ton"), r.u8("dest_addr_npi")
        dest = r.cstring(21, "destination_addr")
        esm, pid, prio = r.u8("esm_class"), r.u8("protocol_id"), r.u8("priority_flag")
        schedule = r.cstring(17, "schedule_delivery_time")
        validity = r.cstring(17, "validity_period")
        registered, replace = r.u8("registered_delivery"), r.u8("replace_if_present_flag")
        coding, default_id = r.u8("data_coding"), r.u8("sm_default_msg_id")
        sm = r.octets(r.u8("sm_length"), "short_message")
        return cls(
            destination_addr=dest,
            short_message=sm,
            source_addr=source,
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            dest_addr_ton=dest_ton,
            dest_addr_npi=dest_npi,
            service_type=service_type,
            esm_class=esm,
            protocol_id=pid,
            priority_flag=prio,
            schedule_delivery_time=schedule,
            validity_period=validity,
            registered_delivery=registered,
            replace_if_present_flag=replace,
            data_coding=coding,
            sm_default_msg_id=default_id,
            tlvs=r.tlvs(),
        )

    @property
    def has_udh(self) -> bool:
        return bool(self.esm_class & ESM_UDHI)

    @property
    def is_delivery_receipt(self) -> bool:
        return self.esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT

    def payload(self) -> bytes:
        """The user data: ``message_payload`` when present, else ``short_message``."""
        data = tlv_value(self.tlvs, Tag.MESSAGE_PAYLOAD)
        return data if data is not None else self.short_message


@dataclass(frozen=True, slots=True)
class MessageIdResp:
    """Body of submit_sm_resp (and deliver_sm_resp, whose message_id is empty)."""

    message_id: str

    def encode(self) -> bytes:
        return cstring(self.message_id, 65, "message_id")

    @classmethod
    def decode(cls, body: bytes) -> MessageIdResp:
        if not body:  # an error response may carry no body
            return cls("")
        return cls(_Reader(body).cstring(65, "message_id"))


# ---------------------------------------------------------------- text


_GSM_CODE = {c: i for i, c in enumerate(GSM_BASIC) if c != "\x1b"}
_GSM_EXT_CODE = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E}
_GSM_EXT_CODE |= {"|": 0x40, "€": 0x65}
_GSM_EXT_CHAR = {v: k for k, v in _GSM_EXT_CODE.items()}
assert set(_GSM_EXT_CODE) == set(GSM_EXTENSION)


def gsm7_encode(text: str) -> bytes:
    """GSM 03.38 septets, one per octet (unpacked), extension characters as ESC + code."""
    out = bytearray()
    for c in text:
        code = _GSM_CODE.get(c)
        if code is not None:
            out.append(code)
        elif c in _GSM_EXT_CODE:
            out += bytes((0x1B, _GSM_EXT_CODE[c]))
        else:
            raise ValueError(f"{c!r} is not in the GSM 03.38 alphabet")
    return bytes(out)


def gsm7_decode(data: bytes) -> str:
    """Unpacked GSM 03.38 septets back to text (unknown escapes read as a space)."""
    out: list[str] = []
    escape = False
    for octet in data:
        if escape:
            out.append(_GSM_EXT_CHAR.get(octet, " "))
            escape = False
        elif octet == 0x1B:
            escape = True
        else:
            out.append(GSM_BASIC[octet & 0x7F])
    return "".join(out)


def concat_udh(reference: int, total: int, sequence: int) -> bytes:
    """User data header for concatenated SMS with an 8-bit reference (IEI 0x00)."""
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, sequence))


@dataclass(frozen=True, slots=True)
class Part:
    data_coding: int
    esm_class: int
    short_message: bytes


def message_parts(info: SmsInfo, reference: int) -> list[Part]:
    """The submit_sm payloads for a text already cut by ``encoding.analyse``."""
    coding = DataCoding.SMSC_DEFAULT if info.encoding == "GSM-7" else DataCoding.UCS2

    def encode(part: str) -> bytes:
        return gsm7_encode(part) if coding == DataCoding.SMSC_DEFAULT else part.encode("utf-16-be")

    if info.segments <= 1:
        return [Part(coding, 0, encode(info.parts[0] if info.parts else ""))]
    total = len(info.parts)
    return [
        Part(coding, ESM_UDHI, concat_udh(reference, total, i) + encode(part))
        for i, part in enumerate(info.parts, start=1)
    ]


def decode_text(sm: ShortMessage) -> str:
    """The text of a deliver_sm, its UDH (if any) left out."""
    data = sm.payload()
    if sm.has_udh and data:
        data = data[1 + data[0] :]
    if sm.data_coding == DataCoding.UCS2:
        return data.decode("utf-16-be", "replace")
    if sm.data_coding in (DataCoding.LATIN1, 0x01):  # 1 is IA5/ASCII, a subset of Latin-1
        return data.decode("latin-1")
    return gsm7_decode(data)


# ---------------------------------------------------------------- delivery receipts


@dataclass(frozen=True, slots=True)
class Receipt:
    """An SMSC delivery receipt (SMPP 3.4 appendix B), as far as it could be read."""

    message_id: str
    stat: str  # DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE
    err: str = ""


_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err):\s*(\S*)", re.IGNORECASE)
#: message_state TLV values (5.2.28) to the receipt's stat words.
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


def parse_receipt(sm: ShortMessage) -> Receipt | None:
    """The receipt a deliver_sm carries, or None when it is not a delivery receipt.

    The ``receipted_message_id`` and ``message_state`` TLVs win over the text.
    """
    if not sm.is_delivery_receipt:
        return None
    fields = {k.lower(): v for k, v in _RECEIPT_FIELD.findall(decode_text(sm))}
    message_id = fields.get("id", "")
    stat = fields.get("stat", "").upper()
    raw_id = tlv_value(sm.tlvs, Tag.RECEIPTED_MESSAGE_ID)
    if raw_id:
        message_id = raw_id.rstrip(b"\x00").decode("latin-1")
    raw_state = tlv_value(sm.tlvs, Tag.MESSAGE_STATE)
    if raw_state and raw_state[0] in MESSAGE_STATES:
        stat = MESSAGE_STATES[raw_state[0]]
    if not message_id:
        return None
    return Receipt(message_id, stat or "UNKNOWN", fields.get("err", ""))

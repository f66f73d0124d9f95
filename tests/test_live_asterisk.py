"""Live tests against a real Asterisk started from the project's own config/asterisk/.

They run whenever an ``asterisk`` binary is on PATH (Asterisk is not in Debian's archive:
build it from source to run them) and are skipped with that reason otherwise. Asterisk
runs in a temporary directory with AMI, SIP and RTP on free loopback ports; our FastAGI
server runs the IVR with real espeak-ng prompts; simulated debtors are ``Local/``
channels of the ``regua-debtor`` context (a greeting for AMD, then DTMF), and a pyVoIP
softphone registered to Asterisk answers a real SIP call and sends in-band DTMF.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dialer.clock import SystemClock
from dialer.domain import Account, Consent, Outcome, Phone
from dialer.formats.campaign_file import make_hasher
from dialer.settings import PROJECT_ROOT
from dialer.store import Store
from dialer.store.codec import pack_account, pack_phone
from dialer.store.embedded import free_port
from dialer.telephony.asterisk import AmiUrl, AsteriskTelephony
from dialer.telephony.base import CallRequest
from ivr.agi_app import IvrApp, TtsAudio
from ivr.fastagi import FastAgiServer
from ivr.prompts import Catalogue
from ivr.tts import EspeakTTS
from tests.runtime_helpers import with_asterisk

ASTERISK = shutil.which("asterisk")
LIVE = [  # the marks of every live test file
    pytest.mark.live,
    pytest.mark.skipif(
        ASTERISK is None,
        reason="live Asterisk tests need an `asterisk` binary on PATH "
        "(not in Debian's archive: build Asterisk 22 from source to run them)",
    ),
    pytest.mark.timeout(240),
]
pytestmark = LIVE


def _modules_dir(binary: str) -> str:
    real = Path(os.path.realpath(binary))
    for candidate in (
        real.parent.parent / "lib" / "asterisk" / "modules",
        Path("/usr/lib/asterisk/modules"),
        Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"),
    ):
        if candidate.is_dir():
            return str(candidate)
    raise RuntimeError("cannot find Asterisk's modules directory")


def _data_dir(binary: str) -> str:
    """Where Asterisk's XML documentation lives (its config frameworks refuse to start without it)."""
    prefix = Path(os.path.realpath(binary)).parent.parent
    for candidate in (
        prefix / "var" / "lib" / "asterisk",
        Path("/var/lib/asterisk"),
        Path("/usr/share/asterisk"),
    ):
        if (candidate / "documentation").is_dir():
            return str(candidate)
    raise RuntimeError("cannot find Asterisk's data directory (with documentation/)")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveAsterisk:
    def __init__(self, root: Path, cpus: set[int] | None = None) -> None:
        """``cpus``: the processors Asterisk may run on (default: any)."""
        assert ASTERISK is not None
        self.root = root
        self.etc = root / "etc"
        self.ami_port = free_port()
        self.sip_port = _free_udp_port()
        rtp = _free_udp_port() // 2 * 2
        shutil.copytree(PROJECT_ROOT / "config" / "asterisk", self.etc)
        dirs = {d: root / d for d in ("lib", "spool", "run", "log", "agi")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        conf = (self.etc / "asterisk.conf").read_text()
        conf = re.sub(
            r"\[directories\]\(!\).*?\n\n",
            "[directories]\n"
            f"astetcdir => {self.etc}\nastmoddir => {_modules_dir(ASTERISK)}\n"
            f"astvarlibdir => {dirs['lib']}\nastdbdir => {dirs['lib']}\nastkeydir => {dirs['lib']}\n"
            f"astdatadir => {_data_dir(ASTERISK)}\nastagidir => {dirs['agi']}\nastspooldir => {dirs['spool']}\n"
            f"astrundir => {dirs['run']}\nastlogdir => {dirs['log']}\n\n",
            conf,
            flags=re.S,
        )
        # highpriority runs every Asterisk thread SCHED_RR: right for a machine of its own, but
        # here the worker and Redis share two cores with it, and a busy realtime Asterisk
        # starves them (measured: the worker's event loop stalled 5 s in a 1,000-call burst)
        conf = conf.replace("highpriority = yes", "highpriority = no")
        (self.etc / "asterisk.conf").write_text(conf)
        for name, old, new in (
            ("manager.conf", "port = 5038", f"port = {self.ami_port}"),
            ("manager.conf", "bindaddr = 0.0.0.0", "bindaddr = 127.0.0.1"),
            ("manager.conf", "/etc/asterisk/regua-env.sh", str(self.etc / "regua-env.sh")),
            ("pjsip.conf", "bind = 0.0.0.0:5060", f"bind = 127.0.0.1:{self.sip_port}"),
            ("pjsip.conf", "/etc/asterisk/regua-env.sh", str(self.etc / "regua-env.sh")),
            ("rtp.conf", "rtpstart = 10000", f"rtpstart = {rtp}"),
            ("rtp.conf", "rtpend = 10100", f"rtpend = {rtp + 40}"),
        ):
            path = self.etc / name
            path.write_text(path.read_text().replace(old, new))
        env = {**os.environ, "AMI_SECRET": "live-secret", "AMI_PERMIT": "127.0.0.1/255.255.255.255"}
        self.log = (root / "asterisk.out").open("wb")
        self.proc = subprocess.Popen(
            [ASTERISK, "-C", str(self.etc / "asterisk.conf"), "-f", "-n", "-q"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.ami_port), timeout=1) as s:
                    if s.recv(64).startswith(b"Asterisk Call Manager/"):
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("Asterisk did not start:\n" + (root / "asterisk.out").read_text()[-3000:])

    def cli(self, command: str) -> str:
        assert ASTERISK is not None
        return subprocess.run(
            [ASTERISK, "-C", str(self.etc / "asterisk.conf"), "-rx", command],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.cli("core stop now")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory):
    live = LiveAsterisk(tmp_path_factory.mktemp("asterisk"))
    yield live
    live.stop()


@pytest.fixture
async def rig(asterisk, redis_url, settings, tmp_path):
    store = await Store.connect(redis_url)
    catalogue = Catalogue.load(settings.limited_message.voice, ("Exemplo Cobranças",))
    tts = EspeakTTS(tmp_path / "sounds")
    agi = FastAgiServer(
        {
            "ivr": IvrApp(
                store, catalogue, TtsAudio(tts, str(tmp_path / "sounds")), settings, b"test", SystemClock()
            ).handle
        },
        "127.0.0.1",
        0,
    )
    await agi.start()
    account = Account(
        "L1",
        "Maria Silva",
        date(2026, 11, 1),
        Decimal("100.00"),
        verify_birth_year_hash=make_hasher(b"test")("L1", "birth_year", "1980"),
    )
    phone = Phone("+5511987654320", consent=Consent(True, True))
    await store.upsert_batch(
        "live", [("L1", pack_account(account), "p:" + phone.number, pack_phone(phone), 0)]
    )
    yield store, agi, account, phone, settings
    await agi.close()
    await store.close()


def telephony(asterisk, settings, store, agi, channel: str) -> AsteriskTelephony:
    trunk = settings.asterisk.trunks[0].model_copy(update={"channel": channel})
    s = settings.model_copy(
        update={
            "asterisk": settings.asterisk.model_copy(update={"trunks": (trunk,), "ring_timeout_s": 20}),
            "service": settings.service.model_copy(update={"agi_host": "127.0.0.1", "agi_port": agi.port}),
        }
    )
    return AsteriskTelephony(
        s, store, SystemClock(), [AmiUrl("regua", "live-secret", "127.0.0.1", asterisk.ami_port)]
    )


async def place(asterisk, rig, channel: str, attempt: str):
    store, agi, account, phone, settings = rig
    voice = telephony(asterisk, settings, store, agi, channel)
    await voice.start()
    try:
        return await asyncio.wait_for(
            voice.place_call(CallRequest(attempt, "live", account, phone, "d10_call", "pt-BR")), 120
        )
    finally:
        await voice.close()


def test_our_config_loads(asterisk):
    assert "app_amd.so" in asterisk.cli("module show like amd")
    assert "res_agi.so" in asterisk.cli("module show like agi")
    plan = asterisk.cli("dialplan show regua-outbound")
    assert "AMD()" in plan and "AGI(${REGUA_AGI},${ATTEMPT_ID})" in plan
    assert "regua" in asterisk.cli("manager show users")


async def test_third_party_reports_a_wrong_number_by_dtmf(asterisk, rig):
    # AMD hears a tone burst and silence (HUMAN or NOTSURE: both are treated as a person);
    # then "2" (not me) and "9" (not their number) arrive as real DTMF
    keys = "w" * 5 + "2" + "w" * 12 + "9"
    result = await place(asterisk, rig, f"Local/{keys}@regua-debtor", "live:wrong-1")
    assert result.amd in ("HUMAN", "NOTSURE"), result
    assert result.outcome is Outcome.WRONG_NUMBER, result
    assert [a.kind for a in result.actions] == ["wrong_number"]
    prompts = [e["prompt"] for e in result.events if e["kind"] == "prompt"]
    assert prompts[:2] == ["ask_identity", "third_party"] and "debt" not in prompts
    assert result.duration_s > 6  # never a short call


async def test_answering_machine_gets_the_limited_message(asterisk, rig):
    result = await place(asterisk, rig, "Local/machine@regua-debtor", "live:machine-1")
    assert result.amd == "MACHINE"
    assert result.outcome is Outcome.VOICEMAIL
    assert [e["prompt"] for e in result.events if e["kind"] == "prompt"] == ["limited_message"]


async def test_busy_line(asterisk, rig):
    result = await place(asterisk, rig, "Local/busy@regua-debtor", "live:busy-1")
    assert result.outcome is Outcome.BUSY


def _dtmf(digit: str, ms: int = 100) -> bytes:
    """In-band DTMF as 8 kHz unsigned 8-bit audio (pyVoIP's format)."""
    low = {"1": 697, "2": 697, "3": 697, "4": 770, "5": 770, "6": 770, "7": 852, "8": 852, "9": 852, "0": 941}
    high = {
        "1": 1209,
        "2": 1336,
        "3": 1477,
        "4": 1209,
        "5": 1336,
        "6": 1477,
        "7": 1209,
        "8": 1336,
        "9": 1477,
        "0": 1336,
    }
    n = 8 * ms
    return bytes(
        int(
            128
            + 50
            * (math.sin(2 * math.pi * low[digit] * i / 8000) + math.sin(2 * math.pi * high[digit] * i / 8000))
        )
        for i in range(n)
    )


async def test_pyvoip_softphone_debtor(asterisk, rig):
    """A real SIP call to a pyVoIP softphone that answers and types 1, 1980, 1 in-band."""
    from pyVoIP.VoIP import CallState, VoIPPhone

    def answer(call):  # pyVoIP runs this in its own thread
        call.answer()
        silence = bytes([128]) * 160
        call.write_audio(bytes(int(128 + 40 * math.sin(2 * math.pi * 300 * i / 8000)) for i in range(6000)))
        schedule = [(9.0, "1"), (16.0, "1980"), (26.0, "1")]
        started = time.monotonic()
        for at, digits in schedule:
            while time.monotonic() - started < at and call.state == CallState.ANSWERED:
                call.write_audio(silence)
                time.sleep(0.02)
            for d in digits:
                call.write_audio(_dtmf(d) + bytes([128]) * 640)
        while call.state == CallState.ANSWERED:
            time.sleep(0.1)

    phone = VoIPPhone(
        "127.0.0.1",
        asterisk.sip_port,
        "debtor",
        "debtor-test-only",
        myIP="127.0.0.1",
        callCallback=answer,
        sipPort=_free_udp_port(),
        rtpPortLow=41000,
        rtpPortHigh=41100,
    )
    thread = threading.Thread(target=phone.start, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while "Avail" not in asterisk.cli("pjsip show contacts") and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        result = await place(asterisk, rig, "PJSIP/debtor", "live:pyvoip-1")
    finally:
        phone.stop()
    assert result.outcome is Outcome.ANSWERED_VERIFIED, result
    assert [a.kind for a in result.actions] == ["payment_link"]


@pytest.mark.parametrize("scheme", ["ours", "from the entry id"])
async def test_calls_dialled_out_of_order_are_all_placed(asterisk, rig, monkeypatch, scheme):
    """Entries …-70 to …-79 are on the line when …-7 is dialled (batches and workers finish
    out of order). Asterisk's default channel storage (ao2_legacy) refuses a uniqueid that
    is a prefix of a live one: the ids built from entry ids were refused there (Reason 0);
    ours never are, on either storage (``cpp_map_name_id``, ours, compares whole ids)."""
    import dialer.telephony.asterisk as adapter

    if scheme != "ours":
        monkeypatch.setattr(adapter, "channel_id", lambda a: "regua-" + a.replace(":", "-"))
    store, agi, account, phone, settings = rig
    s = with_asterisk(settings, context="regua-bench-outbound")
    voice = telephony(asterisk, s, store, agi, "Local/hold6@regua-bench")
    await voice.start()
    prefix = f"live:{int(time.time() * 1000)}-"  # fresh ids each run: nothing live from before
    try:
        first = [
            asyncio.create_task(
                voice.place_call(CallRequest(f"{prefix}7{i}", "live", account, phone, "s", "pt-BR"))
            )
            for i in range(10)
        ]
        deadline = time.monotonic() + 20
        while len(voice.calls) < 10 or not all(c.answered_at for c in voice.calls.values()):
            assert time.monotonic() < deadline, "the first calls did not come up"
            await asyncio.sleep(0.1)
        late = await asyncio.wait_for(
            voice.place_call(CallRequest(f"{prefix}7", "live", account, phone, "s", "pt-BR")), 60
        )
        results = [await asyncio.wait_for(t, 60) for t in first]
    finally:
        await voice.close()
    assert all(r.outcome is not Outcome.FAILED for r in results), results
    legacy = "ao2_legacy" in asterisk.cli("core show settings")  # it finds ids by prefix
    if scheme == "ours" or not legacy:
        assert late.outcome is not Outcome.FAILED, late
    else:
        assert late.outcome is Outcome.FAILED and "reason 0" in late.detail.lower(), late

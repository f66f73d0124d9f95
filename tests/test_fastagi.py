"""The FastAGI server and the IVR over it, driven exactly as Asterisk drives them."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dialer.rules.disclosure import Level
from dialer.store import keys
from ivr.agi_app import IvrApp
from ivr.agi_simulator import CLOSE, DEAD, HANGUP, Peer
from ivr.fastagi import AgiError, AgiHangup, AgiResult, FastAgiServer, parse_result
from ivr.prompts import Catalogue, Rendered
from tests.runtime_helpers import campaign_csv, make_rig

MON_1000 = datetime.fromisoformat("2026-11-23T10:00:00-03:00")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=1\n", AgiResult(200, "1")),
        ("200 result=1980 (timeout)\n", AgiResult(200, "1980", "timeout")),
        ("200 result=49 endpos=12345\n", AgiResult(200, "49", "", 12345)),
        ("200 result=1 (MACHINE)\n", AgiResult(200, "1", "MACHINE")),
        ("200 result=-1\n", AgiResult(200, "-1")),
        ("200 result= (timeout)\n", AgiResult(200, "", "timeout")),
        # GET DATA returns the keys as typed: star and the A-D keys are DTMF digits too
        ("200 result=*\n", AgiResult(200, "*")),
        ("200 result=12*3 (timeout)\n", AgiResult(200, "12*3", "timeout")),
        ("200 result=A\n", AgiResult(200, "A")),
    ],
)
def test_parse_result(line, expected):
    assert parse_result(line) == expected


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("511 Command Not Permitted on a dead channel or intercept routine", AgiHangup),
        ("HANGUP", AgiHangup),
        ("510 Invalid or unknown command", AgiError),
        ("520 End of proper usage.", AgiError),
        ("garbage", AgiError),
    ],
)
def test_parse_failures(line, error):
    with pytest.raises(error):
        parse_result(line)


class PromptFiles:
    """Names each rendered prompt's file after its id, so the peer's log shows what was played."""

    def __init__(self) -> None:
        self.rendered: list[Rendered] = []

    async def path_for(self, prompt: Rendered) -> str:
        self.rendered.append(prompt)
        return f"regua/{prompt.prompt_id}"


@pytest.fixture
async def ivr(redis_url, settings, tmp_path):
    rig = await make_rig(redis_url, settings, MON_1000)
    await rig.load(
        campaign_csv(tmp_path, [("A1", "11987654320", "10/11/2026"), ("A2", "11987654321", "10/11/2026")])
    )
    catalogue = Catalogue.load(settings.limited_message.voice, ("Exemplo Cobranças",))
    audio = PromptFiles()
    app = IvrApp(rig.store, catalogue, audio, settings, secret=b"test", clock=rig.clock)
    server = FastAgiServer({"ivr": app.handle}, "127.0.0.1", 0, header_timeout=0.5, reply_timeout=2)
    await server.start()
    for attempt, account in (("c1:1-0", "A1"), ("c1:2-0", "A2")):
        await rig.store.ivr_register(attempt, {"campaign": "c1", "account_id": account, "language": "pt-BR"})
    yield rig, server, app, audio, catalogue
    await server.close()
    await rig.close()


async def result_of(store, attempt: str) -> dict:
    """The IVR's saved result (the server may still be writing it when the peer has gone, or
    waiting out a reply the peer never sends: reply_timeout is 2 s)."""
    for _ in range(250):
        result = await store.ivr_result(attempt)
        if result is not None:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("no IVR result saved")


def prompts_of(peer: Peer) -> list[str]:
    return [p.removeprefix("regua/") for p in peer.played]


def assert_nothing_full_before_verification(peer: Peer, catalogue: Catalogue, verified_at: int | None):
    for i, prompt in enumerate(prompts_of(peer)):
        if catalogue.level(prompt) is Level.FULL:
            assert verified_at is not None and i > verified_at, prompts_of(peer)


async def test_verified_debtor_gets_the_debt_and_a_payment_link(ivr):
    rig, server, app, audio, catalogue = ivr
    peer = Peer(["1", "1980", "1"])
    await peer.call(server.port, ("c1:1-0",))
    assert prompts_of(peer) == [
        "ask_identity",
        "ask_birth_year",
        "debt",
        "menu_offer",  # the company has an offer for this debt: key 5 reads it
        "confirm_payment_link",
        "goodbye",
    ]
    assert peer.commands[0] == "GET VARIABLE AMDSTATUS"
    assert peer.commands[2].startswith("GET DATA regua/ask_birth_year 10000 4")
    result = await result_of(rig.store, "c1:1-0")
    assert result["outcome"] == "answered_verified" and result["actions"] == [{"kind": "payment_link"}]
    spoken = {e["prompt"]: e for e in result["events"] if e["kind"] == "prompt"}
    assert "cem reais" in spoken["debt"]["text"] and spoken["debt"]["level"] == "full"
    assert any(e == {"kind": "keys", "keys": "****", "state": "second_factor"} for e in result["events"])
    assert peer.variables["REGUA_OUTCOME"] == "answered_verified"


async def test_a_verified_debtor_hears_the_best_offer_and_accepts_it(ivr):
    rig, server, app, audio, catalogue = ivr
    peer = Peer(["1", "1980", "5", "1"])
    await peer.call(server.port, ("c1:1-0",))
    assert prompts_of(peer)[2:] == [
        "debt",
        "menu_offer",
        "offer",
        "offer_confirm",
        "confirm_agreement",
        "goodbye",
    ]
    result = await result_of(rig.store, "c1:1-0")
    (action,) = result["actions"]
    assert action["kind"] == "agreement" and action["offer"].startswith("c")  # paying in one go: the best
    spoken = {e["prompt"]: e["text"] for e in result["events"] if e["kind"] == "prompt"}
    assert "à vista" in spoken["offer"] and "reais" in spoken["offer"]
    assert_nothing_full_before_verification(peer, catalogue, 1)


async def test_declining_the_offer_goes_back_to_the_menu(ivr):
    rig, server, app, audio, catalogue = ivr
    peer = Peer(["1", "1980", "5", "2", "3", "4"])
    await peer.call(server.port, ("c1:1-0",))
    assert prompts_of(peer)[4:8] == ["offer", "offer_confirm", "menu_offer", "debt"]
    result = await result_of(rig.store, "c1:1-0")
    assert [a["kind"] for a in result["actions"]] == ["opt_out"]


@pytest.mark.parametrize(
    ("script", "amd", "outcome", "played"),
    [
        ([], "MACHINE", "voicemail", ["limited_message"]),
        (["2", "9"], "HUMAN", "wrong_number", ["ask_identity", "third_party", "wrong_number_confirm"]),
        (["2", ""], "NOTSURE", "third_party", ["ask_identity", "third_party", "goodbye"]),
        (
            ["1", "1111", "2222"],
            "HUMAN",
            "answered_unverified",
            ["ask_identity", "ask_birth_year", "verify_retry", "ask_birth_year", "limited_message"],
        ),
        (["", ""], "HUMAN", "answered_unverified", ["ask_identity", "ask_identity", "limited_message"]),
        # hang-ups at every kind of command
        ([HANGUP], "HUMAN", "answered_unverified", ["ask_identity"]),
        (["1", DEAD], "HUMAN", "answered_unverified", ["ask_identity", "ask_birth_year"]),
        (["1", CLOSE], "HUMAN", "answered_unverified", ["ask_identity", "ask_birth_year"]),
        (["1", "1980", HANGUP], "HUMAN", "answered_verified", ["ask_identity", "ask_birth_year", "debt"]),
    ],
)
async def test_paths_over_the_wire(ivr, script, amd, outcome, played):
    rig, server, app, audio, catalogue = ivr
    peer = Peer(list(script), amd=amd)
    await peer.call(server.port, ("c1:1-0",))
    assert prompts_of(peer) == played
    result = await result_of(rig.store, "c1:1-0")
    assert result["outcome"] == outcome
    verified_at = next((i for i, p in enumerate(prompts_of(peer)) if p == "debt"), None)
    assert_nothing_full_before_verification(peer, catalogue, verified_at and verified_at - 1)


@pytest.mark.parametrize("args", [(), ("c1:unknown-0",), ("",)])
async def test_unknown_attempt_hears_only_a_none_prompt(ivr, args):
    rig, server, app, audio, catalogue = ivr
    peer = Peer(["1", "1980", "1"])
    await peer.call(server.port, args)
    assert prompts_of(peer) == ["sorry_unknown_call"]
    assert catalogue.level("sorry_unknown_call") is Level.NONE
    assert peer.commands[-1] == "HANGUP"


async def test_unknown_script_is_hung_up(ivr):
    rig, server, app, audio, catalogue = ivr
    peer = Peer([])
    await peer.call(server.port, ("c1:1-0",), script_name="something-else")
    assert peer.commands == ["HANGUP"]
    assert app.calls == 0


async def test_bad_and_slow_peers_do_not_stall_anyone(ivr):
    rig, server, app, audio, catalogue = ivr

    async def raw(payload: bytes, wait: float = 0.0, close: bool = True) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(payload)
        await writer.drain()
        await asyncio.sleep(wait)
        data = b""
        if not close:
            data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
        return data

    slow = asyncio.create_task(raw(b"agi_network: yes\n", wait=0.0, close=False))  # never ends its headers
    attacks = [
        raw(b""),  # closes before any header
        raw(b"agi_network: yes\nagi_network_script: ivr\n"),  # closes during the headers
        raw(b"\xff\xfe garbage \x00\n" * 3),  # bytes that are no AGI at all
        raw(b"x" * 100_000 + b"\n"),  # an absurd line
    ]
    good = Peer(["1", "1980", "4"])
    await asyncio.wait_for(asyncio.gather(good.call(server.port, ("c1:1-0",)), *attacks), 10)
    assert prompts_of(good)[-2:] == ["confirm_stop", "goodbye"]
    assert await asyncio.wait_for(slow, 5) == b""  # the slow peer was dropped after the header time-out
    assert server.rejected >= 4


async def test_many_calls_at_once(ivr):
    rig, server, app, audio, catalogue = ivr
    peers = [Peer(["1", "1980", "2", str(1 + i % 3)]) for i in range(50)]
    await asyncio.wait_for(asyncio.gather(*(p.call(server.port, ("c1:1-0",)) for p in peers)), 20)
    assert all(prompts_of(p)[-2:] == ["confirm_callback", "goodbye"] for p in peers)
    assert server.served == 50


@pytest.mark.parametrize(
    ("number", "phone_in_request", "key", "window", "zone", "offered"),
    [
        ("11987654322", True, "4", "18:00-20:00", "America/Sao_Paulo", 4),  # SP: until 20:00
        ("85987654322", True, "3", "15:00-18:00", "America/Fortaleza", 3),  # CE: nothing after 18:00
        ("21987654322", True, "4", "18:00-19:00", "America/Sao_Paulo", 4),  # RJ: cut at 19:00
        ("85987654322", False, "1", "09:00-12:00", "America/Fortaleza", 3),  # an older request: its phone
    ],
)
async def test_callback_windows_over_the_wire(
    ivr, tmp_path, number, phone_in_request, key, window, zone, offered
):
    rig, server, app, audio, catalogue = ivr
    await rig.load(campaign_csv(tmp_path, [("W1", number, "10/11/2026")], name="w.csv"))
    request = {"campaign": "c1", "account_id": "W1", "language": "pt-BR"}
    if phone_in_request:
        request["phone"] = "+55" + number
    await rig.store.ivr_register("c1:W1-0", request)
    peer = Peer(["1", "1980", "2", key])
    await peer.call(server.port, ("c1:W1-0",))
    assert prompts_of(peer)[-3:] == ["callback_windows", "confirm_callback", "goodbye"]
    result = await result_of(rig.store, "c1:W1-0")
    assert result["actions"] == [{"kind": "callback", "window": window, "timezone": zone}]
    spoken = {e["prompt"]: e["text"] for e in result["events"] if e["kind"] == "prompt"}
    assert spoken["callback_windows"].count("digite") == offered
    assert ("às vinte horas" in spoken["callback_windows"]) is (offered == 4 and number.startswith("11"))


async def test_a_window_ceara_does_not_allow_cannot_be_picked(ivr, tmp_path):
    rig, server, app, audio, catalogue = ivr
    await rig.load(campaign_csv(tmp_path, [("W2", "85987654323", "10/11/2026")], name="w.csv"))
    await rig.store.ivr_register("c1:W2-0", {"campaign": "c1", "account_id": "W2", "phone": "+5585987654323"})
    peer = Peer(["1", "1980", "2", "4", "4"])
    await peer.call(server.port, ("c1:W2-0",))
    assert prompts_of(peer)[-4:] == ["callback_windows", "invalid_option", "callback_windows", "goodbye"]
    assert (await result_of(rig.store, "c1:W2-0"))["actions"] == []


async def test_the_app_hears_the_admins_edits_from_the_next_call(ivr, settings):
    rig, server, app, audio, catalogue = ivr
    edits = {"goodbye": {"pt-BR": "Tchau!"}}
    await rig.store.save_prompt_overrides(edits, MON_1000, "test", {"prompt": "goodbye"})
    peer = Peer(["1", "1980", "4"])
    await peer.call(server.port, ("c1:1-0",))
    result = await result_of(rig.store, "c1:1-0")
    assert [e["text"] for e in result["events"] if e.get("prompt") == "goodbye"] == ["Tchau!"]
    # an edit that loosens a level (saved before levels were checked) is refused: the call goes on
    bad = {"ask_identity": {"level": "full", "pt-BR": "Olá {name}, você deve {amount_words}. Digite 1."}}
    await rig.store.save_prompt_overrides(bad, MON_1000, "test", {"prompt": "ask_identity"})
    await rig.raw.delete(f"{keys.IVR_RESULT}c1:1-0")
    peer = Peer(["1", "1980", "4"])
    await peer.call(server.port, ("c1:1-0",))
    result = await result_of(rig.store, "c1:1-0")
    first = next(e for e in result["events"] if e["kind"] == "prompt")
    assert first["prompt"] == "ask_identity" and first["level"] == "limited" and "cem" not in first["text"]


INPUT = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "9", "0", "*", "#", "", "1980", "1979"]),
    st.just(HANGUP),
    st.just(DEAD),
    st.just(CLOSE),
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(INPUT, max_size=8), amd=st.sampled_from(["HUMAN", "NOTSURE", "MACHINE", None]))
async def test_random_callers_never_hear_the_debt_unverified(ivr, script, amd):
    """Whatever a caller presses, times out or hangs up on: what went down the wire at a level
    'full' was only ever played after the right birth year was typed at its question."""
    rig, server, app, audio, catalogue = ivr
    # every example is a new call on the same attempt: forget the last one's saved result, or
    # result_of() may read it before this call's is written
    await rig.raw.delete(f"{keys.IVR_RESULT}c1:1-0")
    peer = Peer(list(script), amd=amd)
    await asyncio.wait_for(peer.call(server.port, ("c1:1-0",)), 10)
    played = prompts_of(peer)
    verified_by = {
        i for i, (f, typed) in enumerate(peer.answers) if f == "regua/ask_birth_year" and typed == "1980"
    }
    first_full = next((i for i, p in enumerate(played) if catalogue.level(p) is Level.FULL), None)
    if first_full is not None:
        assert verified_by, played
        assert played[first_full] == "debt"
        # the right answer came before the first full prompt was played
        answered_files = [f.removeprefix("regua/") for f, _ in peer.answers]
        assert answered_files.index("ask_birth_year") < first_full
    if amd == "MACHINE":
        assert played == ["limited_message"]
    result = await result_of(rig.store, "c1:1-0")
    assert result["verified"] == bool(first_full is not None)

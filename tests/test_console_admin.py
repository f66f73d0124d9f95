"""The console's administration pages, in process: every page in both languages, changes
within the law applied live and audited, changes looser than the law refused with the
validator's key and reason (nothing stored), prompts edited and heard, users and tokens
from creation to revocation, and no supervisor on any admin route."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from dialer.domain import Channel
from dialer.formats.config_file import load_settings
from dialer.runtime import people
from dialer.runtime.wiring import Runtime
from dialer.web import auth, console_admin, console_admin_users, prompts
from dialer.web.app import create_app
from dialer.web.common import Services
from tests.runtime_helpers import make_rig
from tests.test_auth import concrete
from tests.test_ivr_audio import tone

MON_1000 = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
PASSWORDS = {"ana": "ana-password-123", "eve": "eve-password-123", "sara": "sara-password-123"}
USERS = {"ana": ("admin", "pt-BR"), "eve": ("admin", "en"), "sara": ("supervisor", "pt-BR")}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture
async def admin(redis_url, tmp_path):
    """The service as run with ``--config company.toml`` (its sounds in the test's directory)."""
    company = tmp_path / "company.toml"
    company.write_text(f'[service]\ndata_dir = "{tmp_path / "var"}"\n\n[company]\nname = "ACME Varejo"\n')
    own = load_settings(company, env={})
    rig = await make_rig(redis_url, own, MON_1000)
    runtime = Runtime(own, rig.policy, rig.cadence, rig.clock, b"test", config_path=str(company))
    for name, (role, language) in USERS.items():
        await people.add_user(rig.store, name, role, PASSWORDS[name], MON_1000, "test", language=language)
    client = TestClient(
        TestServer(create_app(Services(runtime, rig.store, rig.telephony, rig.sms, auth.TokenBook(()))))
    )
    await client.start_server()
    yield client, rig, runtime
    await client.close()
    await rig.close()


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


async def sign_in(client: TestClient, name: str, password: str | None = None) -> str:
    """Sign ``name`` in (alone: the cookie jar is emptied first); the session's CSRF token."""
    client.session.cookie_jar.clear()
    r = await client.post(
        "/login",
        data={"username": name, "password": password or PASSWORDS[name]},
        headers=origin(client),
        allow_redirects=False,
    )
    assert r.status == 302, await r.text()
    page = await (await client.get("/")).text()
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


async def post(client: TestClient, path: str, csrf: str, data: dict[str, str]):
    return await client.post(path, data={"csrf": csrf, **data}, headers=origin(client), allow_redirects=False)


async def follow(client: TestClient, response) -> str:
    """The page a change redirected to (303), as the browser shows it."""
    assert response.status == 303, (response.status, await response.text())
    page = await client.get(response.headers["Location"])
    assert page.status == 200
    return await page.text()


def recording(csrf: str, language: str, data: bytes) -> FormData:
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("language", language)
    form.add_field("file", data, filename="recording.mp3", content_type="audio/mpeg")
    return form


def hours_form(values: dict[str, str], sms: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **{f"voice-{d}": values[d] for d in DAYS},
        **{f"sms-{d}": (sms or values)[d] for d in DAYS},
    }


SP_LAW = {**dict.fromkeys(DAYS[:5], "08:00-20:00"), "sat": "08:00-14:00", "sun": "closed"}

PAGES = [
    ("/admin", "Administração", "Administration"),
    ("/admin/hours", "Horários de contato", "Calling hours"),
    ("/admin/hours/BR/SP", "Segunda-feira", "Monday"),
    ("/admin/hours/US/default", "Estados Unidos", "United States"),
    ("/admin/holidays", "Feriados", "Holidays"),
    ("/admin/cadence", "Régua de cobrança", "Cadence"),
    ("/admin/cadence/boleto/d10_call", "Dias a partir do vencimento", "Days from the due date"),
    ("/admin/caps", "Ligações por conta em 7 dias", "Calls per account in 7 days"),
    ("/admin/limited-message", "Mensagem limitada", "Limited message"),
    ("/admin/prompts", "Falas da URA", "Prompts"),
    ("/admin/prompts/ask_identity", "Enviar uma gravação", "Upload a recording"),
    ("/admin/users", "Usuários", "Users"),
]


async def test_every_admin_page_in_portuguese_and_in_english(admin):
    client, rig, runtime = admin
    for name, language in (("ana", "pt-BR"), ("eve", "en")):
        await sign_in(client, name)
        for path, pt, en in PAGES:
            r = await client.get(path)
            html = await r.text()
            assert r.status == 200, (path, html[-2000:])
            assert r.headers["Content-Language"] == language
            assert (pt if language == "pt-BR" else en) in html, (path, language)
            assert 'style="' not in html and "<script>" not in html  # the CSP allows neither
            forms = html.count("<form")
            assert html.count('name="csrf"') == forms, path  # every form carries the token
            for control in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html):
                assert f'for="{control}"' in html, (path, control)  # every control has a label


async def test_hours_within_the_law_are_applied_and_looser_ones_refused(admin):
    client, rig, runtime = admin
    csrf = await sign_in(client, "ana")
    page = await (await client.get("/admin/hours/BR/SP")).text()
    assert "Lei SP 15.426/2014" in page and "08:00-14:00" in page  # the floor beside each value
    narrower = {**SP_LAW, "mon": "09:00-18:00", "sat": "Fechado"}
    html = await follow(client, await post(client, "/admin/hours/BR/SP", csrf, hours_form(narrower)))
    assert 'id="done"' in html and "versão da configuração 1" in html
    sp = runtime.settings.packs["BR"].hours["SP"]
    assert sp.voice.mon == "09:00-18:00" and sp.voice.sat == "closed" and sp.sms is not None
    assert runtime.policy.packs["BR"].windows("SP", Channel.VOICE)[0] == ((9 * 3600, 18 * 3600),)  # live
    overlay, version = await rig.store.config_overlay()
    assert version == 1 and "[packs.BR.hours.SP.voice]" in overlay
    audit = [e for e in await rig.store.global_audit() if e["kind"] == "config_change"]
    assert audit[-1]["actor"] == "user:ana"
    # a Sunday call in São Paulo: looser than the law, refused with the key and the reason
    looser = {**SP_LAW, "sun": "10:00-12:00"}
    r = await post(client, "/admin/hours/BR/SP", csrf, hours_form(looser))
    html = await r.text()
    assert r.status == 400 and 'id="refusal"' in html
    assert "packs.BR.hours.SP.voice" in html and "looser than the law" in html and "sun 10:00-12:00" in html
    assert 'value="10:00-12:00"' in html  # what the admin typed is kept to fix
    assert await rig.store.config_overlay() == (overlay, 1)  # nothing stored
    assert runtime.settings.packs["BR"].hours["SP"].voice.sun == "closed"
    # the default's SMS hours may not open on a Sunday either; an unreadable value says why
    r = await post(
        client, "/admin/hours/BR/default", csrf, hours_form(SP_LAW, {**SP_LAW, "sun": "09:00-10:00"})
    )
    assert r.status == 400 and "packs.BR.hours.default.sms" in await r.text()
    r = await post(client, "/admin/hours/US/default", csrf, hours_form({**SP_LAW, "mon": "8h"}))
    assert r.status == 400 and "is not a range like 08:00-20:00" in await r.text()
    assert (await rig.store.config_overlay())[1] == 1
    assert (await client.get("/admin/hours/BR/XX")).status == 404
    # every change dropped: back to the files, audited too
    html = await follow(client, await post(client, "/admin/config/clear", csrf, {}))
    assert "versão da configuração 2" in html and runtime.settings.packs["BR"].hours.get("SP") is None
    assert (await client.get("/admin/hours/FR/default")).status == 404


async def test_the_company_holidays_listed_added_and_removed(admin):
    client, rig, runtime = admin
    csrf = await sign_in(client, "eve")
    add = {"date": "01-25", "name": "Aniversário de São Paulo", "regions": "sp, rj"}
    html = await follow(client, await post(client, "/admin/holidays/BR", csrf, add))
    assert "Aniversário de São Paulo" in html and "SP, RJ" in html and "every year" in html
    (holiday,) = runtime.settings.packs["BR"].custom_holidays
    assert holiday.date == "01-25" and holiday.regions == ("SP", "RJ")
    await follow(
        client, await post(client, "/admin/holidays/BR", csrf, {"date": "2026-12-24", "name": "Véspera"})
    )
    assert len(runtime.settings.packs["BR"].custom_holidays) == 2
    r = await post(client, "/admin/holidays/BR", csrf, {"date": "2026-13-01", "name": "Nope"})
    html = await r.text()
    assert r.status == 400 and "packs.BR.custom_holidays.2.date" in html and "not YYYY-MM-DD or MM-DD" in html
    assert len(runtime.settings.packs["BR"].custom_holidays) == 2
    await follow(
        client, await post(client, "/admin/holidays/BR/remove", csrf, {"index": "0", "date": "01-25"})
    )
    assert [h.name for h in runtime.settings.packs["BR"].custom_holidays] == ["Véspera"]
    stale = await post(client, "/admin/holidays/BR/remove", csrf, {"index": "0", "date": "01-25"})
    assert stale.status == 400 and "no longer in the list" in await stale.text()


async def test_a_cadence_step_edited_and_one_compliance_forbids_refused(admin):
    client, rig, runtime = admin
    csrf = await sign_in(client, "ana")
    step = {
        "offset_days": "12",
        "channel": "voice",
        "template": "ivr",
        "when": "always",
        "max_attempts": "2",
        "retry_after_minutes": "720",
        "fallback": "none",
    }
    await follow(client, await post(client, "/admin/cadence/boleto/d10_call", csrf, step))
    d10 = next(s for s in runtime.settings.cadence["boleto"] if s.id == "d10_call")
    assert (d10.offset_days, d10.max_attempts, d10.retry_after_minutes, d10.fallback) == (12, 2, 720, "none")
    assert len(runtime.settings.cadence["boleto"]) == 7  # the other steps kept
    # an SMS nobody asked for with anything but the limited message
    sms = {**step, "channel": "sms", "template": "full_debt", "offset_days": "1"}
    r = await post(client, "/admin/cadence/boleto/d1", csrf, sms)
    html = await r.text()
    assert r.status == 400 and "cadence.boleto.2.template" in html and "limited" in html
    assert runtime.settings.cadence["boleto"][2].template == "limited"
    r = await post(
        client, "/admin/cadence/boleto/d1", csrf, {**sms, "template": "limited", "max_attempts": "many"}
    )
    assert r.status == 400 and "valid integer" in await r.text()
    assert (await client.get("/admin/cadence/boleto/nope")).status == 404


async def test_caps_within_the_floor_applied_and_above_the_7_in_7_refused(admin):
    client, rig, runtime = admin
    csrf = await sign_in(client, "ana")
    page = await (await client.get("/admin/caps")).text()
    assert "no máximo 7" in page and "Reg F 1006.14(b)(2)" in page
    caps = {"voice_per_phone_per_day": "1", "voice_per_account_per_7_days": "5", "sms_per_phone_per_day": "1"}
    await follow(client, await post(client, "/admin/caps/US", csrf, caps))
    assert runtime.settings.packs["US"].caps.voice_per_account_per_7_days == 5
    assert runtime.policy.packs["US"].caps.voice_per_account_per_7_days == 5
    r = await post(client, "/admin/caps/US", csrf, {**caps, "voice_per_account_per_7_days": "8"})
    html = await r.text()
    assert r.status == 400 and "packs.US.caps.voice_per_account_per_7_days" in html and "8 exceeds 7" in html
    assert runtime.settings.packs["US"].caps.voice_per_account_per_7_days == 5
    r = await post(client, "/admin/caps/BR", csrf, {**caps, "voice_per_phone_per_day": "0"})
    assert r.status == 400 and "greater than or equal to 1" in await r.text()


async def test_the_limited_message_edited_and_one_that_reveals_the_debt_refused(admin):
    client, rig, runtime = admin
    csrf = await sign_in(client, "ana")
    sms = {
        "pt-BR": "{name}, aqui é {contact_name}. Ligue para {callback_number}. Para sair, responda SAIR.",
        "en": "{name}, this is {contact_name}. Call {callback_number}. Reply STOP to opt out.",
    }
    html = await follow(client, await post(client, "/admin/limited-message/sms", csrf, sms))
    assert "Maria Silva, aqui é" in html  # the preview, with a sample debtor
    assert runtime.settings.limited_message.sms["en"] == sms["en"]
    leak = {**sms, "en": "{name}, your debt is overdue. Call {callback_number}."}
    r = await post(client, "/admin/limited-message/sms", csrf, leak)
    html = await r.text()
    assert r.status == 400 and "limited_message.sms.en" in html and "debt" in html
    assert runtime.settings.limited_message.sms["en"] == sms["en"]
    voice = {
        "pt-BR": "Mensagem para {name}: fale com a Exemplo Cobranças pelo {callback_number}.",
        "en": "Hello {name}, call {callback_number}.",
    }
    r = await post(client, "/admin/limited-message/voice", csrf, voice)
    assert r.status == 400 and "reveals collection" in await r.text()


async def test_prompts_edited_within_their_level_and_heard(admin, tmp_path):
    client, rig, runtime = admin
    csrf = await sign_in(client, "ana")
    listing = await (await client.get("/admin/prompts")).text()
    assert "ask_identity" in listing and "limitado" in listing and "completo" in listing
    fine = "Bom dia. Procuramos {name}. Se for você, digite 1; se não, digite 2."
    page = await (await client.get("/admin/prompts/ask_identity")).text()
    en = re.search(r'name="en"[^>]*>([^<]*)<', page).group(1)
    html = await follow(
        client,
        await post(
            client, "/admin/prompts/ask_identity", csrf, {"pt-BR": fine, "en": en, "level": "limited"}
        ),
    )
    assert "Bom dia. Procuramos" in html
    overrides, _ = await rig.store.prompt_overrides()
    assert overrides["ask_identity"] == {"pt-BR": fine}  # only what changed
    # the same check as PUT /api/prompts/{id}: a limited prompt says nothing of a debt
    leak = {"pt-BR": "Olá {name}, sua dívida venceu. Digite 1.", "en": en}
    r = await post(client, "/admin/prompts/ask_identity", csrf, leak)
    html = await r.text()
    assert r.status == 400 and "ask_identity.pt-BR" in html and "debt" in html
    assert (await rig.store.prompt_overrides())[0]["ask_identity"] == {"pt-BR": fine}
    r = await post(client, "/admin/prompts/goodbye", csrf, {"pt-BR": "Tchau.", "en": "Bye.", "level": "full"})
    assert r.status == 400 and "stricter" in await r.text()
    # hear it: the current text through the TTS, as WAV, cached by content in the sounds directory
    r = await client.get("/api/prompts/ask_identity/speech?language=pt-BR")
    body = await r.read()
    assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE" and len(body) > 8000
    sounds = prompts.sounds_dir(runtime.settings)
    cached = sorted(sounds.rglob("*.wav"))
    assert len(cached) == 1
    assert (await (await client.get("/api/prompts/ask_identity/speech?language=pt-BR")).read()) == body
    assert sorted(sounds.rglob("*.wav")) == cached  # the same text is rendered once
    r = await client.get("/api/prompts/limited_message/speech?language=en")
    assert r.status == 200 and (await r.read())[:4] == b"RIFF"
    assert (await client.get("/api/prompts/nope/speech")).status == 404
    assert (await client.get("/api/prompts/goodbye/recording?language=pt-BR")).status == 404
    # a recording: converted, attached, heard as converted
    mp3 = tone(tmp_path / "goodbye.mp3", 440, seconds=1.0).read_bytes()
    r = await client.post(
        f"/admin/prompts/goodbye/recording?csrf={csrf}",
        data=recording(csrf, "en", mp3),
        headers=origin(client),
        allow_redirects=False,
    )
    html = await follow(client, r)
    assert 'id="recording-en"' in html
    r = await client.get("/api/prompts/goodbye/recording?language=en")
    body = await r.read()
    assert r.status == 200 and body[:4] == b"RIFF"
    assert int.from_bytes(body[24:28], "little") == 8000  # 8 kHz for the telephone
    bad = await client.post(
        f"/admin/prompts/goodbye/recording?csrf={csrf}",
        data=recording(csrf, "en", b"not audio"),
        headers=origin(client),
    )
    assert bad.status == 400 and "not an audio file" in await bad.text()
    kinds = [e["kind"] for e in await rig.store.global_audit()]
    assert kinds.count("prompt_change") == 2


async def test_users_and_tokens_from_creation_to_revocation(admin):
    client, rig, runtime = admin
    csrf = await sign_in(client, "ana")
    new = {"name": "otto", "role": "operator", "language": "en", "password": "otto-password-123"}
    html = await follow(client, await post(client, "/admin/users", csrf, new))
    assert 'id="user-otto"' in html and "Usuário criado." in html
    r = await post(client, "/admin/users", csrf, {**new, "password": "short"})
    assert r.status == 400 and "at least 10 characters" in await r.text()
    await follow(
        client, await post(client, "/admin/users/otto", csrf, {"role": "supervisor", "language": "pt-BR"})
    )
    assert (await rig.store.user("otto"))["role"] == "supervisor"
    assert (await rig.store.user("otto"))["language"] == "pt-BR"
    await follow(client, await post(client, "/admin/users/otto/disable", csrf, {}))
    assert (await rig.store.user("otto"))["disabled"] is True
    await follow(client, await post(client, "/admin/users/otto/enable", csrf, {}))
    await follow(
        client, await post(client, "/admin/users/otto/password", csrf, {"password": "another-password-9"})
    )
    # an admin cannot disable themself, nor take away their own admin role
    r = await post(client, "/admin/users/ana/disable", csrf, {})
    assert r.status == 400 and "Você não pode desativar a si mesmo" in await r.text()
    r = await post(client, "/admin/users/ana", csrf, {"role": "supervisor", "language": "pt-BR"})
    assert r.status == 400 and "papel de administrador" in await r.text()
    assert (await rig.store.user("ana"))["role"] == "admin" and not (await rig.store.user("ana")).get(
        "disabled"
    )
    # a token, shown once; the list shows its id, never its secret
    r = await post(client, "/admin/tokens", csrf, {"user": "otto", "label": "monitoring"})
    html = await r.text()
    token = re.search(r'id="issued-token" readonly value="(rg_[^"]+)"', html).group(1)
    secret = token.split("_", 2)[2]
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status == 200
    listing = await (await client.get("/admin/users")).text()
    token_id = token.split("_")[1]
    assert f"rg_{token_id}_…" in listing and secret not in listing and "monitoring" in listing
    await follow(client, await post(client, f"/admin/tokens/{token_id}/revoke", csrf, {}))
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status == 401
    r = await post(client, "/admin/tokens/nope/revoke", csrf, {})
    assert r.status == 400
    # the new password works; the changes are audited with the admin who made them
    await sign_in(client, "otto", "another-password-9")
    kinds = {e["kind"]: e["actor"] for e in await rig.store.global_audit()}
    assert kinds["user_added"] == kinds["user_changed"] == kinds["token_issued"] == "user:ana"
    assert kinds["token_revoked"] == "user:ana"


def admin_routes() -> list[tuple[str, str]]:
    tables = (console_admin.routes, console_admin_users.routes)
    found = [(r.method, r.path) for t in tables for r in t]
    found += [(r.method, r.path) for r in prompts.routes if r.path.endswith(("/speech", "/recording"))]
    return found


async def test_a_supervisor_is_refused_on_every_admin_route(admin):
    client, rig, runtime = admin
    found = admin_routes()
    assert all(r.role == "admin" for t in (console_admin.routes, console_admin_users.routes) for r in t)
    assert len(found) >= 25
    csrf = await sign_in(client, "sara")
    for method, path in found:
        url = concrete(path).replace("/x/x", "/BR/SP")
        r = await client.request(
            method,
            url,
            data={"csrf": csrf} if method == "POST" else None,
            headers=origin(client),
            allow_redirects=False,
        )
        assert r.status == 403, (method, url, r.status)
    assert (await rig.store.config_overlay())[1] == 0


async def test_a_change_without_the_pages_csrf_token_is_refused(admin):
    client, rig, runtime = admin
    await sign_in(client, "ana")
    r = await client.post("/admin/caps/BR", data={"voice_per_phone_per_day": "1"}, headers=origin(client))
    assert r.status == 403
    assert (await rig.store.config_overlay())[1] == 0

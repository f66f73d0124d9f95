"""The supervisor console, in process (aiohttp's TestClient, the real store and runtime):
every page in Portuguese and in English, the forms (upload with its error report,
lifecycle, status, callbacks, do-not-contact), roles and CSRF; the timeline's sentences
for every event kind, table-tested; the SVG chart; the bounded account search."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from dialer.formats import timeline_text as tt
from dialer.runtime import people
from dialer.runtime.wiring import Runtime
from dialer.web import auth, i18n
from dialer.web.app import create_app
from dialer.web.common import Services
from dialer.web.console_callbacks import in_window
from dialer.web.console_campaigns import draw_chart, nice_step
from tests.runtime_helpers import HEADER, make_rig

ROOT = Path(__file__).resolve().parents[1]
MON_0730 = datetime.fromisoformat("2026-11-23T07:30:00-03:00")  # before every state's calling hours
USERS = {  # name: (role, language)
    "sara": ("supervisor", "pt-BR"),
    "sam": ("supervisor", "en"),
    "ana": ("admin", "pt-BR"),
    "otto": ("operator", "pt-BR"),
}
ROWS = [  # account, name, phone, due date
    ("A0", "José Conceição", "+5511987654320", "01/11/2026"),  # verifies, asks for the payment link
    ("A8", "Maria Souza", "+5511987654328", "01/11/2026"),  # verifies, asks for a callback
    ("AM", "Ana Araújo", "+5592987654322", "01/11/2026"),  # Manaus: an hour behind São Paulo
    ("A3", "Pedro Gomes", "+5511987654323", "01/11/2026"),  # nobody answers
]
BAD_ROWS = [
    "B1;Sem Telefone;;01/11/2026;100,00;sim;sim;1980\n",
    "B2;Data Ruim;+5511987654324;31/02/2026;100,00;sim;sim;1980\n",
    "B3;=cmd;+5511987654325;01/11/2026;=1+1;sim;sim;1980\n",
]


def campaign_file() -> bytes:
    good = "".join(f"{a};{n};{p};{d};250,00;sim;sim;1980\n" for a, n, p, d in ROWS)
    return (HEADER + good + "".join(BAD_ROWS)).encode()


@pytest.fixture
async def web(redis_url, settings):
    rig = await make_rig(redis_url, settings, MON_0730)
    runtime = Runtime(settings, rig.policy, rig.cadence, rig.clock, b"test")
    for name, (role, language) in USERS.items():
        await people.add_user(
            rig.store, name, role, f"{name}-password-123", MON_0730, "test", language=language
        )
    client = TestClient(
        TestServer(create_app(Services(runtime, rig.store, rig.telephony, rig.sms, auth.TokenBook(()))))
    )
    await client.start_server()
    yield client, rig
    await client.close()
    await rig.close()


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


async def sign_in(client: TestClient, name: str) -> str:
    """Signs ``name`` in (the cookie jar keeps the session); the page's CSRF token."""
    client.session.cookie_jar.clear()
    r = await client.post(
        "/login",
        data={"username": name, "password": f"{name}-password-123"},
        headers=origin(client),
        allow_redirects=False,
    )
    assert r.status == 302, await r.text()
    page = await (await client.get("/callbacks")).text()
    found = re.search(r'data-csrf="([^"]+)"', page)
    return found.group(1) if found else ""  # an operator sees no console page


async def post(client: TestClient, path: str, csrf: str, **fields: str):
    return await client.post(
        path, data={"csrf": csrf, **fields}, headers=origin(client), allow_redirects=False
    )


async def upload(client: TestClient, csrf: str, name: str, body: bytes, filename: str = "carteira.csv"):
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", body, filename=filename, content_type="text/csv")
    return await client.post(f"/campaigns/{name}/upload?csrf={csrf}", data=form, headers=origin(client))


def text_of(html: str) -> str:
    """The page's words, without tags (for sentences split by markup)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


def no_inline_code(html: str) -> None:
    """The Content-Security-Policy allows no inline script or style: none is written."""
    assert "style=" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline handlers


def forms_carry_csrf(html: str, csrf: str) -> None:
    for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, flags=re.S):
        assert f'name="csrf" value="{csrf}"' in form, form[:200]


def labelled(html: str) -> None:
    """Every visible input, select and textarea has a label."""
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in tag:
            continue
        ident = re.search(r'id="([^"]+)"', tag)
        assert ident and f'for="{ident.group(1)}"' in html, tag


async def loaded_and_started(client: TestClient, rig, csrf: str) -> str:
    r = await upload(client, csrf, "c1", campaign_file())
    assert r.status == 200, await r.text()
    page = await r.text()
    r = await post(client, "/campaigns/c1/do/start", csrf)
    assert r.status == 303 and r.headers["Location"] == "/campaigns/c1?did=start"
    return page


# ---------------------------------------------------------------------------- pages and forms


async def test_campaign_upload_error_report_lifecycle_and_counters_in_portuguese(web):
    client, rig = web
    csrf = await sign_in(client, "sara")
    home = await (await client.get("/")).text()
    assert "<h1>Campanhas</h1>" in home and "Nenhuma campanha ainda." in home
    no_inline_code(home)
    labelled(home)
    # a new campaign: name it, then upload its first file
    r = await client.get("/new-campaign?name=c1")
    assert r.status == 200 and "Nova campanha" in await r.text()
    assert 'action="/campaigns/c1/upload?csrf=' in await r.text()
    r = await client.get("/new-campaign?name=bad%20name!")
    assert r.status == 400 and "Escolha outro nome" in await r.text()
    page = await loaded_and_started(client, rig, csrf)
    assert "Arquivo carregado" in page and "carteira.csv" in page
    assert re.search(r'id="rejected-count">3<', page)
    link = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)" download="c1-errors.csv"', page)
    assert link, "the error report is offered as a CSV download"
    report = base64.b64decode(link.group(1)).decode("utf-8-sig")
    assert report.splitlines()[0] == "line,column,value,reason,account_id"
    assert len(report.splitlines()) == 4 and ",B2" in report and "'=1+1" in report  # formulas neutralised
    assert "As linhas rejeitadas não foram carregadas" in page
    no_inline_code(page)
    labelled(page)
    forms_carry_csrf(page, csrf)
    # started: the notice, the next actions (pause, stop) with a confirmation each
    page = await (await client.get("/campaigns/c1?did=start")).text()
    assert "A campanha começou" in page and "em andamento" in page
    assert 'id="do-pause"' in page and 'id="do-stop"' in page and 'id="do-start"' not in page
    assert page.count("data-confirm=") >= 2
    assert (
        'href="/api/campaigns/c1/report.csv"' in page
        and 'href="/api/campaigns/c1/report.csv?excel=1"' in page
    )
    assert 'data-refresh="10" data-src="/campaigns/c1/part/counters"' in page
    forms_carry_csrf(page, csrf)
    # starting again is refused with a sentence, not a traceback
    r = await post(client, "/campaigns/c1/do/start", csrf)
    assert r.status == 409 and "não pode fazer isso" in await r.text()
    # 07:30: the rules hold every call back; the counters and the held-back table say why
    await rig.drive(MON_0730 + timedelta(minutes=5), step=timedelta(minutes=5))
    counters = await (await client.get("/campaigns/c1/part/counters")).text()
    assert "<html" not in counters and "Retidos pelas regras" in counters
    assert "fora do horário permitido" in counters
    assert 'href="/accounts?campaign=c1&amp;reason=outside_calling_hours"' in counters
    # then the day: calls, outcomes per hour on the chart, in the reader's zone
    await rig.drive(datetime.fromisoformat("2026-11-23T12:00:00-03:00"))
    page = await (await client.get("/campaigns/c1")).text()
    assert "<svg" in page and 'role="img"' in page and "Resultados por hora" in page
    assert "atendida, devedor verificado" in page  # the legend, in words
    assert "Hora (America/Sao_Paulo)" in page and ">08:00<" in page  # hours in São Paulo
    home = await (await client.get("/")).text()
    assert 'href="/campaigns/c1"' in home and 'data-src="/campaigns-rows"' in home
    rows = await (await client.get("/campaigns-rows")).text()
    assert "<tr>" in rows and "em andamento" in rows
    # pause and resume, through the forms
    r = await post(client, "/campaigns/c1/do/pause", csrf)
    assert r.status == 303
    assert "A campanha está pausada" in await (await client.get("/campaigns/c1?did=pause")).text()


async def test_a_bad_upload_shows_the_reason_never_a_traceback(web):
    client, rig = web
    csrf = await sign_in(client, "sara")
    r = await upload(client, csrf, "c2", b"who;what\n1;2\n")
    text = await r.text()
    assert r.status == 400 and "O arquivo não foi carregado" in text and "Traceback" not in text
    assert "Nova campanha" in text  # nothing was created: the new-campaign page again
    r = await upload(client, csrf, "c2", b"")
    assert r.status == 400 and "O arquivo não foi carregado" in await r.text()
    r = await client.get("/campaigns/nope")
    assert r.status == 404 and "Não há campanha chamada “nope”" in await r.text()
    # a multipart form without the CSRF token in its address is refused
    form = FormData()
    form.add_field("file", campaign_file(), filename="x.csv")
    r = await client.post("/campaigns/c2/upload", data=form, headers=origin(client))
    assert r.status == 403


async def test_search_held_back_and_the_account_page_in_both_languages(web):
    client, rig = web
    csrf = await sign_in(client, "sara")
    await loaded_and_started(client, rig, csrf)
    await rig.drive(MON_0730 + timedelta(minutes=5), step=timedelta(minutes=5))
    # held back now, for a reason
    page = await (await client.get("/accounts?campaign=c1&reason=outside_calling_hours")).text()
    assert "Contas de c1 retidas agora: fora do horário permitido" in page
    assert all(f'href="/accounts/{a}"' in page for a, *_ in ROWS)
    labelled(page)
    r = await client.get("/accounts?campaign=c1&reason=made_up")
    assert r.status == 400 and "não é um dos motivos" in await r.text()
    # search: by name without accents, by phone digits, by the exact id
    page = await (await client.get("/accounts?q=jose+conceicao")).text()
    assert 'href="/accounts/A0"' in page and "José Conceição" in page and 'href="/accounts/A8"' not in page
    page = await (await client.get("/accounts?q=(92)+98765-4322")).text()
    assert 'href="/accounts/AM"' in page and 'href="/accounts/A0"' not in page and "telefone" in page
    page = await (await client.get("/accounts?q=A8")).text()
    assert 'href="/accounts/A8"' in page and "código da conta" in page
    page = await (await client.get("/accounts?q=ninguem")).text()
    assert "Nenhuma conta encontrada" in page
    page = await (await client.get("/accounts?q=a&limit=2")).text()  # every name has an 'a'
    assert 'id="result-cut"' in page and "há mais" in page
    # why was Ana (Manaus) not called? In sentences, with her local time beside ours
    page = await (await client.get("/accounts/AM")).text()
    words = text_of(page)
    assert "Ana Araújo" in words and "R$ 250,00" in words and "1 de nov. de 2026" in words
    assert "não ligamos para +55 92 98765-4322 — fora do horário permitido para Amazonas (AM)" in words
    assert "próxima vez permitida seg. 23 nov. 09:00 (08:00 hora do devedor)" in words
    assert "hora do devedor 06:30" in words  # 07:30 in São Paulo
    assert (
        "<details><summary>evento bruto</summary><pre>" in page and "&#34;outside_calling_hours&#34;" in page
    )
    no_inline_code(page)
    labelled(page)
    forms_carry_csrf(page, csrf)
    # the calls of the day, in sentences
    await rig.drive(datetime.fromisoformat("2026-11-23T12:00:00-03:00"))
    words = text_of(await (await client.get("/accounts/A0")).text())
    assert "ligação para +55 11 98765-4320: atendida, devedor verificado (55 s)" in words
    assert "pediu o link de pagamento por SMS" in words
    assert "link de pagamento enviado por SMS para +55 11 98765-4320 (completo)" in words
    # status change through the form (operations.set_account_status), with a note
    r = await post(client, "/accounts/A0/status", csrf, status="paid", note="pagou no caixa")
    assert r.status == 303 and r.headers["Location"] == "/accounts/A0?did=status"
    words = text_of(await (await client.get("/accounts/A0?did=status")).text())
    assert "A situação da conta foi alterada" in words
    assert "conta marcada como paga (era aberta) por sara: “pagou no caixa”" in words
    audit = [e for e in await rig.store.global_audit() if e["kind"] == "account_status"]
    assert audit[-1]["actor"] == "user:sara" and audit[-1]["data"]["note"] == "pagou no caixa"
    r = await post(client, "/accounts/A0/status", csrf, status="gone")
    assert r.status == 400 and "Escolha a nova situação" in await r.text()
    r = await client.get("/accounts/NOPE")
    assert r.status == 404 and "Nenhuma campanha tem uma conta" in await r.text()
    # the same in English
    await sign_in(client, "sam")
    page = await (await client.get("/accounts/AM")).text()
    words = text_of(page)
    assert "we did not call +55 92 98765-4322 — outside the calling hours allowed for Amazonas (AM)" in words
    assert "next time allowed Mon 23 Nov 09:00 (08:00 debtor's time)" in words
    assert "What happened, newest first" in words and "raw event" in words
    words = text_of(await (await client.get("/accounts/A0")).text())
    assert "call to +55 11 98765-4320: answered, debtor verified (55 s)" in words
    assert "account marked paid (was open) by sara" in words and "R$250.00" in words
    page = await (await client.get("/accounts?campaign=c1&reason=outside_calling_hours")).text()
    assert "Accounts of c1 held back now: outside the calling hours" in page
    page = await (await client.get("/campaigns/c1")).text()
    assert (
        "Outcomes per hour" in page
        and "answered, debtor verified" in page
        and "Held back by the rules" in page
    )


async def test_the_callback_queue_claim_and_done(web):
    client, rig = web
    csrf = await sign_in(client, "sara")
    page = await (await client.get("/callbacks")).text()
    assert "Nenhum retorno esperando." in page
    await loaded_and_started(client, rig, csrf)
    await rig.drive(datetime.fromisoformat("2026-11-23T09:00:00-03:00"))
    page = await (await client.get("/callbacks")).text()
    words = text_of(page)
    assert "Maria Souza" in words and "+55 11 98765-4328" in words and "09:00–12:00" in words
    assert "Sim, agora" in words and "(America/Sao_Paulo)" in words and "fora deste horário" not in words
    cid = re.search(r'action="/callbacks/([0-9a-f]+)/claim"', page).group(1)
    no_inline_code(page)
    forms_carry_csrf(page, csrf)
    assert 'data-refresh="30" data-src="/callbacks/rows"' in page
    r = await post(client, f"/callbacks/{cid}/claim", csrf)
    assert r.status == 303
    page = await (await client.get("/callbacks?did=claimed")).text()
    assert "O pedido é seu" in page and f'action="/callbacks/{cid}/claim"' not in page  # mine already
    assert re.search(r"<td>sara<br>", page)
    # another supervisor sees who took it, in English, and is asked before taking it over
    sam = await sign_in(client, "sam")
    page = await (await client.get("/callbacks")).text()
    assert "sara took this request already. Take it over?" in page and "Yes, now" in page
    assert "Hours asked (their time)" in page
    # later in the evening: not now, from when, and why — in words
    rig.clock.advance(seconds=11 * 3600)  # 20:00 in São Paulo
    page = text_of(await (await client.get("/callbacks/rows")).text())
    assert "Not now" in page and "outside the calling hours" in page and "Tue 24 Nov 08:00" in page
    assert "not in these hours now" in page
    r = await post(client, f"/callbacks/{cid}/done", sam)
    assert r.status == 303
    assert "No callback waiting." in await (await client.get("/callbacks?did=done")).text()
    r = await post(client, f"/callbacks/{cid}/done", sam)
    assert r.status == 404 and "no longer open" in await r.text()
    kinds = [e["kind"] for e in await rig.store.global_audit()]
    assert "callback_claimed" in kinds and "callback_done" in kinds


async def test_do_not_contact_search_add_import_and_lift(web):
    client, rig = web
    csrf = await sign_in(client, "sara")
    page = await (await client.get("/suppressions")).text()
    assert "<h1>Não contatar</h1>" in page and "A lista está vazia." in page
    assert "Retirar" not in page  # a supervisor never sees the lift button
    labelled(page)
    no_inline_code(page)
    forms_carry_csrf(page, csrf)
    r = await post(client, "/suppressions", csrf, number="(11) 98765-4321", channel="voice", reason="dispute")
    assert r.status == 303 and "did=added" in r.headers["Location"]
    page = await (await client.get(unquote(r.headers["Location"]).replace("+", "%2B"))).text()
    assert "O número está na lista de não contatar" in page and "+55 11 98765-4321" in page
    assert "contestação" in page and "ligações" in page
    page = await (await client.get("/suppressions?number=11987654321")).text()
    assert "contestação" in page
    page = await (await client.get("/suppressions?number=11999999999")).text()
    assert "Este número não está na lista" in page
    r = await client.get("/suppressions?number=abc")
    assert r.status == 400 and "não é um número de telefone que possamos usar" in await r.text()
    r = await post(client, "/suppressions", csrf, number="12")
    assert r.status == 400 and "com o DDD" in await r.text()
    # import a registry file (SP "Não Me Ligue": a number and its registration date per line)
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("source", "nao-me-ligue-sp")
    form.add_field("effective_after_days", "30")
    registry = "telefone;data\n11911112222;01/10/2026\n(21) 98888-7777;\nnot-a-number;01/10/2026\n"
    form.add_field("file", registry.encode(), filename="naomeligue.csv", content_type="text/csv")
    r = await client.post(f"/suppressions/import?csrf={csrf}", data=form, headers=origin(client))
    page = await r.text()
    assert r.status == 200, page
    assert re.search(r'id="imported-count">2<', page) and re.search(r'id="import-rejected">1<', page)
    assert "not-a-number" in page and "Cadastro importado" in page
    found = await rig.store.suppressions(["+5511911112222"])
    assert found["+5511911112222"][0].effective_from == datetime.fromisoformat("2026-10-31T00:00:00-03:00")
    assert [e for e in await rig.store.global_audit() if e["kind"] == "suppress_import"]
    form = FormData()
    form.add_field("source", "")
    form.add_field("file", b"11911112222\n", filename="x.txt")
    r = await client.post(f"/suppressions/import?csrf={csrf}", data=form, headers=origin(client))
    assert r.status == 400 and "Origem" in await r.text()
    # lifting is for admins: the POST route refuses a supervisor
    r = await post(client, "/suppressions/lift", csrf, number="+5511987654321", channel="voice")
    assert r.status == 403
    admin = await sign_in(client, "ana")
    page = await (await client.get("/suppressions")).text()
    assert "Retirar" in page and 'action="/suppressions/lift"' in page
    forms_carry_csrf(page, admin)
    r = await post(client, "/suppressions/lift", admin, number="+5511987654321", channel="voice")
    assert r.status == 303
    assert "O bloqueio foi retirado" in await (await client.get("/suppressions?did=lifted")).text()
    assert not await rig.store.suppressions(["+5511987654321"])
    r = await post(client, "/suppressions/lift", admin, number="+5511987654321", channel="voice")
    assert r.status == 404 and "nada foi retirado" in await r.text()
    # in English
    await sign_in(client, "sam")
    page = await (await client.get("/suppressions")).text()
    assert (
        "<h1>Do not contact</h1>" in page
        and "do-not-call registry" in page
        and "Import a registry file" in page
    )


async def test_every_console_page_in_english_and_the_roles(web):
    client, rig = web
    csrf = await sign_in(client, "sam")
    await loaded_and_started(client, rig, csrf)
    expected = {
        "/": "<h1>Campaigns</h1>",
        "/campaigns/c1": "Upload a campaign file",
        "/campaigns/c1/part/chart": "No contact has ended yet",
        "/accounts": "Account id, name or phone",
        "/accounts/A8": "What happened, newest first",
        "/callbacks": "No callback waiting.",
        "/suppressions": "Add a number",
        "/new-campaign?name=c9": "New campaign",
    }
    for path, needle in expected.items():
        r = await client.get(path)
        html = await r.text()
        assert r.status == 200 and needle in html, path
        assert r.headers["Content-Language"] == "en"
        assert "Lift" not in html
        no_inline_code(html)
        labelled(html)
    # an operator may not see the supervisor's pages; nobody signed in goes to sign in
    await sign_in(client, "otto")
    for path in expected:
        assert (await client.get(path, allow_redirects=False)).status == 403, path
    client.session.cookie_jar.clear()
    r = await client.get("/accounts", headers={"Accept": "text/html"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/login"


@pytest.mark.parametrize(
    ("local", "window", "inside"),
    [
        ("2026-11-23T08:59:00-03:00", "09:00-12:00", False),
        ("2026-11-23T09:00:00-03:00", "09:00-12:00", True),
        ("2026-11-23T11:59:00-03:00", "09:00-12:00", True),
        ("2026-11-23T12:00:00-03:00", "09:00-12:00", False),
        ("2026-11-23T12:00:00-03:00", "", None),
        (None, "09:00-12:00", None),
    ],
)
def test_whether_the_debtor_is_in_the_hours_they_asked(local, window, inside):
    assert in_window(local, window) is inside


# ---------------------------------------------------------------------------- the timeline's sentences

PT = i18n.translations("pt-BR").gettext
EN = i18n.translations("en").gettext
AT = "2026-11-24T13:02:00+00:00"  # 10:02 in São Paulo, 09:02 in Manaus
FORMATS = {
    "pt": tt.Formats(
        when=lambda at: i18n.when(at, "pt-BR", "America/Sao_Paulo", "EEE d MMM HH:mm"),
        local=lambda at, tz: i18n.when(at, "pt-BR", tz, "HH:mm"),
    ),
    "en": tt.Formats(
        when=lambda at: i18n.when(at, "en", "America/Sao_Paulo", "EEE d MMM HH:mm"),
        local=lambda at, tz: i18n.when(at, "en", tz, "HH:mm"),
    ),
}
HELD = {
    "kind": "decision",
    "phone": "+5592987654322",
    "allowed": False,
    "channel": "voice",
    "reasons": ["outside_calling_hours"],
    "not_before": "2026-11-25T12:00:00+00:00",
    "time_zones": ["America/Manaus"],
    "region": "AM",
}
CASES = [  # (event, Portuguese, English)
    (
        HELD,
        "não ligamos para +55 92 98765-4322 — fora do horário permitido para Amazonas (AM); "
        "próxima vez permitida qua. 25 nov. 09:00 (08:00 hora do devedor)",
        "we did not call +55 92 98765-4322 — outside the calling hours allowed for Amazonas (AM); "
        "next time allowed Wed 25 Nov 09:00 (08:00 debtor's time)",
    ),
    (
        {**HELD, "reasons": ["suppressed", "no_consent"], "not_before": None, "region": None},
        "não ligamos para +55 92 98765-4322 — o número está na lista de não contatar, sem consentimento "
        "para este canal; nenhum horário permitirá: alguém precisa agir",
        "we did not call +55 92 98765-4322 — the number is on the do-not-contact list, no consent for "
        "this channel; no time will allow it: a person must act",
    ),
    (
        {**HELD, "channel": "sms", "reasons": ["holiday"], "note": "held by the rules"},
        "não enviamos SMS para +55 92 98765-4322 — feriado onde o devedor está",
        "no SMS to +55 92 98765-4322 — a holiday where the debtor is",
    ),
    (
        {**HELD, "reasons": ["attempt_cap"], "note": "this phone's daily cap was used by another campaign"},
        "o limite de tentativas foi atingido; próxima vez permitida qua. 25 nov. 09:00 (08:00 hora do "
        "devedor); outra campanha usou o limite diário deste telefone",
        "the limit of attempts was reached; next time allowed Wed 25 Nov 09:00 (08:00 debtor's time); "
        "another campaign used this phone's daily limit",
    ),
    (
        {"kind": "decision", "phone": "+5511987654320", "allowed": True, "channel": "voice", "reasons": []},
        "as regras permitem ligar para +55 11 98765-4320 agora",
        "the rules allow a call to +55 11 98765-4320 now",
    ),
    (
        {
            "kind": "scheduled",
            "step": "d10_call",
            "next_at": "2026-11-25T11:00:00+00:00",
            "note": "next step of the régua",
        },
        "próxima verificação desta conta qua. 25 nov. 08:00",
        "next look at this account Wed 25 Nov 08:00",
    ),
    (
        {"kind": "step_skipped", "step": "d1", "note": "no phone may ever take this step"},
        "etapa d1 pulada: nenhum telefone pode receber esta etapa",
        "step d1 skipped: no phone may ever take this step",
    ),
    (
        {"kind": "done", "note": "paid"},
        "nada mais a fazer nesta conta: a conta está paga",
        "nothing more to do for this account: the account is paid",
    ),
    (
        {
            "kind": "attempt",
            "channel": "voice",
            "phone": "+5511987654320",
            "outcome": "answered_verified",
            "duration_s": 55,
        },
        "ligação para +55 11 98765-4320: atendida, devedor verificado (55 s)",
        "call to +55 11 98765-4320: answered, debtor verified (55 s)",
    ),
    (
        {
            "kind": "attempt",
            "channel": "voice",
            "phone": "+5511987654323",
            "outcome": "no_answer",
            "duration_s": 0,
        },
        "ligação para +55 11 98765-4323: ninguém atendeu",
        "call to +55 11 98765-4323: no answer",
    ),
    (
        {
            "kind": "attempt",
            "channel": "sms",
            "phone": "+5511987654327",
            "outcome": "sms_sent",
            "level": "limited",
        },
        "SMS enviado para +55 11 98765-4327 (limitado)",
        "SMS sent to +55 11 98765-4327 (limited)",
    ),
    (
        {
            "kind": "attempt",
            "channel": "sms",
            "phone": "+5511987654327",
            "outcome": "sms_failed",
            "error": "not sent: too long",
        },
        "SMS para +55 11 98765-4327 não enviado: not sent: too long",
        "SMS to +55 11 98765-4327 not sent: not sent: too long",
    ),
    (
        {"kind": "not_placed", "channel": "voice", "phone": "+5511987654320", "error": "no trunk"},
        "a ligação para +55 11 98765-4320 não pôde ser feita (no trunk); tentamos de novo mais tarde",
        "the call to +55 11 98765-4320 could not be placed (no trunk); we try again later",
    ),
    (
        {"kind": "suppressed", "phone": "+5511987654329", "channel": "voice", "reason": "opt_out"},
        "+55 11 98765-4329 posto na lista de não contatar para ligações: o devedor pediu para parar",
        "+55 11 98765-4329 put on the do-not-contact list for calls: the debtor asked us to stop",
    ),
    (
        {"kind": "action", "action": "payment_link"},
        "pediu o link de pagamento por SMS",
        "asked for the payment link by SMS",
    ),
    (
        {"kind": "action", "action": "callback", "window": "09:00-12:00"},
        "pediu que um atendente ligue de volta, 09:00–12:00 no horário dele",
        "asked for a callback from an agent, 09:00–12:00 their time",
    ),
    (
        {"kind": "ivr_action", "action": "opt_out", "channel": "voice"},
        "pediu para não receber mais ligações",
        "asked us to stop calling",
    ),
    (
        {"kind": "action", "action": "wrong_number"},
        "disse que este número não é do devedor",
        "said this number is not the debtor's",
    ),
    (
        {"kind": "fallback_sms_due", "step": "d10_call"},
        "a ligação não alcançou o devedor: o SMS limitado vai em seguida",
        "the call did not reach the debtor: the limited SMS goes next",
    ),
    (
        {"kind": "sms", "level": "full", "purpose": "payment_link", "phone": "+5511987654320"},
        "link de pagamento enviado por SMS para +55 11 98765-4320 (completo)",
        "payment link sent by SMS to +55 11 98765-4320 (full)",
    ),
    (
        {"kind": "sms_failed", "purpose": "payment_link", "error": "opted out"},
        "o SMS com o link de pagamento não foi enviado: opted out",
        "the payment link SMS was not sent: opted out",
    ),
    (
        {"kind": "sms_receipt", "status": "delivered"},
        "a operadora confirmou a entrega do SMS",
        "the operator confirmed the SMS was delivered",
    ),
    (
        {"kind": "sms_receipt", "status": "failed", "error": "absent subscriber"},
        "a operadora diz que o SMS não foi entregue: absent subscriber",
        "the operator says the SMS was not delivered: absent subscriber",
    ),
    (
        {
            "kind": "reconciled",
            "outcome": "unknown",
            "note": "reclaimed after a worker died; outcome unknown",
        },
        "tentativa concluída depois que um worker parou: resultado desconhecido",
        "attempt settled after a worker stopped: outcome unknown",
    ),
    (
        {"kind": "status", "from": "open", "to": "disputed", "actor": "user:sara", "note": "não reconhece"},
        "conta marcada como contestada (era aberta) por sara: “não reconhece”",
        "account marked disputed (was open) by sara: “não reconhece”",
    ),
    (
        {"kind": "prompt", "prompt": "greeting", "level": "none", "text": "Olá.", "verified": False},
        "tocou “Olá.” (mensagem saudação)",
        "played “Olá.” (greeting message)",
    ),
    ({"kind": "keys", "keys": "1", "state": "identify"}, "a pessoa digitou 1", "the person pressed 1"),
    (
        {"kind": "verification", "result": "passed"},
        "o devedor passou na verificação",
        "the debtor passed verification",
    ),
    ({"kind": "verification", "result": "failed"}, "a verificação falhou", "verification failed"),
    ({"kind": "hangup", "state": "menu"}, "a pessoa desligou", "the person hung up"),
    (
        {"kind": "ivr_end", "outcome": "third_party", "verified": False},
        "a URA terminou: atendida por outra pessoa",
        "the IVR ended: answered by someone else",
    ),
    (
        {
            "kind": "payment",
            "amount": "100.00",
            "provider": "pix",
            "standing": "paid",
            "balance": "0.00",
            "step": "d10_call",
            "channel": "voice",
        },
        "pagamento de 100.00 recebido por pix — creditado à etapa d10_call",
        "payment of 100.00 received through pix — credited to step d10_call",
    ),
    (
        {
            "kind": "payment",
            "amount": "40.00",
            "provider": "asaas",
            "standing": "partial",
            "balance": "60.00",
        },
        "pagamento parcial de 40.00 por asaas; 60.00 ainda em aberto",
        "partial payment of 40.00 through asaas; 60.00 still open",
    ),
    (
        {
            "kind": "payment",
            "amount": "150.00",
            "provider": "sandbox",
            "sandbox": True,
            "standing": "paid",
            "balance": "0.00",
            "overpaid": "50.00",
        },
        "pagamento de 150.00 recebido por sandbox (SANDBOX) — 50.00 a mais que a dívida",
        "payment of 150.00 received through sandbox (SANDBOX) — 50.00 more than the debt",
    ),
    (
        {"kind": "refund", "amount": "100.00", "provider": "pix", "standing": "active", "balance": "100.00"},
        "estorno de 100.00 por pix: 100.00 em aberto de novo",
        "refund of 100.00 through pix: 100.00 open again",
    ),
    ({"kind": "teleport"}, "evento “teleport” registrado", "event “teleport” recorded"),
]


@pytest.mark.parametrize(
    ("event", "pt", "en"), CASES, ids=[f"{i}-{c[0]['kind']}" for i, c in enumerate(CASES)]
)
def test_every_event_kind_reads_as_a_sentence_in_both_languages(event, pt, en):
    event = {"at": AT, **event}
    line = tt.describe(event, PT, FORMATS["pt"], "America/Sao_Paulo")
    assert pt in line.text
    assert en in tt.describe(event, EN, FORMATS["en"], "America/Sao_Paulo").text
    assert line.when == "ter. 24 nov. 10:02"
    # a decision carries its own zone (Manaus); any other event takes the one given
    assert line.debtor_time == ("09:02" if event["kind"] == "decision" and "time_zones" in event else "10:02")


def test_every_kind_the_worker_and_the_ivr_write_has_a_case():
    written = set()
    for path in [
        "dialer/rules/settle.py",
        "dialer/runtime/worker.py",
        "dialer/store/channels.py",
        "dialer/runtime/settlement.py",
        "ivr/conversation.py",
    ]:
        written |= set(re.findall(r'"kind": "([a-z_]+)"', (ROOT / path).read_text()))
    written.add("status")  # store/accounts.py
    covered = {c[0]["kind"] for c in CASES}
    assert written - {"config_change", "prompt_change"} <= covered, written - covered


def test_the_timeline_words_are_translated():
    call = re.compile(r"""\b_\(\s*(["'])((?:\\.|(?!\1).)+)\1\s*\)""")
    source = (ROOT / "dialer/formats/timeline_text.py").read_text()
    known = i18n.catalogue_ids("pt-BR")
    missing = [m.group(2) for m in call.finditer(source) if m.group(2) not in known]
    assert not missing
    assert tt.reason_words("account_gone", PT) == "a conta ou este telefone não está mais carregado"
    assert (
        tt.show_phone("+12125550100") == "+1 212 555 0100"
        and tt.show_phone("+551140028922") == "+55 11 4002-8922"
    )


# ---------------------------------------------------------------------------- the chart


def test_the_chart_stacks_outcomes_per_hour_with_labelled_axes():
    series = {
        "hours": ["2026-11-23T11:00:00+00:00", "2026-11-23T12:00:00+00:00", "2026-11-23T13:00:00+00:00"],
        "series": {"answered_verified": [3, 0, 1], "no_answer": [4, 0, 2], "sms_sent": [0, 0, 7]},
    }
    chart = draw_chart(
        series,
        lambda h: i18n.when(h, "pt-BR", "America/Sao_Paulo", "HH:mm"),
        lambda h: i18n.when(h, "pt-BR", "America/Sao_Paulo", "EEE d"),
        lambda o: tt.outcome_words(o, PT),
        str,
    )
    assert chart is not None
    # at least twelve hours (the nine before the data, empty), labelled in São Paulo, not UTC
    assert [t[1] for t in chart.x_ticks] == ["23:00", "01:00", "03:00", "05:00", "07:00", "09:00"]
    assert [t[2] for t in chart.x_ticks] == ["dom. 22", "seg. 23", "", "", "", ""]  # each day once
    assert [label for _, label in chart.y_ticks] == ["0", "5", "10"]
    assert [(o, w, n) for o, w, n in chart.legend] == [
        ("answered_verified", "atendida, devedor verificado", 4),
        ("no_answer", "ninguém atendeu", 6),
        ("sms_sent", "SMS enviado", 7),
    ]
    assert len(chart.bars) == 5 and all(b["h"] > 0 for b in chart.bars)
    tallest = sum(b["h"] for b in chart.bars if b["x"] == chart.bars[-1]["x"])
    assert tallest == pytest.approx(chart.plot_h * 10 / 10)  # 10 at the top of the axis
    assert [r[0] for r in chart.rows] == ["seg. 23 08:00", "seg. 23 10:00"]  # empty hours left out
    assert draw_chart({"hours": [], "series": {}}, str, str, str, str) is None
    assert [nice_step(n) for n in (1, 4, 9, 40, 130)] == [1, 1, 5, 10, 50]


# ---------------------------------------------------------------------------- the bounded search


async def test_the_account_search_is_bounded_and_says_so(redis_url, settings, tmp_path):
    rig = await make_rig(redis_url, settings, MON_0730)
    try:
        lines = [
            f"X{i:03d};Cliente Número {i};+55119{i:08d};01/11/2026;10,00;sim;sim;1980\n" for i in range(60)
        ]
        lines.append("JC1;JOSÉ da Conceição;+5592987654322;01/11/2026;10,00;sim;sim;1980\n")
        path = tmp_path / "many.csv"
        path.write_text(HEADER + "".join(lines))
        await rig.load(path, "big", start=False)
        await rig.load(path, "other", start=False)
        found = await rig.store.search_accounts("jose conceicao", 10)
        assert {(m.campaign, m.account_id, m.matched) for m in found.matches} == {
            ("big", "JC1", "name"),
            ("other", "JC1", "name"),
        }
        assert not found.cut and found.complete and found.scanned == 122
        exact = await rig.store.search_accounts("X007", 10)
        assert [(m.campaign, m.matched) for m in exact.matches][:2] == [("big", "id"), ("other", "id")]
        by_phone = await rig.store.search_accounts("(92) 98765-4322", 10, campaign="big")
        assert [(m.account_id, m.matched, m.phones) for m in by_phone.matches] == [
            ("JC1", "phone", ("+5592987654322",))
        ]
        cut = await rig.store.search_accounts("cliente", 5)
        assert len(cut.matches) == 5 and cut.cut and not cut.complete
        budget = await rig.store.search_accounts("nobody", 5, budget=30)
        assert budget.matches == () and not budget.cut and not budget.complete and budget.scanned == 30
        assert (await rig.store.search_accounts("   ", 5)).matches == ()
        assert (await rig.store.search_accounts("X001", 5, campaign="missing")).matches == ()
    finally:
        await rig.close()

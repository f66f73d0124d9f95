"""The debtor's page over HTTP, on a real Redis: nothing before the second factor (checked
on the raw HTML of every route a link reaches), guesses limited per link and per address,
locks that a new link lifts, sessions bound to one link and ended by leaving, CSRF on every
form, forged and expired tokens, and accepting an offer once however often it is posted."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from dialer.domain import AccountStatus
from dialer.formats import payment_links as pl
from dialer.rules.disclosure import FORBIDDEN_STEMS, fold
from dialer.web.debtor import PRE_CSRF_COOKIE, SESSION_COOKIE
from payments.signed import SignedWebhookProvider
from tests.runtime_helpers import make_rig
from tests.test_payments import MON_0700, SECRET, Harness, csv_file

DUE = "10/09/2026"  # 74 days past due on 2026-11-23: the 31–180 band (10 %, up to 6, 20 % down)
BEFORE = ("R$", "100,00", "500,00", DUE, "Loja Exemplo S.A.", "Comércio", "11.222.333", "CNPJ", "Credor")


@pytest.fixture
async def site(redis_url, settings, tmp_path):
    rig = await make_rig(redis_url, settings, MON_0700)
    h = Harness(rig, SignedWebhookProvider(SECRET), settings)
    client = await h.web()
    await h.load(
        csv_file(tmp_path, [("A1", "11987654320", DUE, "500,00"), ("A2", "11987654321", DUE, "500,00")])
    )
    yield h, client
    await h.close()
    await rig.close()


def link(h, account="A1", *, ttl=timedelta(days=7), verified_until=None, secret=b"test"):
    lid = pl.link_id(b"test", "c1", account)
    return pl.make_token(
        secret, lid, h.rig.clock.now() + ttl, nonce=pl.new_nonce(), verified_until=verified_until
    )


async def register(h, account="A1"):
    await h.rig.store.register_link(pl.link_id(b"test", "c1", account), "c1", account)


def assert_reveals_nothing(html: str, token: str = "") -> None:
    """The raw page names nobody's debt: no amount, due date, creditor or collection word."""
    text = html.replace(token, "") if token else html
    for word in BEFORE:
        assert word not in text, word
    visible = fold(re.sub(r"<[^>]+>", " ", text))
    for stem in FORBIDDEN_STEMS:
        assert stem not in visible, stem


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def verify(client, token, answer):
    page = await client.get(f"/a/{token}")
    html = await page.text()
    return await client.post(
        f"/a/{token}/verify", data={"csrf": csrf_of(html), "factor": answer}, allow_redirects=False
    )


async def test_the_page_shows_the_limited_message_only_until_the_factor(site):
    h, client = site
    await register(h)
    token = link(h)
    r = await client.get(f"/a/{token}")
    html = await r.text()
    assert r.status == 200 and "Pessoa A1" in html and "ano do seu nascimento" in html
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Referrer-Policy"] == "same-origin"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert_reveals_nothing(html, token)
    old = await client.get(f"/pay/{token}")  # the path links sent before use
    assert old.status == 200 and "ano do seu nascimento" in await old.text()
    wrong = await verify(client, token, "1979")
    html = await wrong.text()
    assert wrong.status == 200 and "Não foi possível confirmar" in html
    assert_reveals_nothing(html, token)
    right = await verify(client, token, "1980")
    assert right.status == 303 and right.headers["Location"] == f"/a/{token}/account"
    page = await client.get(f"/a/{token}/account")
    html = await page.text()
    assert page.status == 200
    assert (
        "Loja Exemplo Comércio de Utilidades S.A." in html and "CNPJ 11.222.333/0001-81" in html
    )  # CDC 42-A
    assert "R$\xa0500,00" in html and DUE in html and "Propostas para você" in html
    assert "Multa" in html and "Juros de mora" in html and "Juros do parcelamento" in html  # stated apart


async def test_every_wrong_factor_gets_the_same_answer_and_a_link_locks(site):
    h, client = site
    await register(h)
    token = link(h)
    answers = []
    for guess in ("1981", "2000", "1"):  # near, far, short: the same words, no hint
        r = await verify(client, token, guess)
        answers.append(re.sub(r'value="[^"]+"', "", await r.text()))
    assert answers[0] == answers[1]
    locked = await client.get(f"/a/{token}")
    html = await locked.text()
    assert locked.status == 423 and "bloqueado" in html and 'name="factor"' not in html
    assert_reveals_nothing(html, token)
    r = await client.post(
        f"/a/{token}/verify", data={"csrf": "x", "factor": "1980"}, cookies={PRE_CSRF_COOKIE: "x"},
        allow_redirects=False,
    )  # fmt: skip
    assert r.status == 423  # the right answer on a locked link opens nothing
    audit = [e for e in await h.rig.store.global_audit() if e["kind"] == "debtor_link_locked"]
    assert len(audit) == 1 and audit[0]["data"]["account"] == "A1" and "1980" not in str(audit)
    fresh = link(h)  # the next link sent is another link: open again
    assert (await verify(client, fresh, "1980")).status == 303


async def test_one_address_is_held_after_many_failures(site, monkeypatch):
    h, client = site
    await register(h)
    monkeypatch.setattr(h.runtime, "settings", h.runtime.settings.model_copy(
        update={"negotiation": h.runtime.settings.negotiation.model_copy(update={"address_max_failures": 4})}
    ))  # fmt: skip
    for _ in range(2):  # two links, two failures each: four from this address
        token = link(h)
        for guess in ("1111", "2222"):
            await verify(client, token, guess)
    r = await verify(client, link(h), "1980")
    assert r.status == 429 and "Tentativas demais" in await r.text()


async def test_a_session_is_bound_to_its_link_and_ends_when_the_debtor_leaves(site):
    h, client = site
    await register(h)
    await register(h, "A2")
    token = link(h)
    assert (await verify(client, token, "1980")).status == 303
    other = link(h)  # another link of the same account: its own factor
    r = await client.get(f"/a/{other}/account", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/a/{other}"
    r = await client.get(f"/a/{link(h, 'A2')}/account", allow_redirects=False)
    assert r.status == 303  # nor another account
    html = await (await client.get(f"/a/{token}/account")).text()
    r = await client.post(f"/a/{token}/leave", data={"csrf": csrf_of(html)}, allow_redirects=False)
    assert r.status == 303
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/")).get(SESSION_COOKIE)
    assert cookie is None or not cookie.value
    r = await client.get(f"/a/{token}/account", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/a/{token}"


async def test_a_link_sent_after_a_verified_call_skips_the_factor_for_minutes_only(site):
    h, client = site
    await register(h)
    now = h.rig.clock.now()
    token = link(h, verified_until=now + timedelta(minutes=10))
    r = await client.get(f"/a/{token}", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].endswith("/account")
    late = link(h, verified_until=now + timedelta(minutes=10))
    h.rig.clock.advance(seconds=11 * 60)
    client.session.cookie_jar.clear()
    r = await client.get(f"/a/{late}", allow_redirects=False)
    assert r.status == 200 and 'name="factor"' in await r.text()


@pytest.mark.parametrize("route", ["", "/account"])
async def test_forged_altered_and_expired_links_name_nobody(site, route):
    h, client = site
    await register(h)
    good = link(h)
    for bad in (
        good[:-2] + ("aa" if not good.endswith("aa") else "bb"),
        link(h, secret=b"other"),
        link(h, ttl=timedelta(seconds=-1)),
        "garbage",
        "a" * 200,
    ):
        r = await client.get(f"/a/{bad}{route}", allow_redirects=False)
        html = await r.text()
        assert r.status == 404 and "não é mais válido" in html and "Pessoa" not in html
        assert_reveals_nothing(html)
    for path in ("verify", "accept", "leave"):
        r = await client.post(f"/a/{good[:-2]}xx/{path}", data={"csrf": "x"})
        assert r.status == 404 and "Pessoa" not in await r.text()


async def test_every_form_needs_its_csrf_token(site):
    h, client = site
    await register(h)
    token = link(h)
    await client.get(f"/a/{token}")
    r = await client.post(f"/a/{token}/verify", data={"csrf": "forged", "factor": "1980"})
    assert r.status == 403 and "não foi aceito" in await r.text()
    assert_reveals_nothing(await r.text(), token)
    html = await (await client.get(f"/a/{token}")).text()
    r = await client.post(
        f"/a/{token}/verify",
        data={"csrf": csrf_of(html), "factor": "1980"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status == 403
    assert (await verify(client, token, "1980")).status == 303
    html = await (await client.get(f"/a/{token}/account")).text()
    offer = re.search(r'name="offer" value="([^"]+)"', html).group(1)
    for data in ({"offer": offer}, {"offer": offer, "csrf": "forged"}):
        r = await client.post(f"/a/{token}/accept", data=data, allow_redirects=False)
        assert r.status == 403
    r = await client.post(f"/a/{token}/leave", data={"csrf": "forged"}, allow_redirects=False)
    assert r.status == 403
    assert await h.rig.store.current_agreements(["A1"]) == {}


async def test_accepting_twice_at_once_makes_one_agreement(site):
    h, client = site
    await register(h)
    token = link(h)
    assert (await verify(client, token, "1980")).status == 303
    html = await (await client.get(f"/a/{token}/account")).text()
    csrf = csrf_of(html)
    offers = re.findall(r'name="offer" value="([^"]+)"', html)
    assert len(offers) >= 4  # one go, then 2..6 installments while each is ≥ R$ 50
    plan = offers[2]
    posts = [
        client.post(f"/a/{token}/accept", data={"csrf": csrf, "offer": plan}, allow_redirects=False)
        for _ in range(4)
    ]
    answers = await asyncio.gather(*posts)
    assert sorted(r.status for r in answers) == [303] * 4  # a double click: the same agreement
    current = await h.rig.store.current_agreements(["A1"])
    assert list(current) == ["A1"] and current["A1"].offer.offer_id == plan
    made = [e for e in await h.rig.store.global_audit() if e["kind"] == "agreement_made"]
    assert len(made) == 1
    charges = [c for c in await h.rig.store.account_charges("A1") if c.agreement]
    assert sorted(c.installment for c in charges) == list(range(1, current["A1"].offer.count + 1))
    assert sum(c.amount_cents for c in charges) == current["A1"].offer.total_cents
    (state,) = await h.rig.store.load_accounts("c1", ["A1"])
    assert state.account.status is AccountStatus.AGREEMENT
    r = await client.post(
        f"/a/{token}/accept", data={"csrf": csrf, "offer": offers[1]}, allow_redirects=False
    )
    assert r.status == 409 and "Já existe um acordo" in await r.text()  # another offer: refused
    page = await (await client.get(f"/a/{token}/account?ok=1")).text()
    assert "Seu acordo" in page and "Pix copia e cola" in page and "Acordo registrado" in page


async def test_a_stale_or_made_up_offer_is_refused(site):
    h, client = site
    await register(h)
    token = link(h)
    assert (await verify(client, token, "1980")).status == 303
    html = await (await client.get(f"/a/{token}/account")).text()
    r = await client.post(
        f"/a/{token}/accept",
        data={"csrf": csrf_of(html), "offer": "c0000000000000000"},
        allow_redirects=False,
    )
    assert r.status == 409 and "não vale mais" in await r.text()
    assert await h.rig.store.current_agreements(["A1"]) == {}


async def test_bodies_are_bounded_before_they_are_read(site):
    h, client = site
    await register(h)
    token = link(h)
    await client.get(f"/a/{token}")
    r = await client.post(
        f"/a/{token}/verify",
        data=b"csrf=" + b"x" * 100_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status in (403, 413)


async def test_guesses_sent_at_once_are_counted_before_any_is_compared(site):
    h, client = site
    await register(h)
    token = link(h)
    html = await (await client.get(f"/a/{token}")).text()
    csrf = csrf_of(html)
    guesses = [str(1940 + i) for i in range(12)]  # twelve at once (none right)
    answers = await asyncio.gather(
        *(
            client.post(f"/a/{token}/verify", data={"csrf": csrf, "factor": g}, allow_redirects=False)
            for g in guesses
        )
    )
    compared = [r for r in answers if r.status == 200]
    assert len(compared) <= h.runtime.settings.negotiation.link_max_failures
    assert all(r.status in (200, 423) for r in answers)
    right = await client.post(
        f"/a/{token}/verify", data={"csrf": csrf, "factor": "1980"}, allow_redirects=False
    )
    assert right.status == 423  # the right answer now opens nothing on this link


async def test_a_form_with_any_bytes_is_refused_not_a_crash(site, caplog):
    h, client = site
    await register(h)
    token = link(h)
    await client.get(f"/a/{token}")
    for body in ("csrf=%C3%A9&factor=1980", "csrf=%FF%FE&factor=%00", "csrf=" + "é" * 50):
        r = await client.post(
            f"/a/{token}/verify",
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status == 403, body
    assert token not in caplog.text


def test_logs_never_show_a_link_token():
    from dialer.web.app import safe_path

    assert safe_path("/a/abc.def.ghi/verify") == "/a/…/verify"
    assert safe_path("/pay/abc.def.ghi") == "/pay/…"
    assert safe_path("/api/campaigns") == "/api/campaigns"

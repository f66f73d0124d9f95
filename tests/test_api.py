"""The HTTP API: roles on every route, errors without internals, uploads, config changes,
payment links, and the SMS opt-out path end to end (reply -> suppressed -> no more SMS)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dialer.runtime import people
from dialer.runtime.wiring import Runtime
from dialer.store import keys
from dialer.web import auth
from dialer.web.app import ROUTE_TABLES, create_app
from dialer.web.common import Services
from tests.runtime_helpers import HEADER, campaign_csv, make_rig

MON_1000 = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
TOKENS = {"admin": "a" * 24, "supervisor": "s" * 24, "operator": "o" * 24}


@pytest.fixture
async def api(redis_url, settings, tmp_path, monkeypatch):
    rig = await make_rig(redis_url, settings, MON_1000)
    runtime = Runtime(settings, rig.policy, rig.cadence, rig.clock, b"test")
    runtime.listeners.append(lambda rt: None)
    services = Services(runtime, rig.store, rig.telephony, rig.sms, auth.TokenBook.from_pairs(TOKENS))
    client = TestClient(TestServer(create_app(services)))
    await client.start_server()
    yield client, rig, runtime
    await client.close()
    await rig.close()


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def test_every_route_names_its_role(settings):
    """Walked on the application's own router: a route added anywhere is checked here."""
    app = create_app(Services(None, None, None, None, auth.TokenBook(())))  # type: ignore[arg-type]
    routes = [r for r in app.router.routes() if r.method != "HEAD"]
    tables = {(r.method, r.path) for t in ROUTE_TABLES for r in t}
    assert len(routes) == len(tables) > 20
    public = set()
    for r in routes:
        role = getattr(r.handler, "required_role", None)
        assert role in ("public", "operator", "supervisor", "admin"), (r.method, r.resource)
        path = r.resource.canonical if r.resource is not None else ""
        if role == "public":
            public.add((r.method, path))
    assert public == {
        ("GET", "/healthz"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/static/{name}"),
        ("GET", "/pay/{token}"),
        # the debtor's page: nothing before the second factor (tests/test_debtor_pages.py)
        ("GET", "/a/{token}"),
        ("POST", "/a/{token}/verify"),
        ("GET", "/a/{token}/account"),
        ("POST", "/a/{token}/accept"),
        ("POST", "/a/{token}/leave"),
        ("POST", "/webhooks/sms/{provider}"),
        # payment webhooks: each authenticates its provider before it parses (test_payments)
        ("POST", "/webhooks/payments/pix/{token}/pix"),
        ("POST", "/webhooks/payments/pix/{token}"),
        ("POST", "/webhooks/payments/asaas"),
        ("POST", "/webhooks/payments/signed"),
    }


@pytest.mark.parametrize(
    ("method", "path", "role", "status"),
    [
        ("GET", "/api/campaigns", None, 401),
        ("GET", "/api/campaigns", "operator", 403),
        ("GET", "/api/campaigns", "supervisor", 200),
        ("GET", "/api/campaigns", "admin", 200),
        ("GET", "/metrics", None, 401),
        ("GET", "/metrics", "operator", 200),
        ("GET", "/api/config", "supervisor", 403),
        ("GET", "/api/config", "admin", 200),
        ("POST", "/api/campaigns/x/archive", "supervisor", 403),
        ("DELETE", "/api/suppressions/+5511987654321", "supervisor", 403),
        ("GET", "/healthz", None, 200),
        ("GET", "/api/accounts/nobody/timeline", "supervisor", 404),
        ("GET", "/api/campaigns/nope/report.csv", "operator", 403),
        ("GET", "/api/campaigns/nope/report.csv", "supervisor", 404),
        ("POST", "/api/accounts/nobody/status", None, 401),
        ("POST", "/api/accounts/nobody/status", "operator", 403),
    ],
)
async def test_roles(api, method, path, role, status):
    client, rig, runtime = api
    r = await client.request(method, path, headers=bearer(role) if role else {})
    assert r.status == status
    if status >= 400:
        body = await r.json()
        assert "error" in body and "Traceback" not in body["error"]


async def test_bad_token_and_browser_redirect(api):
    client, rig, runtime = api
    r = await client.get("/api/campaigns", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await client.get("/", headers={"Accept": "text/html"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/login"
    await people.add_user(rig.store, "sara", "supervisor", "sara-password-1", MON_1000, "test")
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    r = await client.post(
        "/login",
        data={"username": "sara", "password": "sara-password-1"},
        headers=origin,
        allow_redirects=False,
    )
    assert r.status == 302 and auth.SESSION_COOKIE in r.cookies
    assert (
        r.cookies[auth.SESSION_COOKIE]["httponly"] and r.cookies[auth.SESSION_COOKIE]["samesite"] == "Strict"
    )
    r = await client.get("/api/me")
    assert (await r.json())["user"] == "sara" and (await r.json())["role"] == "supervisor"
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({auth.SESSION_COOKIE: "forged-" + "x" * 40})
    assert (await client.get("/api/me")).status == 401


async def test_upload_lifecycle_and_timeline(api):
    client, rig, runtime = api
    body = HEADER + "A1;Ana;11987654323;10/11/2026;10;sim;sim;1980\nA2;;123;x;y;sim;sim;1980\n"
    r = await client.post(
        "/api/campaigns/nov/upload?start=1", data=body.encode(), headers=bearer("supervisor")
    )
    summary = await r.json()
    assert r.status == 200, summary
    assert (summary["accepted"], summary["rejected"]) == (1, 1)
    assert summary["errors"][0]["line"] == "3" and summary["errors"][0]["column"] == "name"
    status = await (await client.get("/api/campaigns/nov", headers=bearer("supervisor"))).json()
    assert status["state"] == "running"
    r = await client.post("/api/campaigns/nov/start", headers=bearer("supervisor"))
    assert r.status == 409 and "running" in (await r.json())["error"]
    await rig.drive(MON_1000)
    timeline = await (await client.get("/api/accounts/A1/timeline", headers=bearer("supervisor"))).json()
    assert any(e["kind"] == "attempt" for e in timeline)
    series = await (await client.get("/api/campaigns/nov/series", headers=bearer("supervisor"))).json()
    assert series["series"]["no_answer"] == [1]
    bad = await client.post(
        "/api/campaigns/nov/upload", data=b"conta;nome\n1;2\n", headers=bearer("supervisor")
    )
    assert bad.status == 400 and "missing required column" in (await bad.json())["error"]


async def test_admin_config_change_is_validated_applied_and_audited(api):
    client, rig, runtime = api
    loose = '[packs.BR.hours.default.voice]\nsun = "10:00-12:00"\n'
    r = await client.put("/api/config", data=loose, headers=bearer("admin"))
    assert r.status == 400 and "looser than the law" in (await r.json())["error"]
    assert (await rig.store.config_overlay())[1] == 0  # nothing stored
    r = await client.put("/api/config", data="[service]\nredis_url = 'x'\n", headers=bearer("admin"))
    assert r.status == 400
    stricter = "[policy]\nmin_days_past_due_voice = 15\n"
    r = await client.put("/api/config", data=stricter, headers=bearer("admin"))
    assert r.status == 200 and (await r.json())["version"] == 1
    assert runtime.policy.min_days_past_due_voice == 15
    audit = [e for e in await rig.store.global_audit() if e["kind"] == "config_change"]
    assert audit and audit[0]["actor"] == "env-token:admin"
    cfg = await (await client.get("/api/config", headers=bearer("admin"))).json()
    assert "secret_key" not in cfg["effective"]["service"]


async def test_sms_opt_out_end_to_end(api, monkeypatch, tmp_path):
    """Reply STOP -> suppressed at once -> one confirmation -> no more SMS on later days."""
    client, rig, runtime = api
    secret = "webhook-secret"
    monkeypatch.setenv("SMS_WEBHOOK_SECRET", secret)
    await rig.load(campaign_csv(tmp_path, [("A1", "11987654323", "20/11/2026")]))  # D+3: SMS steps
    rig.clock.set(datetime.fromisoformat("2026-11-25T10:00:00-03:00"))  # D+5: an SMS goes out
    await rig.drive(rig.clock.now())
    sent_before = await rig.raw.xlen(keys.OUTBOX)
    assert sent_before == 1

    def post(body: dict) -> object:
        raw = json.dumps(body).encode()
        sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return client.post(
            "/webhooks/sms/http",
            data=raw,
            headers={"X-Regua-Signature": sig, "Content-Type": "application/json"},
        )

    r = await client.post(
        "/webhooks/sms/http",
        data=b'{"from":"+5511987654323","text":"SAIR"}',
        headers={"X-Regua-Signature": "0" * 64},
    )
    assert r.status == 403
    r = await post({"from": "+5511987654323", "text": "  Sair! "})
    body = await r.json()
    assert body == {"opt_out": True, "keyword": "SAIR", "confirmation_sent": True, "stopped": ["sms"]}
    r = await post({"from": "+5511987654323", "text": "PARAR"})
    assert (await r.json())["confirmation_sent"] is False  # one confirmation at most
    assert await rig.raw.xlen(keys.OUTBOX) == sent_before + 1
    # the régua goes on: D+10 call still allowed (SMS opt-out only), but no SMS ever again
    await rig.drive(datetime.fromisoformat("2026-12-01T20:00:00-03:00"))
    assert await rig.raw.xlen(keys.OUTBOX) == sent_before + 1
    (state,) = await rig.store.load_accounts("c1", ["A1"])
    assert any(a.channel.value == "voice" for a in state.history)
    events = await rig.store.timeline("A1")
    assert any(
        e["kind"] == "decision" and e["channel"] == "sms" and "suppressed" in e["reasons"] for e in events
    )


async def test_delivery_receipt_updates_the_attempt(api, monkeypatch, tmp_path):
    client, rig, runtime = api
    monkeypatch.setenv("SMS_WEBHOOK_SECRET", "s")
    await rig.load(campaign_csv(tmp_path, [("A1", "11987654323", "20/11/2026")]))
    rig.clock.set(datetime.fromisoformat("2026-11-25T10:00:00-03:00"))
    await rig.drive(rig.clock.now())
    ((msg_id, _fields),) = await rig.raw.xrange(keys.OUTBOX)
    # the provider that sent it reports it delivered
    assert await rig.store.record_receipt("sandbox", msg_id, "delivered", "", rig.clock.now())
    (state,) = await rig.store.load_accounts("c1", ["A1"])
    assert [a.outcome.value for a in state.history if a.channel.value == "sms"] == ["sms_delivered"]
    events = await rig.store.timeline("A1")
    assert events[-1]["kind"] == "sms_receipt" and events[-1]["status"] == "delivered"
    # through the webhook: authenticated, parsed, and an unknown message is reported as such
    raw = json.dumps({"message_id": "nope", "status": "failed"}).encode()
    sig = hmac.new(b"s", raw, hashlib.sha256).hexdigest()
    r = await client.post("/webhooks/sms/http", data=raw, headers={"X-Regua-Signature": sig})
    assert (await r.json()) == {"receipt": "failed", "matched": False}
    monkeypatch.delenv("SMS_WEBHOOK_SECRET")
    r = await client.post("/webhooks/sms/http", data=raw, headers={"X-Regua-Signature": sig})
    assert r.status == 404  # a provider we were not configured for does not exist


async def test_admin_edits_prompts_within_their_level(api, tmp_path, monkeypatch):
    client, rig, runtime = api
    service = runtime.settings.service.model_copy(update={"sounds_dir": str(tmp_path / "sounds")})
    runtime.settings = runtime.settings.model_copy(update={"service": service})
    prompts = await (await client.get("/api/prompts", headers=bearer("admin"))).json()
    assert prompts["debt"]["level"] == "full" and prompts["ask_identity"]["level"] == "limited"
    assert (await client.get("/api/prompts", headers=bearer("supervisor"))).status == 403
    leak = {"pt-BR": "Olá {name}, sua dívida venceu. Digite 1."}
    r = await client.put("/api/prompts/ask_identity", json=leak, headers=bearer("admin"))
    assert r.status == 400 and "debt" in (await r.json())["error"]
    fine = {"pt-BR": "Bom dia. Procuramos {name}. Se for você, digite 1; se não, digite 2."}
    r = await client.put("/api/prompts/ask_identity", json=fine, headers=bearer("admin"))
    assert r.status == 200
    after = await (await client.get("/api/prompts", headers=bearer("admin"))).json()
    assert after["ask_identity"]["texts"]["pt-BR"] == fine["pt-BR"] and after["ask_identity"]["edited"]
    # a recording: converted for Asterisk and attached to the prompt
    from tests.test_ivr_audio import tone

    mp3 = tone(tmp_path / "goodbye.mp3", 440, seconds=1.0).read_bytes()
    r = await client.post("/api/prompts/goodbye/audio?language=pt-BR", data=mp3, headers=bearer("admin"))
    body = await r.json()
    assert r.status == 200 and body["frame_rate"] == 8000 and abs(body["seconds"] - 1.0) < 0.05
    r = await client.post("/api/prompts/goodbye/audio", data=b"not audio", headers=bearer("admin"))
    assert r.status == 400 and "not an audio file" in (await r.json())["error"]
    kinds = [e["kind"] for e in await rig.store.global_audit()]
    assert kinds.count("prompt_change") == 2


async def test_short_call_ratio_per_trunk(api):
    client, rig, runtime = api
    await rig.raw.hset(
        "regua:shortcalls:2026-11-23",
        mapping={"main|answered": 10, "main|short": 3, "all|answered": 10, "all|short": 3},
    )
    r = await client.get("/api/short-calls?day=2026-11-23", headers=bearer("operator"))
    body = await r.json()
    assert body["trunks"]["main"] == {"answered": 10, "short": 3, "ratio": 0.3}
    assert body["threshold"] == 0.85
    assert (await client.get("/api/short-calls?day=x", headers=bearer("operator"))).status == 400


async def test_account_status_by_api(api, tmp_path):
    """A supervisor marks an account paid: validated, applied in every campaign, audited."""
    client, rig, runtime = api
    await rig.load(campaign_csv(tmp_path, [("A1", "11987654323", "10/11/2026")]), campaign="one")
    await rig.load(campaign_csv(tmp_path, [("A1", "11987654323", "10/11/2026")]), campaign="two")
    url = "/api/accounts/A1/status"
    r = await client.post(url, json={"status": "settled"}, headers=bearer("supervisor"))
    assert r.status == 400 and "field 'status'" in (await r.json())["error"]
    r = await client.post(url, json={"status": "paid", "note": 7}, headers=bearer("supervisor"))
    assert r.status == 400 and "'note'" in (await r.json())["error"]
    r = await client.post("/api/accounts/NOPE/status", json={"status": "paid"}, headers=bearer("supervisor"))
    assert r.status == 404
    r = await client.post(url, json={"status": "paid", "note": "boleto 0042"}, headers=bearer("supervisor"))
    assert r.status == 200
    body = await r.json()
    assert {(c["campaign"], c["from"], c["to"], c["changed"]) for c in body["campaigns"]} == {
        ("one", "open", "paid", True),
        ("two", "open", "paid", True),
    }
    for campaign in ("one", "two"):
        (state,) = await rig.store.load_accounts(campaign, ["A1"])
        assert state.account.status.value == "paid"
    events = [e for e in await rig.store.timeline("A1") if e["kind"] == "status"]
    assert len(events) == 2 and all(e["note"] == "boleto 0042" for e in events)
    assert all(e["actor"] == "env-token:supervisor" for e in events)
    (audit,) = [e for e in await rig.store.global_audit() if e["kind"] == "account_status"]
    assert audit["data"]["campaigns"] == ["one", "two"] and audit["data"]["status"] == "paid"
    r = await client.post(url, json={"status": "paid", "campaign": "one"}, headers=bearer("supervisor"))
    assert (await r.json())["campaigns"] == [
        {"campaign": "one", "from": "paid", "to": "paid", "changed": False}
    ]


async def test_campaign_report_csv(api, tmp_path):
    import csv
    import io

    client, rig, runtime = api
    rows = [(f"R{i}", f"1198765{i:04d}", "10/11/2026") for i in range(1200)]  # several batches
    await rig.load(campaign_csv(tmp_path, rows), campaign="big")
    r = await client.get("/api/campaigns/big/report.csv", headers=bearer("supervisor"))
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert 'filename="big-report.csv"' in r.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(await r.text())))
    assert sorted(row["account_id"] for row in table) == sorted(a for a, _, _ in rows)
    assert {row["status"] for row in table} == {"open"} and {row["calls"] for row in table} == {"0"}

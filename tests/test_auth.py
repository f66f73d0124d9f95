"""Who gets in: every route of the app's own router, tried with no credentials, a wrong
token, a revoked token and each role's token; sessions that sign-out, a new password and a
disable end on the server; CSRF; the sign-in throttle; headers; bodies refused unread."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dialer.runtime import people
from dialer.runtime.wiring import Runtime
from dialer.web import auth
from dialer.web.app import ROUTE_TABLES, create_app
from dialer.web.common import Services
from tests.runtime_helpers import make_rig

MON_1000 = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
PASSWORDS = {"ana": "ana-password-123", "sara": "sara-password-123", "otto": "otto-password-123"}
ROLE_OF = {"ana": "admin", "sara": "supervisor", "otto": "operator"}


@pytest.fixture
async def web(redis_url, settings):
    rig = await make_rig(redis_url, settings, MON_1000)
    runtime = Runtime(settings, rig.policy, rig.cadence, rig.clock, b"test")
    tokens = {}
    for name, role in ROLE_OF.items():
        await people.add_user(rig.store, name, role, PASSWORDS[name], MON_1000, "test")
        tokens[name] = await people.issue_token(rig.store, name, "tests", MON_1000, "test")
    revoked = await people.issue_token(rig.store, "ana", "old", MON_1000, "test")
    await people.revoke_token(rig.store, revoked.split("_")[1], MON_1000, "test")
    app = create_app(Services(runtime, rig.store, rig.telephony, rig.sms, auth.TokenBook(())))
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, rig, tokens, revoked
    await client.close()
    await rig.close()


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


async def sign_in(client: TestClient, name: str, password: str | None = None) -> str:
    r = await client.post(
        "/login",
        data={"username": name, "password": password or PASSWORDS[name]},
        headers=origin(client),
        allow_redirects=False,
    )
    assert r.status == 302, await r.text()
    return r.cookies[auth.SESSION_COOKIE].value


def concrete(path: str) -> str:
    """A request path for a route pattern: every {parameter} filled with something plausible."""

    def fill(m: re.Match[str]) -> str:
        name, _, pattern = m.group(1).partition(":")
        if pattern:
            first = pattern.split("|")[0]
            return first if re.fullmatch(r"[a-z_]+", first) else "x"
        return {"number": "+5511987654321", "token": "x" * 20, "name": "nope"}.get(name, "x")

    return re.sub(r"\{([^}]+)\}", fill, path)


def routes(client: TestClient) -> list[tuple[str, str, str]]:
    """Every route the app's router holds (its pattern read from the route table that added it)."""
    patterns = {(r.method, r.handler): r.path for t in ROUTE_TABLES for r in t}
    out = []
    for r in client.server.app.router.routes():
        if r.method == "HEAD":
            continue
        path = patterns[(r.method, r.handler)]
        out.append((r.method, concrete(path), r.handler.required_role))  # type: ignore[attr-defined]
    return out


async def test_every_route_with_every_kind_of_caller(web):
    client, rig, tokens, revoked = web
    found = routes(client)
    assert len(found) > 25
    grants = {
        "ana": {"admin", "supervisor", "operator"},
        "sara": {"supervisor", "operator"},
        "otto": {"operator"},
    }
    for method, path, role in found:
        callers = {
            "nobody": {},
            "wrong": {"Authorization": "Bearer rg_abcdef_" + "y" * 30},
            "revoked": {"Authorization": f"Bearer {revoked}"},
            **{name: {"Authorization": f"Bearer {tokens[name]}"} for name in ROLE_OF},
        }
        for caller, headers in callers.items():
            send = {**headers, **origin(client), "Accept": "application/json"}
            r = await client.request(method, path, headers=send, allow_redirects=False)
            if role == "public":  # open to all (a failed sign-in answers 401 by its own right)
                assert r.status not in (401, 403) or (method, path) == ("POST", "/login"), (
                    method,
                    path,
                    caller,
                )
            elif caller in ("nobody", "wrong", "revoked"):
                assert r.status == 401, (method, path, caller, r.status)
            elif role in grants[caller]:
                assert r.status not in (401, 403), (method, path, caller, r.status, await r.text())
            else:
                assert r.status == 403, (method, path, caller, r.status)
            assert r.status < 500, (method, path, caller, r.status, await r.text())


async def test_sign_out_ends_the_session_on_the_server(web):
    client, rig, tokens, revoked = web
    cookie = await sign_in(client, "sara")
    me = await client.get("/api/me")
    assert (await me.json())["user"] == "sara"
    page = await (await client.get("/")).text()
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    r = await client.post("/logout", data={"csrf": csrf}, headers=origin(client), allow_redirects=False)
    assert r.status == 302
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({auth.SESSION_COOKIE: cookie})  # the old cookie, kept
    assert (await client.get("/api/me")).status == 401
    kinds = [e["kind"] for e in await rig.store.global_audit()]
    assert "login" in kinds and "logout" in kinds


async def test_a_new_password_or_a_disable_ends_every_session(web):
    client, rig, tokens, revoked = web
    cookie = await sign_in(client, "sara")
    await people.change_user(rig.store, "sara", MON_1000, "user:ana", password="another-password-9")
    assert (await client.get("/api/me")).status == 401
    await sign_in(client, "sara", "another-password-9")
    assert (await client.get("/api/me")).status == 200
    await people.change_user(rig.store, "sara", MON_1000, "user:ana", disabled=True)
    assert (await client.get("/api/me")).status == 401
    r = await client.post(
        "/login",
        data={"username": "sara", "password": "another-password-9"},
        headers=origin(client),
        allow_redirects=False,
    )
    assert r.status == 401 and cookie


async def test_changes_from_a_session_need_the_csrf_token_and_our_origin(web):
    """A page on another origin (another port of the same host) cannot change anything
    through a signed-in browser; the console's own requests can."""
    client, rig, tokens, revoked = web
    await sign_in(client, "sara")
    csrf = re.search(r'data-csrf="([^"]+)"', await (await client.get("/")).text()).group(1)
    body = {"number": "+5511987654321", "reason": "opt_out"}
    evil = {"Origin": "http://127.0.0.1:1"}
    assert (
        await client.post("/api/suppressions", json=body, headers=origin(client))
    ).status == 403  # no token
    assert (
        await client.post("/api/suppressions", json=body, headers={**evil, "X-CSRF-Token": csrf})
    ).status == 403
    r = await client.post("/api/suppressions", json=body, headers={**origin(client), "X-CSRF-Token": csrf})
    assert r.status == 201, await r.text()
    assert await rig.store.suppressions(["+5511987654321"])  # it went in
    audit = [e for e in await rig.store.global_audit() if e["kind"] == "suppress"]
    assert audit[-1]["actor"] == "user:sara"  # the person, not a role
    # a program with a token sends no CSRF token: nothing ambient to forge
    r = await client.post(
        "/api/suppressions",
        json={"number": "+5511987654320"},
        headers={"Authorization": f"Bearer {tokens['sara']}"},
    )
    assert r.status == 201


async def test_sign_in_is_throttled_per_account_and_per_address(web):
    client, rig, tokens, revoked = web
    for _ in range(auth.ACCOUNT_FAILURES):
        r = await client.post("/login", data={"username": "ana", "password": "wrong"}, headers=origin(client))
        assert r.status in (401, 429)
    assert r.status == 429  # the limit locked the account
    locked = await client.post(
        "/login", data={"username": "ana", "password": PASSWORDS["ana"]}, headers=origin(client)
    )
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0  # even the right password
    kinds = [e["kind"] for e in await rig.store.global_audit()]
    assert kinds.count("login_failed") == auth.ACCOUNT_FAILURES - 1 and "login_locked" in kinds
    assert "login_refused_locked" in kinds
    # another account is still open; guessing across accounts locks the address
    for i in range(auth.ADDRESS_FAILURES):
        await client.post("/login", data={"username": f"guess{i}", "password": "x"}, headers=origin(client))
    r = await client.post(
        "/login", data={"username": "otto", "password": PASSWORDS["otto"]}, headers=origin(client)
    )
    assert r.status == 429


async def test_security_headers_on_every_response(web):
    client, rig, tokens, revoked = web
    for path in ("/login", "/healthz", "/api/me", "/static/console.css", "/nope"):
        r = await client.get(path)
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert "Python" not in r.headers.get("Server", "") and "aiohttp" not in r.headers.get("Server", "")


async def test_a_huge_body_is_refused_before_it_is_read(web):
    """300 MB announced on /login: answered 413 at once, the body never read (the process
    does not grow by it), before any sign-in work."""
    client, rig, tokens, revoked = web
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 300000000\r\n\r\nusername=ana&password="
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 413")
    writer.close()
    failures = [e for e in await rig.store.global_audit() if e["kind"].startswith("login")]
    assert failures == []  # no sign-in was attempted


async def test_the_cookie_is_secure_behind_https(redis_url, settings):
    rig = await make_rig(redis_url, settings, MON_1000)
    service = settings.service.model_copy(update={"public_url": "https://regua.example.com"})
    runtime = Runtime(
        settings.model_copy(update={"service": service}), rig.policy, rig.cadence, rig.clock, b"t"
    )
    await people.add_user(rig.store, "sara", "supervisor", PASSWORDS["sara"], MON_1000, "test")
    client = TestClient(
        TestServer(create_app(Services(runtime, rig.store, rig.telephony, rig.sms, auth.TokenBook(()))))
    )
    await client.start_server()
    try:
        r = await client.post(
            "/login",
            data={"username": "sara", "password": PASSWORDS["sara"]},
            headers={"Origin": "https://regua.example.com"},
            allow_redirects=False,
        )
        assert r.status == 302 and r.cookies[auth.SESSION_COOKIE]["secure"]
        assert "Strict-Transport-Security" in r.headers
    finally:
        await client.close()
        await rig.close()

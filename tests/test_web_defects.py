"""The defects found by trying the API as an admin and an attacker would; each test failed
before its fix."""

from __future__ import annotations

import io
import os
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dialer.formats.config_file import load_settings
from dialer.runtime.wiring import Runtime
from dialer.web import auth
from dialer.web.app import create_app
from dialer.web.common import Services
from tests.runtime_helpers import HEADER, make_rig

MON_1000 = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
ADMIN = {"Authorization": "Bearer " + "a" * 24}
SUPERVISOR = {"Authorization": "Bearer " + "s" * 24}


@pytest.fixture
async def api(redis_url, settings, tmp_path):
    """The service as run with ``--config company.toml`` (the company's own name and number)."""
    company = tmp_path / "company.toml"
    company.write_text('[company]\nname = "ACME Varejo"\ncallback_number = "+55 11 4000-1111"\n')
    own = load_settings(company, env={})
    rig = await make_rig(redis_url, own, MON_1000)
    runtime = Runtime(own, rig.policy, rig.cadence, rig.clock, b"test", config_path=str(company))
    book = auth.TokenBook.from_pairs({"admin": "a" * 24, "supervisor": "s" * 24})
    client = TestClient(TestServer(create_app(Services(runtime, rig.store, rig.telephony, rig.sms, book))))
    await client.start_server()
    yield client, rig, runtime
    await client.close()
    await rig.close()


async def test_an_admins_change_keeps_the_companys_own_file(api):
    client, rig, runtime = api
    r = await client.put("/api/config", data=b"[sms]\nmax_segments = 2\n", headers=ADMIN)
    assert r.status == 200, await r.text()
    assert runtime.settings.sms.max_segments == 2
    assert runtime.settings.company.name == "ACME Varejo"  # not config/dialer.toml's
    assert runtime.settings.company.callback_number == "+55 11 4000-1111"


@pytest.mark.parametrize(
    "text",
    [
        '[service]\npublic_url = "http://evil.example"\n',
        '[ service ]\npublic_url = "http://evil.example"\n',
        'service.public_url = "http://evil.example"\n',
        "[service.extra]\nx = 1\n",
        "[\tservice\t]\nhttp_port = 1\n",
    ],
)
async def test_the_service_section_is_refused_in_any_spelling(api, text):
    client, rig, runtime = api
    before = await rig.store.config_overlay()
    r = await client.put("/api/config", data=text.encode(), headers=ADMIN)
    assert r.status == 400 and "service section" in (await r.json())["error"]
    assert await rig.store.config_overlay() == before
    assert runtime.settings.service.public_url != "http://evil.example"


async def test_an_empty_change_does_not_wipe_the_overlay_and_clearing_is_explicit(api):
    client, rig, runtime = api
    assert (await client.put("/api/config", data=b"[sms]\nmax_segments = 2\n", headers=ADMIN)).status == 200
    for body in (b"", b"  \n\t\n"):
        r = await client.put("/api/config", data=body, headers=ADMIN)
        assert r.status == 400 and "DELETE /api/config" in (await r.json())["error"]
    assert (await rig.store.config_overlay())[0].startswith("[sms]")
    r = await client.delete("/api/config", headers=ADMIN)
    assert r.status == 200 and (await rig.store.config_overlay())[0] == ""
    assert runtime.settings.sms.max_segments == 3 and runtime.settings.company.name == "ACME Varejo"


async def test_bad_bodies_and_parameters_get_a_4xx_with_a_reason(api):
    client, rig, runtime = api
    r = await client.put("/api/config", data=b"[sms]\nmax_segments = 2 # \xff\xfe\n", headers=ADMIN)
    assert r.status == 400 and "not UTF-8" in (await r.json())["error"]
    for value in ("abc", "-5", "0", "99999999"):
        r = await client.get(f"/api/suppressions?limit={value}", headers=SUPERVISOR)
        assert r.status == 400 and "'limit'" in (await r.json())["error"], value
    assert (await client.get("/api/suppressions?limit=5", headers=SUPERVISOR)).status == 200
    r = await client.post("/api/campaigns/has%20space!/upload", data=b"x", headers=SUPERVISOR)
    assert r.status == 400 and "campaign name" in (await r.json())["error"]


async def test_an_upload_answer_names_the_senders_file_not_ours(api):
    client, rig, runtime = api
    body = HEADER + "A1;Ana;11987654323;10/11/2026;10;sim;sim;1980\n"
    form = {"file": ("novembro.csv", body.encode(), "text/csv")}
    from aiohttp import FormData

    data = FormData()
    data.add_field("file", form["file"][1], filename="novembro.csv", content_type="text/csv")
    r = await client.post("/api/campaigns/nov/upload", data=data, headers=SUPERVISOR)
    summary = await r.json()
    assert r.status == 200 and summary["file"] == "novembro.csv"
    assert "regua-upload" not in str(summary) and "/tmp" not in str(summary)


async def test_fifty_megabytes_of_random_bytes_is_a_clear_400(api):
    client, rig, runtime = api
    r = await client.post(
        "/api/campaigns/junk/upload", data=io.BytesIO(os.urandom(50 * 1024**2)), headers=SUPERVISOR
    )
    body = await r.json()
    assert r.status == 400, body
    assert len(body["error"]) < 700  # never kilobytes of the input


async def test_the_report_neutralises_formulas_and_offers_excel(api):
    client, rig, runtime = api
    body = HEADER + 'A1;=HYPERLINK("http://x");11987654323;10/11/2026;10,50;sim;sim;1980\n'
    assert (
        await client.post("/api/campaigns/nov/upload", data=body.encode(), headers=SUPERVISOR)
    ).status == 200
    text = await (await client.get("/api/campaigns/nov/report.csv", headers=SUPERVISOR)).text()
    assert "\"'=HYPERLINK" in text and ",=HYPERLINK" not in text and ',"=HYPERLINK' not in text
    raw = await (await client.get("/api/campaigns/nov/report.csv?excel=1", headers=SUPERVISOR)).read()
    assert raw.startswith("\ufeff".encode()) and b";" in raw.splitlines()[0]
    assert b";10,50;" in raw  # a number Excel in Portuguese reads as one

"""Payments end to end with the providers' own shapes: Régua's runtime and web app on a real
Redis, against local servers shaped like the Pix API and Asaas (``payment_servers``), which
call Régua's webhook routes back as the real ones do.

- charges made at the provider once per debt, also across a SIGKILLed ``payments make``;
- a payment webhook stops the campaign before it is answered; the same callback twice and
  CONFIRMED + RECEIVED count once; a refund reopens the account;
- a webhook the provider never sent is caught by the reconciliation job (its sweep of
  what was received, and its question about each open charge).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.domain import AccountStatus
from dialer.rules.charges import ChargeStatus
from payments.asaas import AsaasProvider
from payments.factory import provider_from_url
from payments.pix_api import PixApiProvider
from tests.payment_servers import AsaasServer, PixApiServer
from tests.runtime_helpers import make_rig
from tests.test_payment_providers import CHAVE, ENV, fast, pix_url
from tests.test_payments import CPF, MON_0700, Harness, csv_file, statuses

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(120)


def rows(n: int) -> list[tuple[str, str, str, str]]:
    return [(f"A{d}", f"1198765432{d}", "10/11/2026", "100,00") for d in range(n)]


@pytest.fixture
async def psp():
    async with PixApiServer(client_id=ENV["PIX_ID"], client_secret=ENV["PIX_SECRET"], chave=CHAVE) as server:
        yield server


@pytest.fixture
async def pix_harness(redis_url, settings, psp):
    rig = await make_rig(redis_url, settings, MON_0700)
    provider = provider_from_url(pix_url(psp, mtls="off"), env=ENV)
    assert isinstance(provider, PixApiProvider)
    h = Harness(rig, fast(provider), settings)
    client = await h.web()
    await provider.register_webhook(str(client.make_url(f"/webhooks/payments/pix/{ENV['PIX_HOOK']}")))
    yield h
    await provider.close()
    await h.close()
    await rig.close()


async def test_pix_charges_made_once_paid_by_callback_counted_once_refunded(pix_harness, psp, tmp_path):
    h, store = pix_harness, pix_harness.rig.store
    path = csv_file(tmp_path, rows(3))
    await h.load(path)
    await h.load(path)  # again: no second charge
    assert await h.payments.make_due(h.rig.clock.now()) == 3
    assert psp.cobv_count == 3 and len(psp.puts) == 3
    bodies = {r.json["devedor"]["nome"]: r.json for r in psp.puts}
    put = bodies["Pessoa A0"]
    assert put["devedor"] == {"cpf": CPF, "nome": "Pessoa A0"}
    assert put["valor"]["multa"]["modalidade"] == 2 and put["valor"]["juros"]["modalidade"] == 3
    charge = await store.current_charge("A0")
    assert charge.state is ChargeStatus.ACTIVE and charge.copy_paste.startswith("000201")
    assert "document" not in charge.request  # the CPF is the PSP's now, not ours

    e2e = await psp.pay(charge.txid)  # the PSP calls our webhook, as it would
    assert psp.deliveries[-1].status == 200
    assert (await statuses(store, "A0"))["c1"] is AccountStatus.PAID
    again = await psp.deliver(psp.deliveries[-1].url, psp.deliveries[-1].body)  # the PSP retries
    assert again == 200
    assert (await store.current_charge("A0")).paid_cents == 10000
    await psp.refund(e2e)
    assert (await statuses(store, "A0"))["c1"] is AccountStatus.OPEN
    assert (await store.status("c1"))["counters"]["recovered_cents"] == 0


async def test_a_dropped_pix_webhook_is_caught_by_the_reconciliation_job(pix_harness, psp, tmp_path):
    h, store = pix_harness, pix_harness.rig.store
    await h.load(csv_file(tmp_path, rows(2)))
    now = h.rig.clock.now()
    await h.payments.make_due(now)
    psp.drop_webhooks = True
    one, two = (await store.current_charge("A0")), (await store.current_charge("A1"))
    await psp.pay(one.txid, horario=now + timedelta(minutes=1))  # PSP and we share a clock
    assert (await statuses(store, "A0"))["c1"] is AccountStatus.OPEN  # nobody told us
    # the sweep: GET /pix since the last run
    result = await h.payments.reconcile(now + timedelta(minutes=2))
    assert result.swept >= 1 and result.received.paid_accounts == ["A0"]
    assert (await statuses(store, "A0"))["c1"] is AccountStatus.PAID
    # a payment the sweep cannot see any more (its window passed): the open charge is asked
    await psp.pay(two.txid, horario=now + timedelta(minutes=3))
    await store.set_sweep_mark(now + timedelta(hours=2))
    later = now + timedelta(minutes=h.payments.settings.recheck_minutes + 1)
    result = await h.payments.reconcile(later)
    assert result.asked >= 1 and "A1" in result.received.paid_accounts
    assert (await statuses(store, "A1"))["c1"] is AccountStatus.PAID
    assert any(r.method == "GET" and r.path.endswith(f"/cobv/{two.txid}") for r in psp.requests)


async def test_asaas_confirmed_and_received_are_one_payment_and_a_refund_reopens(
    redis_url, settings, tmp_path
):
    async with AsaasServer(api_key=ENV["ASAAS_KEY"], webhook_token=ENV["ASAAS_HOOK"]) as server:
        rig = await make_rig(redis_url, settings, datetime.now(UTC))  # Asaas checks due dates against today
        url = f"asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&api={server.api_url}&timeout=2"
        provider = provider_from_url(url, env=ENV)
        assert isinstance(provider, AsaasProvider)
        h = Harness(rig, fast(provider), settings)
        client = await h.web()
        server.webhook_url = str(client.make_url("/webhooks/payments/asaas"))
        try:
            await h.load(csv_file(tmp_path, rows(2)))
            await h.load(csv_file(tmp_path, rows(2)))
            assert await h.payments.make_due(rig.clock.now()) == 2
            assert server.payments_created == 2 and server.customers_created == 1  # one CPF, one customer
            charge = await rig.store.current_charge("A0")
            assert charge.boleto_line and charge.copy_paste  # boleto (the default method) with its Pix
            payment_id = await server.pay(charge.txid)
            assert [d.status for d in server.deliveries] == [200, 200]
            assert (await statuses(rig.store, "A0"))["c1"] is AccountStatus.PAID
            assert (await rig.store.current_charge("A0")).paid_cents == 10000  # once, not twice
            await server.refund(payment_id)
            assert (await statuses(rig.store, "A0"))["c1"] is AccountStatus.OPEN
            forged = await client.post(
                "/webhooks/payments/asaas",
                json={"event": "PAYMENT_RECEIVED"},
                headers={"asaas-access-token": "x"},
            )
            assert forged.status == 401
        finally:
            await provider.close()
            await h.close()
            await rig.close()


async def test_a_sigkilled_charge_maker_never_makes_a_second_charge(redis_url, settings, tmp_path):
    """``payments make`` is killed (SIGKILL) while Asaas — whose POST is not idempotent — has
    made the charges but not answered; the maker that runs after the lease finds them."""
    async with AsaasServer(api_key=ENV["ASAAS_KEY"], webhook_token=ENV["ASAAS_HOOK"]) as server:
        url = f"asaas://?token_env=ASAAS_KEY&webhook_token_env=ASAAS_HOOK&api={server.api_url}&timeout=60"
        rig = await make_rig(redis_url, settings, datetime.now(UTC))  # Asaas checks due dates against today
        provider = provider_from_url(url, env=ENV)
        h = Harness(rig, fast(provider), settings)
        try:
            await h.load(csv_file(tmp_path, rows(5)))
            server.commit_then_hang(60, times=5, match="POST /v3/payments")
            env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER")}
            env.update(ENV)
            env.update(
                REDIS_URL=redis_url,
                DIALER_DATA_DIR=str(tmp_path / "var"),
                DIALER__PAYMENTS__PROVIDER=url,
                PYTHONPATH=str(ROOT),
            )
            maker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "dialer",
                "payments",
                "make",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for _ in range(300):  # until the provider has made all five
                if server.payments_created == 5:
                    break
                await asyncio.sleep(0.05)
            assert server.payments_created == 5
            maker.send_signal(signal.SIGKILL)
            await maker.wait()
            assert all(
                c.state is ChargeStatus.PENDING
                for c in [await rig.store.current_charge(r[0]) for r in rows(5)]
            )
            # after the lease, another maker (here, in this process) takes them again
            later = datetime.now(UTC) + timedelta(minutes=3)
            assert await h.payments.make_due(later) == 5
            assert server.payments_created == 5  # one charge per debt at the provider
            made = [await rig.store.current_charge(r[0]) for r in rows(5)]
            assert all(c.state is ChargeStatus.ACTIVE and c.provider_id for c in made)
            assert len({c.provider_id for c in made}) == 5
        finally:
            await provider.close()
            await h.close()
            await rig.close()

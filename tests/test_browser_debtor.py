"""The debtor's page in a real browser (Debian's Chromium, headless, phone-sized): a link,
a wrong second factor until the link locks, a new link, the right factor, the offers,
one accepted — against ``python -m dialer serve`` on a simulated clock. Screenshots go to
``test-artifacts/``."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta

import pytest

from dialer.formats import payment_links as pl
from dialer.formats.campaign_file import RowDefaults
from dialer.formats.config_file import load_settings
from dialer.rules.cadence import Cadence
from dialer.runtime.ingest import load_file
from dialer.store import Store
from tests.browser import Console, chrome, needs_browser, shot

pytestmark = [needs_browser, pytest.mark.timeout(180)]

SECRET = "browser-test-secret-key-0123456789"
START = datetime.fromisoformat("2026-11-23T10:00:00-03:00")


def _prepare(redis_url: str, tmp_path) -> None:
    """A campaign loaded (not started) and a link id the service resolves."""
    path = tmp_path / "c.csv"
    path.write_text(
        "account_id;name;phone;due_date;amount;consent_sms;verify_birth_year\n"
        "A1;Maria Souza;11987654323;10/09/2026;480,00;sim;1980\n"
    )

    async def main() -> None:
        store = await Store.connect(redis_url)
        try:
            await load_file(
                store,
                path,
                "c1",
                defaults=RowDefaults(True, True),
                secret=SECRET.encode(),
                cadence=Cadence.from_settings(load_settings()),
                now=START,
                actor="test",
                errors_to=io.StringIO(),
            )
            await store.register_link(pl.link_id(SECRET.encode(), "c1", "A1"), "c1", "A1")
        finally:
            await store.close()

    asyncio.run(main())


def token() -> str:
    return pl.make_token(
        SECRET.encode(),
        pl.link_id(SECRET.encode(), "c1", "A1"),
        START + timedelta(days=7),
        nonce=pl.new_nonce(),
    )


@pytest.fixture
def service(redis_url, tmp_path):
    _prepare(redis_url, tmp_path)
    running = Console(
        redis_url, tmp_path / "var", clock_start=START.isoformat(), extra_env={"DIALER_SECRET_KEY": SECRET}
    )
    yield running
    running.stop()


@pytest.fixture
def phone():
    d = chrome()
    d.set_window_size(390, 844)  # most debtors open the link on a phone
    yield d
    d.quit()


def test_link_wrong_factor_lock_new_link_right_factor_offers_accept(service, phone):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = phone
    first = token()
    d.get(service.url(f"/a/{first}"))
    assert d.find_element(By.TAG_NAME, "h1").text == "Olá, Maria Souza"
    assert d.find_element(By.CSS_SELECTOR, "label[for=factor]").text.startswith("Para continuar")
    source = d.page_source
    assert "480" not in source and "R$" not in source and "Loja Exemplo S.A." not in source
    shot(d, "debtor-1-verify-pt-BR")
    from selenium.webdriver.support import expected_conditions as ec

    for guess in ("1979", "1981", "2000"):
        field = d.find_element(By.ID, "factor")
        field.clear()
        field.send_keys(guess)
        d.find_element(By.CSS_SELECTOR, "#verify-form button[type=submit]").click()
        WebDriverWait(d, 10).until(ec.staleness_of(field))  # the answer's page replaced this one
        WebDriverWait(d, 10).until(lambda x: x.execute_script("return document.readyState") == "complete")
    locked = d.find_element(By.ID, "locked")
    assert "bloqueado" in locked.text and not d.find_elements(By.ID, "factor")
    shot(d, "debtor-2-locked")

    d.get(service.url(f"/a/{token()}"))  # a new link: another link, open again
    d.find_element(By.ID, "factor").send_keys("1980")
    d.find_element(By.CSS_SELECTOR, "#verify-form button[type=submit]").click()
    WebDriverWait(d, 10).until(lambda x: x.current_url.endswith("/account"))
    assert "CNPJ 11.222.333/0001-81" in d.find_element(By.ID, "creditor-id").text  # CDC art. 42-A
    assert "R$" in d.find_element(By.ID, "owed").text
    offers = d.find_elements(By.CSS_SELECTOR, "#offers li.offer")
    assert len(offers) >= 3
    width = d.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone
    shot(d, "debtor-3-offers")
    d.execute_script("arguments[0].scrollIntoView()", offers[2])
    offers[2].find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(d, 10).until(lambda x: x.find_elements(By.ID, "accepted"))
    assert "Acordo registrado" in d.find_element(By.ID, "accepted").text
    rows = d.find_elements(By.CSS_SELECTOR, "#agreement tbody tr")
    assert len(rows) == 3 and all("Em aberto" in r.text for r in rows)
    assert d.find_element(By.ID, "pix").get_attribute("value").startswith("000201")
    shot(d, "debtor-4-agreement")
    d.find_element(By.ID, "leave").click()
    WebDriverWait(d, 10).until(lambda x: x.find_elements(By.ID, "factor"))  # the session ended


def test_the_page_in_english(service, phone):
    from selenium.webdriver.common.by import By

    phone.get(service.url(f"/a/{token()}?lang=en"))
    assert phone.find_element(By.TAG_NAME, "h1").text == "Hello, Maria Souza"
    assert "year you were born" in phone.find_element(By.CSS_SELECTOR, "label[for=factor]").text
    shot(phone, "debtor-verify-en")

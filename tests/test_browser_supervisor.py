"""The supervisor's day in a real browser (Debian's Chromium, headless, against the real
service on a simulated clock): sign in, upload a file with bad rows, download the error
report, start the campaign, find an account and read why it was not called, work a
callback, see the do-not-contact list — with a screenshot of every page, in Portuguese
and then in English (an admin, who also sees the lift button)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.browser import Console, add_users, chrome, needs_browser, shot, sign_in
from tests.runtime_helpers import HEADER

pytestmark = [needs_browser, pytest.mark.timeout(150)]

# 08:30 in São Paulo is 07:30 in Manaus: São Paulo's debtors may be called, Amazonas' not yet
START = "2026-11-23T08:30:00-03:00"
SPEED = 10  # the simulated clock runs ten times faster: a sandbox call of 69 s lasts 7 s
ROWS = [
    "A0;José Conceição;+5511987654320;01/11/2026;250,00;sim;sim;1980\n",  # asks for the payment link
    "A8;Maria Souza;+5511987654328;01/11/2026;310,50;sim;sim;1980\n",  # asks for a callback
    "AM;Ana Araújo;+5592987654322;01/11/2026;120,00;sim;sim;1980\n",  # Manaus: too early there
    "A9;Pedro Gomes;+5511987654329;01/11/2026;99,90;sim;sim;1980\n",  # asks us to stop calling
    "B1;Sem Telefone;;01/11/2026;100,00;sim;sim;1980\n",  # rejected: no phone
    "B2;Data Ruim;+5511987654324;31/02/2026;100,00;sim;sim;1980\n",  # rejected: no such date
]


@pytest.fixture
def supervisor_console(redis_url: str, tmp_path: Path) -> Iterator[Console]:
    add_users(redis_url, datetime.fromisoformat(START), {"sara": "pt-BR", "ana": "en", "otto": "pt-BR"})
    running = Console(redis_url, tmp_path / "var", clock_start=START, speed=SPEED)
    yield running
    running.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    d = chrome()
    d.implicitly_wait(5)  # type: ignore[attr-defined]  # an element of the next page: wait for it
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    d.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    d.downloads = downloads  # type: ignore[attr-defined]
    yield d
    d.quit()  # type: ignore[attr-defined]


def until(check: Callable[[], object], seconds: float = 20, every: float = 0.3) -> object:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {seconds} s")
        time.sleep(every)


def page_shot(driver: object, name: str) -> Path:
    """A screenshot of the whole page (the window made as tall as the page, then put back)."""
    size = driver.get_window_size()  # type: ignore[attr-defined]
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    driver.set_window_size(size["width"], min(max(int(height) + 120, size["height"]), 5000))  # type: ignore[attr-defined]
    try:
        return shot(driver, name)
    finally:
        driver.set_window_size(size["width"], size["height"])  # type: ignore[attr-defined]


def seen(driver: object, text: str, seconds: float = 10) -> None:
    """Wait until the page shows ``text`` (the page may be replaced meanwhile)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def check() -> bool:
        try:
            return text in driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
        except StaleElementReferenceException:
            return False

    until(check, seconds)


def signed_in(driver: object, console: Console, name: str, heading: str) -> None:
    """Sign in and wait for the first page (its ``<h1>``), not the sign-in page still showing."""
    sign_in(driver, console, name)
    titled(driver, heading)


def titled(driver: object, heading: str) -> None:
    """Wait for the page whose ``<h1>`` starts with ``heading`` (not the one before it)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def arrived() -> bool:
        try:
            return str(driver.find_element(By.TAG_NAME, "h1").text).startswith(heading)  # type: ignore[attr-defined]
        except StaleElementReferenceException:
            return False

    until(arrived, 10, 0.1)


def confirm(driver: object) -> str:
    """Accept the page's confirmation (``data-confirm``); its question."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    alert = WebDriverWait(driver, 5).until(ec.alert_is_present())
    text = alert.text
    alert.accept()
    return str(text)


def test_the_supervisor_flow_in_portuguese_then_in_english(supervisor_console, browser, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    console, d = supervisor_console, browser
    find = d.find_element
    body = lambda: find(By.TAG_NAME, "body").text  # noqa: E731

    signed_in(d, console, "sara", "Campanhas")
    page_shot(d, "supervisor-campaigns-empty-pt-BR")

    # a new campaign: its name, then its file, which has two bad rows
    find(By.ID, "new-name").send_keys("novembro")
    find(By.CSS_SELECTOR, "#new-campaign button[type=submit]").click()
    titled(d, "Nova campanha: novembro")
    path = tmp_path / "carteira-novembro.csv"
    path.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    find(By.ID, "upload-file").send_keys(str(path))
    find(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    assert "Arquivo carregado" in find(By.ID, "upload-title").text
    assert find(By.ID, "rejected-count").text == "2"
    assert len(find(By.ID, "upload-errors").find_elements(By.CSS_SELECTOR, "tbody tr")) == 2
    page_shot(d, "supervisor-upload-pt-BR")

    # the whole error report, downloaded
    find(By.ID, "error-report").click()
    report = until(lambda: next(iter(d.downloads.glob("*.csv")), None))
    time.sleep(0.3)
    lines = Path(report).read_text(encoding="utf-8-sig").splitlines()  # type: ignore[arg-type]
    assert Path(report).name == "novembro-errors.csv"  # type: ignore[arg-type]
    assert lines[0] == "line,column,value,reason,account_id" and len(lines) == 3
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {"B1", "B2"}

    # start it (the page asks first); the counters follow on their own
    find(By.ID, "do-start").click()
    assert "Iniciar esta campanha?" in confirm(d)
    assert "A campanha começou" in find(By.ID, "notice").text
    assert find(By.ID, "campaign-state").text == "em andamento"

    def calls_counted() -> bool:  # the counters refresh themselves: the page is not reloaded
        try:
            return find(By.ID, "count-calls").text not in ("", "0")
        except StaleElementReferenceException:  # replaced by the refresh meanwhile
            return False

    until(calls_counted, seconds=30)
    page_shot(d, "supervisor-campaign-pt-BR")
    d.set_window_size(390, 844)
    shot(d, "supervisor-campaign-mobile-pt-BR")
    d.set_window_size(1280, 900)

    # why was Ana (Manaus) not called? Search her without the accent, open her account
    d.get(console.url("/accounts"))
    find(By.ID, "q").send_keys("ana araujo")
    find(By.CSS_SELECTOR, "#search button[type=submit]").click()
    find(By.CSS_SELECTOR, "#account-results a[href='/accounts/AM']").click()
    titled(d, "Ana Araújo")
    timeline = find(By.ID, "timeline").text
    assert "não ligamos para +55 92 98765-4322 — fora do horário permitido para Amazonas (AM)" in timeline
    assert "próxima vez permitida seg. 23 nov. 09:00 (08:00 hora do devedor)" in timeline
    raw = find(By.CSS_SELECTOR, "#timeline li.k-decision details")
    raw.find_element(By.TAG_NAME, "summary").click()
    assert "outside_calling_hours" in raw.find_element(By.TAG_NAME, "pre").text
    page_shot(d, "supervisor-account-pt-BR")
    d.get(console.url("/accounts?q=11987654320"))
    assert "José Conceição" in find(By.ID, "account-results").text
    page_shot(d, "supervisor-accounts-pt-BR")

    # Maria asked for a callback in her call: claim it, call her, mark it done
    def callback_row() -> object:
        d.get(console.url("/callbacks"))
        return "Maria Souza" in find(By.ID, "callbacks").text

    until(callback_row, seconds=40, every=1)
    assert "Sim, agora" in find(By.ID, "callbacks").text
    page_shot(d, "supervisor-callbacks-pt-BR")
    find(By.CSS_SELECTOR, "#callbacks button.primary").click()
    assert "O pedido é seu" in find(By.ID, "notice").text
    assert "sara" in find(By.ID, "callbacks").text
    page_shot(d, "supervisor-callback-claimed-pt-BR")
    find(By.XPATH, "//table[@id='callbacks']//button[text()='Marcar como feito']").click()
    assert "Marcar este pedido como feito?" in confirm(d)
    seen(d, "Nenhum retorno esperando.")

    # the do-not-contact list: Pedro asked us to stop calling; add a number by hand
    d.get(console.url("/suppressions"))
    until(lambda: "+55 11 98765-4329" in body(), seconds=20)
    assert "o devedor pediu para parar" in find(By.ID, "suppressions").text
    assert not d.find_elements(By.XPATH, "//button[text()='Retirar']")  # lifting is for admins
    find(By.ID, "add-number").send_keys("(21) 99876-5432")
    find(By.CSS_SELECTOR, "#add-suppression button[type=submit]").click()
    assert "O número está na lista" in find(By.ID, "notice").text
    page_shot(d, "supervisor-suppressions-pt-BR")

    # the same pages in English, as an admin (who also sees the lift button)
    find(By.CSS_SELECTOR, "header form button").click()
    until(lambda: d.current_url.endswith("/login"))
    signed_in(d, console, "ana", "Campaigns")
    assert "novembro" in find(By.ID, "campaigns").text
    page_shot(d, "supervisor-campaigns-en")
    d.get(console.url("/campaigns/novembro"))
    assert "Outcomes per hour" in body() and "Held back by the rules" in body()
    assert find(By.CSS_SELECTOR, "#chart svg")
    page_shot(d, "supervisor-campaign-en")
    d.get(console.url("/accounts?campaign=novembro&reason=outside_calling_hours"))
    page_shot(d, "supervisor-accounts-en")
    d.get(console.url("/accounts/AM"))
    assert "we did not call +55 92 98765-4322 — outside the calling hours allowed for Amazonas (AM)" in (
        find(By.ID, "timeline").text
    )
    page_shot(d, "supervisor-account-en")
    d.get(console.url("/callbacks"))
    assert "No callback waiting." in body()
    page_shot(d, "supervisor-callbacks-en")
    d.get(console.url("/suppressions"))
    assert "Do not contact" in find(By.TAG_NAME, "h1").text
    lift = d.find_elements(By.XPATH, "//button[text()='Lift']")
    assert lift
    page_shot(d, "supervisor-suppressions-en")
    lift[0].click()
    assert "Lift this suppression?" in confirm(d)
    assert "The suppression was lifted" in find(By.ID, "notice").text

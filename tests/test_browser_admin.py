"""The administration pages in a real browser (Debian's Chromium, headless), signed in as
ana, the admin: calling hours changed within the law and refused beyond it, a prompt
edited and heard, every page photographed in Portuguese and, after ana switches her own
language on the users page, in English."""

from __future__ import annotations

import pytest

from tests.browser import console, driver, needs_browser, shot, sign_in  # noqa: F401

pytestmark = [needs_browser, pytest.mark.timeout(180)]

PAGES = {
    "admin": "/admin",
    "admin-hours": "/admin/hours",
    "admin-hours-state": "/admin/hours/BR/SP",
    "admin-holidays": "/admin/holidays",
    "admin-cadence": "/admin/cadence",
    "admin-cadence-step": "/admin/cadence/boleto/d10_call",
    "admin-caps": "/admin/caps",
    "admin-limited-message": "/admin/limited-message",
    "admin-prompts": "/admin/prompts",
    "admin-prompt": "/admin/prompts/ask_identity",
    "admin-users": "/admin/users",
}

HEAR = """
const [src, done] = [arguments[0], arguments[arguments.length - 1]];
fetch(src, {credentials: "same-origin"})
  .then(r => r.arrayBuffer().then(b => done({
    status: r.status, type: r.headers.get("Content-Type"),
    head: String.fromCharCode(...new Uint8Array(b.slice(0, 4))), size: b.byteLength})))
  .catch(e => done({error: String(e)}));
"""

DECODE = """
const [audio, done] = [arguments[0], arguments[arguments.length - 1]];
if (audio.readyState >= 1) { done(audio.duration); return; }
audio.addEventListener("loadedmetadata", () => done(audio.duration));
audio.addEventListener("error", () => done(-1));
audio.preload = "metadata"; audio.load();
"""


def whole_page(browser, name: str) -> None:
    """A screenshot of the whole page: the viewport grown to the page's height, then back."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1280, "height": min(int(height), 6000), "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    shot(browser, name)
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait_for(browser, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def type_into(browser, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def test_the_admin_flow_in_both_languages(console, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sign_in(driver, console, "ana")
    wait_for(driver, "header .who")
    driver.get(console.url("/admin"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Administração"

    # calling hours in São Paulo: narrowed within the law, then widened beyond it
    driver.get(console.url("/admin/hours/BR/SP"))
    assert driver.find_element(By.ID, "voice-sun-law").text == "Fechado"  # the floor beside the value
    assert driver.find_element(By.ID, "voice-sat-law").text == "08:00-14:00"
    type_into(driver, "voice-mon", "09:00-18:00")
    driver.find_element(By.CSS_SELECTOR, "#hours-form button[type=submit]").click()
    assert "Salvo, verificado contra a lei" in wait_for(driver, "#done").text
    assert driver.find_element(By.ID, "voice-mon").get_attribute("value") == "09:00-18:00"
    type_into(driver, "voice-sun", "10:00-12:00")
    driver.find_element(By.CSS_SELECTOR, "#hours-form button[type=submit]").click()
    refusal = wait_for(driver, "#refusal").text
    assert "Recusado; nada foi alterado." in refusal
    assert "packs.BR.hours.SP.voice" in refusal and "looser than the law" in refusal
    assert driver.find_element(By.ID, "voice-sun").get_attribute("value") == "10:00-12:00"  # kept to fix
    whole_page(driver, "admin-hours-refused-pt-BR")
    driver.get(console.url("/admin/hours/BR/SP"))
    assert driver.find_element(By.ID, "voice-sun").get_attribute("value") == "Fechado"  # nothing changed

    # a prompt edited, then heard through the TTS
    driver.get(console.url("/admin/prompts/ask_identity"))
    text = "Bom dia. Procuramos {name}. Se for você, digite 1; se não, digite 2."
    type_into(driver, "text-pt-BR", text)
    driver.find_element(By.CSS_SELECTOR, "#prompt-form button[type=submit]").click()
    assert "Fala salva" in wait_for(driver, "#done").text
    assert driver.find_element(By.ID, "text-pt-BR").get_attribute("value") == text
    audio = driver.find_element(By.ID, "speech-pt-BR")
    heard = driver.execute_async_script(HEAR, audio.get_attribute("src"))
    assert heard["status"] == 200 and heard["type"] == "audio/wav", heard
    assert heard["head"] == "RIFF" and heard["size"] > 8000
    assert driver.execute_async_script(DECODE, audio) > 1  # Chromium decodes it: seconds of speech

    for name, path in PAGES.items():
        driver.get(console.url(path))
        wait_for(driver, "nav.subnav")
        whole_page(driver, f"{name}-pt-BR")

    # ana switches her own language: the console follows at once
    driver.get(console.url("/admin/users"))
    Select(driver.find_element(By.ID, "language-ana")).select_by_value("en")
    driver.find_element(By.CSS_SELECTOR, "#user-ana form button[type=submit]").click()
    assert wait_for(driver, "#done").text == "User changed."
    assert driver.find_element(By.TAG_NAME, "h1").text == "Users"
    for name, path in PAGES.items():
        driver.get(console.url(path))
        wait_for(driver, "nav.subnav")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        whole_page(driver, f"{name}-en")
    driver.get(console.url("/admin/hours/BR/SP"))
    type_into(driver, "voice-sun", "10:00-12:00")
    driver.find_element(By.CSS_SELECTOR, "#hours-form button[type=submit]").click()
    assert "Refused; nothing was changed." in wait_for(driver, "#refusal").text
    whole_page(driver, "admin-hours-refused-en")

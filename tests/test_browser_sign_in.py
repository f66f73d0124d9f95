"""Signing in, in a real browser (Debian's Chromium, headless), in both languages."""

from __future__ import annotations

import pytest

from tests.browser import console, driver, needs_browser, shot, sign_in  # noqa: F401

pytestmark = [needs_browser, pytest.mark.timeout(120)]


def test_sign_in_in_portuguese_and_out_again(console, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(console.url("/login"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Entrar"
    shot(driver, "login-pt-BR")
    driver.find_element(By.ID, "username").send_keys("sara")
    driver.find_element(By.ID, "password").send_keys("wrong-password")
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    error = WebDriverWait(driver, 10).until(
        lambda d: d.find_elements(By.ID, "login-error")
    )  # the answer's page
    assert "não aceitos" in error[0].text
    sign_in(driver, console, "sara")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Campanhas"
    assert "sara" in driver.find_element(By.CSS_SELECTOR, "header .who").text
    assert "Relógio simulado" in driver.find_element(By.ID, "clock").text
    shot(driver, "campaigns-pt-BR")
    driver.find_element(By.CSS_SELECTOR, "header form button").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("/login"))  # the form posted
    driver.get(console.url("/"))
    assert driver.current_url.endswith("/login")  # the session ended on the server


def test_the_sign_in_page_in_english(console, driver):
    from selenium.webdriver.common.by import By

    driver.get(console.url("/login?lang=en"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in"
    shot(driver, "login-en")

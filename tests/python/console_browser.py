"""Drives the status console in a real headless Chromium (Debian's chromium and chromedriver,
through Selenium), as an operator would: signs in with a token, reads every figure on the
overview once the live chart has polled, looks a donation up, reads its timeline, and saves a
screenshot. Prints one JSON object for the Rust test (`tests/cli/console_browser.rs`) to check
against the read model.

Environment: CONSOLE_URL, CONSOLE_TOKEN (audit:read only), CONSOLE_AUDITOR_TOKEN (audit:read
and donations:read), CONSOLE_DONATION (an id to follow), CONSOLE_SCREENSHOT (a .png path),
CHROMIUM (default /usr/bin/chromium), CHROMEDRIVER (default /usr/bin/chromedriver).
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["CONSOLE_URL"].rstrip("/")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1800"):
        options.add_argument(flag)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def sign_in(driver, token):
    driver.get(URL + "/")
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.NAME, "token")))
    assert driver.current_url.endswith("/login"), driver.current_url
    driver.find_element(By.NAME, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "projectors")))


def figures(driver):
    return {
        el.get_attribute("data-figure"): el.text
        for el in driver.find_elements(By.CSS_SELECTOR, "[data-figure]")
    }


def timeline(driver, donation_id):
    box = driver.find_element(By.NAME, "id")
    box.clear()
    box.send_keys(str(donation_id))
    driver.find_element(By.CSS_SELECTOR, "form.lookup button").click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "timeline")))
    entries = driver.find_elements(By.CSS_SELECTOR, "#timeline > li")
    return {
        "url": driver.current_url,
        "events": [e.get_attribute("data-event") for e in entries],
        "text": driver.find_element(By.TAG_NAME, "main").text,
    }


def main():
    result = {}
    driver = browser()
    try:
        # Unknown token: refused on the sign-in page.
        driver.get(URL + "/login")
        driver.find_element(By.NAME, "token").send_keys("not-a-token")
        driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        result["bad_token_page"] = driver.find_element(By.CSS_SELECTOR, ".error").text

        sign_in(driver, os.environ["CONSOLE_TOKEN"])
        # The live chart has drawn once it holds two polls.
        WebDriverWait(driver, 30).until(
            lambda d: int(d.find_element(By.ID, "chart").get_attribute("data-samples") or 0) >= 2
        )
        result["figures"] = figures(driver)
        result["chart_lines"] = len(driver.find_elements(By.CSS_SELECTOR, "#chart polyline"))
        driver.save_screenshot(os.environ["CONSOLE_SCREENSHOT"])

        result["operator"] = timeline(driver, os.environ["CONSOLE_DONATION"])
        driver.save_screenshot(os.environ["CONSOLE_SCREENSHOT"].replace(".png", "-donation.png"))
        driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.NAME, "token")))
        driver.get(URL + "/")
        result["after_sign_out"] = driver.current_url

        sign_in(driver, os.environ["CONSOLE_AUDITOR_TOKEN"])
        result["auditor"] = timeline(driver, os.environ["CONSOLE_DONATION"])
    finally:
        driver.quit()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

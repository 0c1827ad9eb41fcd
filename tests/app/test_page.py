"""The inspection page in a real headless Chromium: load, submit an image, see the overlay and the legend."""

import shutil
import socket

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from anomalib_dapo.app import load_inspector

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium and its driver are not installed (Debian: apt-get install -y chromium chromium-driver)",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@pytest.fixture
def page_url(tiny_checkpoint):
    # Imported here, not at collection: Gradio takes seconds to import, and every pytest-xdist worker collects
    # every module.
    from anomalib_dapo.app.page import HOST, build_page

    page = build_page(load_inspector(tiny_checkpoint))
    port = free_port(HOST)
    page.launch(server_name=HOST, server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://{HOST}:{port}/"
    page.close()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.mark.slow
def test_page_shows_the_overlay_and_the_legend_of_the_typed_names(page_url, browser, tmp_path):
    image = tmp_path / "part.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(image)
    wait = WebDriverWait(browser, 60)
    browser.get(page_url)
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#dapo-image input[type=file]")))
    browser.find_element(By.CSS_SELECTOR, "#dapo-image input[type=file]").send_keys(str(image))
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#dapo-image img")))
    names = browser.find_element(By.CSS_SELECTOR, "#dapo-names textarea")
    names.clear()
    names.send_keys("scratch, dent, rust")
    browser.find_element(By.CSS_SELECTOR, "#dapo-inspect").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#dapo-legend .dapo-type-name")))
    legend = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "#dapo-legend .dapo-type-name")]
    assert legend == ["scratch", "dent", "rust"]
    overlay = browser.find_element(By.CSS_SELECTOR, "#dapo-overlay img")
    assert overlay.get_attribute("src")
    assert browser.find_element(By.CSS_SELECTOR, "#dapo-map img").get_attribute("src")
    score = browser.find_element(By.CSS_SELECTOR, "#dapo-score textarea").get_attribute("value")
    assert score.endswith(("(normal)", "(anomalous)")), score

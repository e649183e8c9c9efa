"""The page in a real browser: Debian's chromium driven by Playwright (its own browser download
does not work on these machines). Skipped where either is missing; CI installs both."""
import io
import os
import shutil
import zipfile

import pytest
from PIL import Image

from conftest import smooth_image

sync_api = pytest.importorskip("playwright.sync_api")
httpx = pytest.importorskip("httpx")
CHROMIUM = os.environ.get("SRNL_CHROMIUM") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(accept_downloads=True)
        page.goto(server.url)
        yield page
        browser.close()


def choose(page, path):
    if page.locator("#chosen li").count():
        page.get_by_role("button", name="Clear").click()
    page.locator("input[type=file]").set_input_files(path)


def latest_card(page):
    return page.locator("article.card").first


def test_upscale_shows_the_full_result_and_downloads_its_bytes(page, server, tmp_path):
    src = tmp_path / "garden.png"
    Image.fromarray(smooth_image(40, 48)).save(src)
    choose(page, src)
    page.get_by_role("button", name="Upscale").click()
    card = latest_card(page)
    card.locator(".download").wait_for(state="visible", timeout=60_000)
    result = card.locator("img")  # the card's only image: the input is the slider's background
    assert result.count() == 1
    size = result.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [96, 80]
    with page.expect_download() as download:
        card.locator(".download").click()
    assert download.value.suggested_filename == "garden_x2.png"
    saved = download.value.path()
    direct = httpx.post(f"{server.url}/api/upscale", files={"image": ("garden.png", src.read_bytes())},
                        timeout=120)
    assert open(saved, "rb").read() == direct.content
    assert "photo-x2" in card.locator(".info").inner_text()


def test_denoise_then_all_results_as_a_zip(page, tmp_path):
    src = tmp_path / "street.jpg"
    Image.fromarray(smooth_image(32, 40, seed=3)).save(src, quality=60)
    choose(page, src)
    page.get_by_role("button", name="Denoise").click()
    card = latest_card(page)
    card.locator(".download").wait_for(state="visible", timeout=60_000)
    assert card.locator("img.after").evaluate("img => img.naturalWidth") == 40
    assert "estimated per pixel" in card.locator(".info").inner_text()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download all").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names[-1] == "street_dn.jpg"
        assert len(names) == page.locator("article.card.done").count()
        assert Image.open(io.BytesIO(archive.read("street_dn.jpg"))).size == (40, 32)


def test_a_corrupt_file_shows_one_line_on_the_page(page, tmp_path):
    src = tmp_path / "broken.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n and then nothing")
    choose(page, src)
    page.get_by_role("button", name="Upscale").click()
    error = latest_card(page).locator(".error")
    error.wait_for(state="visible", timeout=60_000)
    text = error.inner_text()
    assert "broken.png" in text and "Traceback" not in text and "/" not in text


def test_a_missing_width_is_asked_for_before_anything_is_sent(page, tmp_path):
    src = tmp_path / "small.png"
    Image.fromarray(smooth_image(16, 16)).save(src)
    choose(page, src)
    cards = page.locator("article.card").count()
    page.locator("#size").select_option("width")
    page.get_by_role("button", name="Upscale").click()
    assert page.locator("#page-error").inner_text() == "enter the width first"
    assert page.locator("article.card").count() == cards
    page.locator("#width").fill("40")
    page.get_by_role("button", name="Upscale").click()
    card = latest_card(page)
    card.locator(".download").wait_for(state="visible", timeout=60_000)
    assert card.locator("img.after").evaluate("img => img.naturalWidth") == 40
    assert page.locator("#page-error").is_hidden()

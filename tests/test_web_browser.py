"""The pages in a real browser: Debian's headless Chromium, driven by Playwright.

A user opens the index, filters it, opens a model page, uploads the demo photo and reads
the predicted labels; with JavaScript off the same works through plain forms; the static
site works from a folder on disk. Without Chromium these tests fail (naming the fix) unless
`TF2TORCH_SKIP_BROWSER=1` opts out explicitly.
"""

from __future__ import annotations

import os

import pytest

from browser import chromium, live_server
from web_repository import KERAS, TENSOR, TFLITE, ZOO

pytest.importorskip("starlette")
if os.environ.get("TF2TORCH_SKIP_BROWSER") == "1":
    pytest.skip("TF2TORCH_SKIP_BROWSER=1: browser tests opted out", allow_module_level=True)
pytest.importorskip("playwright", reason="playwright is part of tf2torch[dev]")

import tf2torch
from tf2torch.web.app import Settings, create_app


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def url(web_repo):
    with live_server(create_app(Settings(home=web_repo.home))) as url:
        yield url


def visible_rows(page) -> list[str]:
    return page.locator("table.models tbody tr:visible td:first-child a").all_inner_texts()


def test_index_filter_model_page_and_try_the_demo_photo(browser, url, web_repo, tmp_path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    assert page.title() == "tf2torch model repository"
    assert visible_rows(page) == [ZOO, KERAS, TFLITE, TENSOR]

    page.fill("input[name=q]", "tiny")  # filters as you type
    assert visible_rows(page) == [KERAS, TFLITE, TENSOR]
    page.select_option("select[name=format]", "tflite")
    assert visible_rows(page) == [TFLITE, TENSOR]
    assert page.inner_text("#shown") == "2"
    page.fill("input[name=q]", "zzz")
    assert visible_rows(page) == [] and page.is_visible("#none-shown")
    page.fill("input[name=q]", "")
    page.select_option("select[name=format]", "")
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

    page.click(f"text={ZOO}")
    page.wait_for_url(f"**/models/{ZOO}/")
    assert page.locator("main > h1").inner_text().startswith(ZOO)
    assert page.locator("section#verification > table.figures tbody tr").count() == 6
    plot = page.locator("img.plot")
    assert plot.evaluate("img => img.complete && img.naturalWidth > 400")
    assert page.evaluate("getComputedStyle(document.querySelector('.badge')).backgroundColor") \
        == "rgb(26, 127, 55)"  # the stylesheet loaded: the verified badge is green

    page.set_input_files("input[name=file]", str(web_repo.photo))
    page.click("button[type=submit]")
    page.wait_for_selector("table.predictions")
    labels = page.locator("table.predictions td.label").all_inner_texts()
    expected = tf2torch.load(web_repo.models / ZOO).classify(web_repo.photo, top=5)[0]
    assert labels == [p.label for p in expected]
    assert page.locator("table.predictions caption").inner_text().startswith("astronaut.jpg")
    assert page.locator("figure.annotated img").evaluate("img => img.naturalWidth") == 512
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)
    assert errors == []  # no script errors, nothing blocked by the content security policy


def test_the_pages_work_without_javascript(browser, url) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url)
    page.fill("input[name=q]", "classifier")
    page.click("button[type=submit]")  # a plain GET form: the server filters
    page.wait_for_url("**/?q=classifier&format=")
    assert visible_rows(page) == [KERAS]
    page.click(f"text={KERAS}")
    page.check("input[value='coffee.jpg']")
    page.click("button[type=submit]")  # a plain multipart POST
    page.wait_for_selector("table.predictions")
    assert len(page.locator("table.predictions td.label").all_inner_texts()) == 3
    context.close()


def test_the_static_site_works_from_a_folder(browser, web_repo, tmp_path) -> None:
    from tf2torch.web.site import write_site

    write_site(web_repo.home, tmp_path / "site", weights=False)
    page = browser.new_page()
    page.goto((tmp_path / "site" / "index.html").as_uri())
    assert page.is_visible("form.filter")  # the script shows the filter, and it works
    page.fill("input[name=q]", "keras")
    assert visible_rows(page) == [KERAS]
    page.click(f"text={KERAS}")
    page.wait_for_url("**/models/tiny_classifier/index.html")
    assert "tf2torch serve tiny_classifier" in page.inner_text("section#try")
    assert page.locator("form.try").count() == 0
    assert page.evaluate("getComputedStyle(document.querySelector('.badge')).color") == \
        "rgb(255, 255, 255)"

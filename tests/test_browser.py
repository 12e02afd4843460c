"""The example's page as a person sees it: `inv httpd.run`, then headless Chromium.

The browser is Debian's `chromium`, driven by Playwright's Python package, which is told
where it is and so never downloads one of its own. Without either the tests fail, saying
what to install: they never skip. Every request the browser makes must go to 127.0.0.1.
Screenshots are kept under pytest's tmp dir, their paths printed, and copied to
$DOCKYARD_TEST_ARTIFACTS when it is set.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# What REMOTE_ADDR or SERVER_SOFTWARE would be if an attacker chose them: markup that runs
# a script if the CGI printed it as it is, and every character the CGI escapes.
HOSTILE = """<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'&"""
# hello-world.cgi's escape_html, done the same way.
ESCAPED = (HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
           .replace('"', "&quot;").replace("'", "&#39;"))


@pytest.fixture
def page(tmp_path):
    """A page in a fresh headless Chromium that may only reach 127.0.0.1."""
    if not CHROMIUM.is_file():
        pytest.fail(f"no browser at {CHROMIUM}: the browser tests need Debian's chromium "
                    "(apt-get install chromium; .ci/run installs it)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright's Python package is missing: pip install -e '.[test]'", pytrace=False)
    elsewhere: list[str] = []

    def loopback_only(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 900, "height": 420})
        try:
            context.route("**/*", loopback_only)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
    assert elsewhere == [], "the browser tried to reach beyond 127.0.0.1"


@pytest.fixture
def screenshot(tmp_path, capsys):
    """Save the page as a PNG artifact; its path."""

    def save(page, name: str) -> Path:
        path = tmp_path / "artifacts" / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        where = str(path)
        kept = os.environ.get("DOCKYARD_TEST_ARTIFACTS")
        if kept:
            Path(kept).mkdir(parents=True, exist_ok=True)
            where += f" (copied to {shutil.copy(path, Path(kept) / path.name)})"
        with capsys.disabled():
            print(f"\nscreenshot: {where}")
        return path

    return save


def test_the_index_links_to_the_cgi_page_in_a_browser(project, page, screenshot):
    project.inv("httpd.run", "--quiet-build")
    page.goto(f"http://127.0.0.1:{project.port}/")
    assert page.title() == "Hello"
    assert page.inner_text("h4") == "Hello, World!"
    page.click("text=Run the hello-world CGI")
    page.wait_for_url(f"http://127.0.0.1:{project.port}/cgi-bin/hello-world")
    lines = page.inner_text("body").splitlines()
    assert lines[0] == "Hello, World!"
    assert any(line.startswith("You are ") for line in lines), lines
    # The container shares the host's kernel, so its uname names the host's release.
    uname = next(line for line in lines if line.startswith("My uname is Linux "))
    assert f" {os.uname().release} " in uname
    assert any(line.startswith("I'm running busybox httpd/") for line in lines), lines
    assert screenshot(page, "hello-world").stat().st_size > 0


def test_a_hostile_remote_addr_shows_as_text_and_runs_nothing(project, page, screenshot):
    """The browser cannot choose its REMOTE_ADDR, so run the CGI in the server's container as
    httpd does (as www-data), with hostile values, and show the browser exactly that output."""
    project.inv("httpd.run", "--quiet-build")
    hostile = shlex.quote(HOSTILE)
    output = project.inv("httpd.exec", "--user", "www-data",
                         f"REMOTE_ADDR={hostile} SERVER_SOFTWARE={hostile} /www/cgi-bin/hello-world").stdout
    headers, _, html = output.partition("\n\n")
    assert headers == "Content-Type: text/html"
    assert f"You are {ESCAPED}." in html and f"I'm running {ESCAPED}." in html
    url = f"http://127.0.0.1:{project.port}/cgi-bin/hello-world"

    def show(body: str) -> None:
        """Serve ``body`` as the CGI page, from the server's own origin."""
        page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=body))
        page.goto(url)
        page.unroute(url)

    # First the check itself: the same page unescaped does run the attacker's code.
    show(html.replace(ESCAPED, HOSTILE))
    assert page.evaluate("window.pwned") in (1, 2)
    show(html)
    assert page.evaluate("window.pwned") is None
    assert page.locator("body script, body img").count() == 0
    text = page.inner_text("body")
    assert f"You are {HOSTILE}." in text and f"I'm running {HOSTILE}." in text
    assert screenshot(page, "hello-world-hostile").stat().st_size > 0

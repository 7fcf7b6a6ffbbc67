"""Playwright with Debian's Chromium, and axe-core accessibility checks on every page visited.

Locally a missing browser skips these tests; in CI (CI=true or OPTIMA_REQUIRE_BROWSER=1) it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the tests' own ORM calls are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = (
    os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    or os.environ.get("OPTIMA_REQUIRE_BROWSER") == "1"
)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if not AXE_JS.exists():
        return f"axe-core not found at {AXE_JS} (npm install)"
    return None


def pytest_collection_modifyitems(config, items):
    problem = _missing()
    if problem is None:
        return
    if REQUIRED:
        return  # the _playwright fixture fails each browser test with the reason
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=problem))


@pytest.fixture(scope="session")
def _playwright():
    problem = _missing()
    if problem:
        if REQUIRED:
            pytest.fail(f"browser tests are required in CI: {problem}", pytrace=False)
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
    )
    yield browser
    browser.close()


# The page's overflow, the widest element and what the feedback button overlaps (at every scroll
# position: a fixed button moves over the page, so every element is compared in page coordinates).
LAYOUT_JS = """() => {
  const button = document.getElementById("feedback-button");
  const covered = [];
  const fixed = button && getComputedStyle(button).position === "fixed";
  if (button) {
    const b = button.getBoundingClientRect();
    for (const e of document.querySelectorAll("a, button, td, th, img, svg, input, select, textarea")) {
      if (e === button || button.contains(e) || e.closest("#feedback-panel")) continue;
      // A closed <details> keeps its content's boxes (content-visibility: hidden): not shown.
      if (!e.checkVisibility()) continue;
      const r = e.getBoundingClientRect();
      if (!r.width || !r.height) continue;
      const overlapsX = r.left < b.right && r.right > b.left;
      const overlapsY = fixed ? true : (r.top < b.bottom && r.bottom > b.top);
      if (overlapsX && overlapsY) covered.push(e.tagName.toLowerCase() + ": " + (e.textContent || e.getAttribute("aria-label") || "").trim().slice(0, 40));
    }
  }
  let widest = "";
  for (const e of document.body.querySelectorAll("*")) {
    if (e.getBoundingClientRect().right > innerWidth + 1 && e.checkVisibility() && !e.closest(".table-scroll, pre, .visually-hidden, .skip-link")) { widest = e.tagName + "." + e.className; break; }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth, covered: covered.slice(0, 5), widest};
}"""


class AxeViolations(AssertionError):
    pass


class Page:
    """A thin wrapper: every navigation is checked with axe-core and for CSP violations."""

    def __init__(self, page, base_url: str) -> None:
        self.pw = page
        self.base_url = base_url
        self.csp_errors: list[str] = []
        self.checked: list[str] = []
        page.on("console", self._on_console)

    def _on_console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp_errors.append(message.text)

    def __getattr__(self, name):
        return getattr(self.pw, name)

    def goto(self, path: str, **kwargs):
        response = self.pw.goto(self.base_url + path if path.startswith("/") else path, **kwargs)
        self.check()
        return response

    def check(self) -> None:
        """Run axe on the current page; fail on serious or critical violations or CSP errors."""
        self.pw.wait_for_load_state("networkidle")
        self.pw.evaluate(AXE_JS.read_text())
        result = self.pw.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
        self.checked.append(self.pw.url)
        if bad:
            lines = [
                f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
                for v in bad
            ]
            raise AxeViolations(f"accessibility violations on {self.pw.url}:\n" + "\n".join(lines))
        if self.csp_errors:
            raise AssertionError(
                f"Content Security Policy violations on {self.pw.url}: {self.csp_errors}"
            )
        self.check_layout()

    def check_layout(self) -> None:
        """Nothing scrolls sideways, and the feedback button covers no link, button, cell or image."""
        found = self.pw.evaluate(LAYOUT_JS)
        width = self.pw.viewport_size["width"]
        if found["scrollWidth"] > found["innerWidth"]:
            raise AssertionError(
                f"{self.pw.url} scrolls sideways at {width} px: "
                f"{found['scrollWidth']} > {found['innerWidth']} ({found['widest']})"
            )
        if found["covered"]:
            raise AssertionError(
                f"the feedback button covers {found['covered']} on {self.pw.url} at {width} px"
            )

    def at_width(self, width: int) -> None:
        self.pw.set_viewport_size({"width": width, "height": 844 if width < 600 else 900})

    def login(self, username: str, password: str) -> None:
        self.goto("/accounts/login/")
        self.pw.get_by_label("Username").fill(username)
        self.pw.get_by_label("Password").fill(password)
        self.pw.get_by_role("button", name="Log in").click()
        self.pw.wait_for_load_state("networkidle")
        if "/accounts/2fa/verify/" in self.pw.url:
            self.verify_second_factor()
        self.check()

    def verify_second_factor(self) -> None:
        """Type the code of the demo authenticator (admin, dac.*: accounts.otp.DEMO_TOTP_KEY).

        A code is accepted once; a second log-in within the same 30 s uses the next code."""
        from accounts.otp import DEMO_TOTP_KEY, current_code

        for steps_ahead in (0, 1):
            self.check()
            self.pw.get_by_label("Code from your authenticator app").fill(
                current_code(DEMO_TOTP_KEY, steps_ahead=steps_ahead)
            )
            self.pw.get_by_role("button", name="Verify").click()
            self.pw.wait_for_load_state("networkidle")
            if "/accounts/2fa/verify/" not in self.pw.url:
                return
        raise AssertionError("the demo two-factor code was not accepted")

    def logout(self) -> None:
        self.pw.get_by_role("button", name="Log out").click()
        self.pw.wait_for_load_state("networkidle")


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    pw_page = context.new_page()
    yield Page(pw_page, live_server.url)
    context.close()

"""The built book in a real browser (headless Chromium over the DevTools protocol): every page loads its images,
typesets its math with the local MathJax, requests nothing but local files, and the search page finds a notebook.
Screenshots go to ``_build/screenshots/`` for a person to look at.

Runs after ``make book`` (``make browser``; ``.ci/run`` does both and installs Chromium when missing). Skipped, with
the reason, only when no Chromium can be found or the book has not been built.
"""

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, toc_notebooks

HTML = Path(os.environ.get("NSLIB_BOOK_HTML", ROOT / "_build" / "html"))
SHOTS = HTML.parent / "screenshots"
CHROME = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROME is None, reason="no Chromium found: apt-get install chromium (.ci/run does)"),
    pytest.mark.skipif(not (HTML / "book" / "index.html").is_file(),
                       reason=f"the book is not built at {HTML}: run make book first"),
]


class Browser:
    """Just enough of the DevTools protocol: one page, navigation, JS evaluation, requests seen, screenshots."""

    def __init__(self):
        self.profile = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [CHROME, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "--window-size=1280,1600", "about:blank"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        for line in self.proc.stderr:
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                self.ws_url = m.group(1)
                break
        else:
            raise RuntimeError("Chromium did not start its DevTools endpoint")
        self.loop = asyncio.new_event_loop()
        self.ids, self.events, self.pending = 0, [], {}
        self.loop.run_until_complete(self._connect())

    async def _connect(self):
        from tornado.websocket import websocket_connect

        self.ws = await websocket_connect(self.ws_url, max_message_size=256 * 1024 * 1024)
        target = await self._send("Target.createTarget", url="about:blank")
        attached = await self._send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            await self._send(f"{domain}.enable", session=True)

    async def _send(self, method, session=False, **params):
        self.ids += 1
        msg = {"id": self.ids, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        await self.ws.write_message(json.dumps(msg))
        while True:
            reply = json.loads(await self.ws.read_message())
            if reply.get("id") == msg["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    async def _drain(self, seconds):
        end = self.loop.time() + seconds
        while self.loop.time() < end:
            try:
                msg = await asyncio.wait_for(self.ws.read_message(), timeout=max(0.01, end - self.loop.time()))
            except asyncio.TimeoutError:
                break
            self.events.append(json.loads(msg))

    def open(self, url: str, settle: float = 3.0) -> None:
        self.events = []
        self.loop.run_until_complete(self._send("Page.navigate", session=True, url=url))
        self.loop.run_until_complete(self._drain(settle))

    def js(self, expr: str):
        res = self.loop.run_until_complete(self._send("Runtime.evaluate", session=True, expression=expr,
                                                      returnByValue=True, awaitPromise=True))
        return res["result"].get("value")

    def requested(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def failed(self) -> list[str]:
        ids = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in self.events
               if e.get("method") == "Network.requestWillBeSent"}
        return [ids.get(e["params"]["requestId"], "?") + f" ({e['params'].get('errorText')})" for e in self.events
                if e.get("method") == "Network.loadingFailed"]

    def screenshot(self, path: Path, width: int = 1280) -> None:
        """The whole page as a reader's window of ``width`` pixels lays it out: the viewport is made as tall as the
        page and captured as it is (captureBeyondViewport re-lays out a page wider than the window, e.g. one with a
        wide table that scrolls sideways, and shifted such pages left, cutting the first words of every line)."""
        height = int(self.js("Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)") or 1600)
        height = max(600, min(height, 16_000))
        send = lambda method, **kw: self.loop.run_until_complete(self._send(method, session=True, **kw))  # noqa: E731
        send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.loop.run_until_complete(self._drain(0.5))
        try:
            left = self.js("Math.min(0, ...Array.from(document.querySelectorAll('main, article, p'))"
                           ".map(e => Math.round(e.getBoundingClientRect().left)))")
            assert left == 0, f"the page is shifted left by {-left} px in a {width}-px window: {path.name}"
            res = send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        finally:
            send("Emulation.clearDeviceMetricsOverride")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(res["data"]))

    def close(self):
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.loop.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


PAGES = ["book/index"] + [f"notebooks/{stem}" for stem in toc_notebooks()]


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_images_typesets_math_and_stays_local(browser, page):
    path = HTML / f"{page}.html"
    assert path.is_file(), f"{path} was not built"
    browser.open(path.as_uri())
    # MathJax typesets asynchronously: wait for it where the page has math
    has_math = browser.js("document.querySelectorAll('.math, span.math, div.math').length > 0")
    for _ in range(20):
        if not has_math or browser.js("document.querySelectorAll('mjx-container').length > 0"):
            break
        browser.loop.run_until_complete(browser._drain(0.5))
    broken = browser.js("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [], f"images that did not load on {page}: {broken}"
    if has_math:
        assert browser.js("document.querySelectorAll('mjx-container').length") > 0, f"math not typeset on {page}"
        assert any("mathjax" in u.lower() and u.startswith("file:") for u in browser.requested())
    remote = [u for u in browser.requested() if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert remote == [], f"{page} requested non-local addresses: {remote}"
    assert browser.failed() == [], f"{page}: failed loads {browser.failed()}"
    browser.screenshot(SHOTS / f"{page.replace('/', '-')}.png")


#: What a reader must never meet in a table cell: a Python dict or list repr, numpy's repr, NaN, None, True/False.
PYTHON_IN_CELLS = re.compile(r"\{'|\[\[|array\(|\bnan\b|\bNaN\b|\bNone\b|\bTrue\b|\bFalse\b|\bholds: ")
#: Glue that left a hole: a state followed by punctuation, a line starting with a colon, a missing number.
GLUE_HOLES = re.compile(r"\b(holds|does not hold|inconclusive) [;.,:]|^\s*:\s|\bnan\b|\bn/a\b", re.M)


@pytest.mark.parametrize("page", PAGES)
def test_no_python_repr_nan_or_empty_glue_on_the_page(browser, page):
    """Read the built page as its reader does: no table cell shows Python (a dict, a repr, nan, None), and no glued
    sentence has a hole ("holds ;", a colon opening a line, n/a)."""
    browser.open((HTML / f"{page}.html").as_uri())
    cells = browser.js("Array.from(document.querySelectorAll('main td, main th')).map(c => c.innerText)") or []
    python = [c[:120] for c in cells if PYTHON_IN_CELLS.search(c)]
    assert python == [], f"{page}: table cells showing Python: {python[:5]}"
    # math typeset by MathJax reads as one symbol per line: count each formula as one word
    text = browser.js("(() => { const m = (document.querySelector('main') || document.body).cloneNode(true); "
                      "m.querySelectorAll('mjx-container').forEach(e => e.replaceWith('MATH')); "
                      "document.body.appendChild(m); const t = m.innerText; m.remove(); return t; })()") or ""
    holes = [text[max(0, m.start() - 60): m.end() + 20].replace("\n", " / ") for m in GLUE_HOLES.finditer(text)]
    assert holes == [], f"{page}: glue holes: {holes[:5]}"


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("notebooks/")])
def test_every_figure_has_a_caption_alt_text_and_reads_at_the_page_width(browser, page):
    """A figure shown below 70% of its drawn width has unreadable legends and ticks; a figure without a caption
    leaves the reader to guess what to look at; alt text must say what is plotted, not name a hashed file."""
    browser.open((HTML / f"{page}.html").as_uri())
    images = browser.js("Array.from(document.querySelectorAll('main img')).map(i => ({src: i.src.split('/').pop(), "
                        "natural: i.naturalWidth, shown: i.getBoundingClientRect().width, alt: i.alt || '', "
                        "caption: !!(i.closest('figure') && i.closest('figure').querySelector('figcaption'))}))")
    assert images, f"{page} shows no figure"
    shrunk = [f"{i['src'][:12]}: {i['shown']:.0f} of {i['natural']} px" for i in images
              if i["natural"] and i["shown"] < 0.7 * i["natural"]]
    uncaptioned = [i["src"][:12] for i in images if not i["caption"]]
    bad_alt = [i["src"][:12] for i in images if len(i["alt"]) < 12 or re.fullmatch(r"[0-9a-f]{16,}.*", i["alt"])]
    assert shrunk == [], f"{page}: figures shown below 70% of their width: {shrunk}"
    assert uncaptioned == [], f"{page}: figures without a caption: {uncaptioned}"
    assert bad_alt == [], f"{page}: figures whose alt text does not say what is plotted: {bad_alt}"


def test_search_finds_a_word_from_a_notebook(browser):
    browser.open((HTML / "search.html").as_uri() + "?q=bifurcation", settle=4.0)
    links = []
    for _ in range(20):
        links = browser.js("Array.from(document.querySelectorAll('#search-results a, ul.search a'))"
                           ".map(a => a.getAttribute('href'))") or []
        if links:
            break
        browser.loop.run_until_complete(browser._drain(0.5))
    assert any("notebooks/" in h for h in links), f"search for 'bifurcation' found {links}"
    browser.screenshot(SHOTS / "search.png")

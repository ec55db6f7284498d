"""Measure and photograph report.html in a real headless browser (Chromium).

:func:`measure` loads a copy of the page with a small script appended that writes layout measurements
into the DOM (``<pre id="dk-measure">``), and reads them back with ``chromium --dump-dom``;
:func:`screenshot` saves a PNG at a given window width. Used by ``tests/test_report_html.py`` and
``make check-html``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Runs after layout: the page's width against the viewport, every element that sticks out of the
# viewport (outside a scroll container), and each table's scroll container.
MEASURE_JS = r"""
<script>
window.addEventListener("load", () => {
  const vw = window.innerWidth;
  const out = {viewport: vw, scrollWidth: document.documentElement.scrollWidth, overflowing: [], tables: []};
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(".table-wrap") && !el.classList.contains("table-wrap")) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) {
      out.overflowing.push({tag: el.tagName, cls: el.className, id: el.id, right: r.right});
    }
  }
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    const r = wrap.getBoundingClientRect();
    const texts = [...wrap.querySelectorAll("tbody tr:first-child td.text:not(.nowrap)")].map(td => td.getBoundingClientRect().width);
    out.tables.push({id: wrap.id, left: r.left, right: r.right, clientWidth: wrap.clientWidth,
                     scrollWidth: wrap.scrollWidth, overflowX: getComputedStyle(wrap).overflowX,
                     minTextWidth: texts.length ? Math.min(...texts) : null});
  }
  out.toc = [...document.querySelectorAll("nav.toc a")].map(a => a.getAttribute("href"));
  out.anchors = [...document.querySelectorAll("[id]")].map(e => e.id);
  parent.postMessage(JSON.stringify(out), "*");
});
</script>
"""


def find_chromium() -> str | None:
    """The Chromium executable: ``$CHROMIUM`` or the first of :data:`CANDIDATES` on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], timeout: float = 120) -> str:
    base = [
        chromium,
        "--headless",
        "--no-sandbox",  # root in containers
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=10000",
    ]
    proc = subprocess.run(base + args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


# Headless Chromium will not make a window narrower than 500 px, so the page is shown in an iframe of the
# wanted width (its viewport is then exactly that wide); the probe posts its measurements to this host.
HOST = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="{src}" style="width:{width}px;height:{height}px;border:0;display:block"></iframe>
<script>window.addEventListener("message", e => {{
  const pre = document.createElement("pre"); pre.id = "dk-measure"; pre.textContent = e.data;
  document.body.appendChild(pre);
}});</script></body></html>
"""


def _host(page: Path, width: int, height: int, work: Path, probe: bool) -> Path:
    page = page.resolve()
    src = page
    if probe:
        src = work / f"probe-{page.stem}.html"
        src.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE_JS + "</body>"), encoding="utf-8")
    host = work / f"host-{page.stem}-{width}{'-probe' if probe else ''}.html"
    host.write_text(HOST.format(src=src.as_uri(), width=width, height=height), encoding="utf-8")
    return host


def measure(chromium: str, page: Path, width: int, work: Path) -> dict:
    """Layout measurements of ``page`` in a viewport ``width`` px wide."""
    host = _host(page, width, 900, work, probe=True)
    dom = _run(chromium, [f"--window-size={max(width, 500) + 20},920", "--dump-dom", host.as_uri()])
    start = dom.index('<pre id="dk-measure">') + len('<pre id="dk-measure">')
    text = dom[start : dom.index("</pre>", start)]
    import html

    return json.loads(html.unescape(text))


def screenshot(chromium: str, page: Path, width: int, target: Path, work: Path, height: int = 1600) -> Path:
    """A PNG of the top of ``page`` in a viewport ``width`` x ``height`` px (the window is at least 500 px
    wide; a narrower page sits at its left edge)."""
    host = _host(page, width, height, work, probe=False)
    _run(chromium, [f"--window-size={max(width, 500)},{height}", f"--screenshot={target}", host.as_uri()])
    return target

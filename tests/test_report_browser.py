"""``abs-engine report``'s HTML page in a real browser: headless Chromium, driven through its own
command line (``--dump-dom``, ``--screenshot``; no Python dependency).

Each report (``--lang en`` and ``--lang zh``, made once for the module) is copied alone into a
fresh folder with two scripts injected: one at the very start of ``<head>`` that records
console.error / console.warn calls, window errors (capture phase, so failed resource loads too)
and unhandled rejections; one at the end of ``<body>`` that, after the load event, writes a
JSON document into ``<pre id="__results">``: each ``figure.chart``'s SVG box, what the page
fetched (``performance`` resource entries), the errors, and a CJK check. Chromium dumps the DOM
(the JSON is read from it) and takes a screenshot in the same run; its stderr (``--enable-logging``)
carries the console messages too, the ones the browser itself writes included.

* every chart has a sensible non-zero size and paints something in the screenshot;
* nothing was fetched, nothing was logged to the console, no error was raised, the page holds
  no script of its own;
* ``<html lang>`` is ``en`` / ``zh-CN``; in the Chinese report two characters of its own ``<h1>``
  drawn on a canvas in the body's font stack differ from each other and from a codepoint no font
  has (U+10FFFD): without a CJK font both would be the same .notdef box.

The checks are shown able to fail: a page with a console error, a broken image, a thrown error,
a rejected promise and a zero-size chart is reported on every count, and the Chinese report
rendered by a browser that sees only Latin fonts (a fontconfig file naming matplotlib's DejaVu
folder) fails the CJK check.

The browser: ``$ABS_ENGINE_CHROMIUM``, else ``chromium``, ``chromium-browser`` or
``google-chrome`` on PATH (Debian's ``chromium`` and ``fonts-noto-cjk``, which .ci/run
installs). Without one the tests skip, saying why, unless ``ABS_ENGINE_REQUIRE_BROWSER=1`` (set
by .ci/run once it has installed them): then they fail."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

# a real browser per report: run by .ci/run (which installs Chromium and requires the test)
# and by `pytest -m slow`, not by the default run
pytestmark = pytest.mark.slow
#: seconds one browser run may take
TIMEOUT = 90
#: the screenshot's width (CSS px, device scale 1) and its first height; taller if a chart
#: lies below it (up to MAX_HEIGHT)
WIDTH, HEIGHT, MAX_HEIGHT = 1280, 4000, 16000
#: Chromium's stderr line for a console message: "...:INFO:CONSOLE:12] "text", source: ..."
#: (older builds: "...:INFO:CONSOLE(12)] ...")
_CONSOLE = re.compile(r":CONSOLE[(:]")

# ---- the injected scripts ----------------------------------------------------------------------

_HEAD_JS = r"""
(function () {
  var errs = (window.__errors = []);
  function text(args) {
    return Array.prototype.map.call(args, function (x) {
      try {
        return x instanceof Error ? String(x.stack || x)
          : typeof x === "object" ? JSON.stringify(x) : String(x);
      } catch (e) { return String(x); }
    }).join(" ");
  }
  ["error", "warn"].forEach(function (level) {
    var orig = console[level];
    console[level] = function () {
      errs.push({ kind: "console." + level, message: text(arguments) });
      return orig.apply(console, arguments);
    };
  });
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.nodeType === 1) {
      var url = t.currentSrc || t.getAttribute("src") || t.getAttribute("href")
        || t.getAttribute("xlink:href") || t.getAttribute("data") || "";
      errs.push({ kind: "resource", message: t.tagName + " " + url });
    } else {
      errs.push({ kind: "error", message: String(e.message) + " (" + e.filename + ":"
        + e.lineno + ")" });
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    errs.push({ kind: "unhandledrejection", message: String(e.reason) });
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    errs.push({ kind: "csp", message: e.violatedDirective + " " + e.blockedURI });
  });
})();
"""

_TAIL_JS = r"""
(function () {
  // one character drawn black on white, 40px, in the given font stack: its pixels and ink
  function glyph(ch, family) {
    var c = document.createElement("canvas");
    c.width = 64; c.height = 64;
    var g = c.getContext("2d", { willReadFrequently: true });
    g.fillStyle = "#fff"; g.fillRect(0, 0, 64, 64);
    g.fillStyle = "#000"; g.font = "40px " + family; g.textBaseline = "top";
    g.fillText(ch, 8, 8);
    var d = g.getImageData(0, 0, 64, 64).data, inked = 0, px = [];
    for (var i = 0; i < d.length; i += 4) { if (d[i] < 128) inked++; px.push(d[i]); }
    return { inked: inked, pixels: px.join(",") };
  }
  // two characters: both inked, different from each other and from a codepoint no font has
  // (a missing font draws every one of them as the same .notdef box)
  function cjk(chars, family) {
    var a = glyph(chars[0], family), b = glyph(chars[1], family);
    var none = glyph("\u{10FFFD}", family);
    return { chars: chars, inked: [a.inked, b.inked, none.inked],
             distinct: a.pixels !== b.pixels,
             notNotdef: a.pixels !== none.pixels && b.pixels !== none.pixels };
  }
  function report() {
    var family = getComputedStyle(document.body).fontFamily;
    var h1 = document.querySelector("h1");
    var han = ((h1 && h1.textContent) || "").match(/[\u4e00-\u9fff]/g) || [];
    han = han.filter(function (c, i) { return han.indexOf(c) === i; });
    var charts = Array.prototype.map.call(document.querySelectorAll("figure.chart"), function (f) {
      var svgs = f.querySelectorAll("svg");
      var r = svgs.length ? svgs[0].getBoundingClientRect() : null;
      return { id: f.id, kind: f.getAttribute("data-kind"),
               scenario: f.getAttribute("data-scenario"), svgs: svgs.length,
               x: r ? r.left + window.scrollX : null, y: r ? r.top + window.scrollY : null,
               width: r ? r.width : 0, height: r ? r.height : 0 };
    });
    var out = {
      lang: document.documentElement.lang,
      scripts: document.scripts.length,
      dpr: window.devicePixelRatio,
      charts: charts,
      resources: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
      errors: window.__errors,
      font: family,
      cjk: han.length >= 2 ? cjk(han.slice(0, 2), family) : null,
      // the method's control: two codepoints no font has draw the same box
      control: cjk(["\u{10FFFC}", "\u{10FFFB}"], family),
    };
    document.getElementById("__results").textContent = JSON.stringify(out);
  }
  window.addEventListener("load", function () { setTimeout(report, 0); });
})();
"""
#: the scripts this file injects (the report itself holds none)
_OWN_SCRIPTS = 2


def _instrument(page: str) -> str:
    head = re.search(r"<head\b[^>]*>", page, re.IGNORECASE)
    end = page.lower().rfind("</body>")
    assert head and end >= 0, "the page has no <head> or no </body>"
    tail = f'<pre id="__results"></pre>\n<script>{_TAIL_JS}</script>\n'
    return (
        page[: head.end()]
        + f"<script>{_HEAD_JS}</script>"
        + page[head.end() : end]
        + tail
        + page[end:]
    )


# ---- the browser -------------------------------------------------------------------------------

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def _find_browser() -> tuple[str | None, str]:
    """The browser's path, or None and why there is none."""
    named = os.environ.get("ABS_ENGINE_CHROMIUM")
    if named:
        found = shutil.which(named)
        return (found, "") if found else (None, f"ABS_ENGINE_CHROMIUM={named!r} is not runnable")
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found, ""
    return None, f"no browser: none of {', '.join(_CANDIDATES)} on PATH, ABS_ENGINE_CHROMIUM unset"


def _no_browser(reason: str) -> NoReturn:
    """Skip, saying why; fail instead where CI requires the browser."""
    if os.environ.get("ABS_ENGINE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"ABS_ENGINE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"{reason} (install Debian's chromium and fonts-noto-cjk, as .ci/run does)")


@pytest.fixture(scope="module")
def browser() -> str:
    exe, reason = _find_browser()
    if exe is None:
        _no_browser(reason)
    try:
        v = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _no_browser(f"{exe} --version failed: {exc}")
    if v.returncode != 0 or "chrom" not in v.stdout.lower():
        _no_browser(f"{exe} --version: exit {v.returncode}, {(v.stdout + v.stderr).strip()!r}")
    return str(exe)


@dataclass
class Rendered:
    results: dict[str, Any]
    #: Chromium's stderr: its log, the console messages included
    log: str
    screenshot: Path | None


def _render(
    exe: str,
    page: Path,
    work: Path,
    height: int = HEIGHT,
    screenshot: bool = True,
    env: dict[str, str] | None = None,
) -> Rendered:
    """Open ``page`` in headless Chromium (a fresh profile, no network services), dump its DOM
    after load and, with ``screenshot``, capture WIDTH x ``height`` px of it."""
    profile = work / f"profile-{len(list(work.glob('profile-*')))}"
    shot = work / f"{page.stem}-{height}.png"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        # virtual time: the load event and its setTimeout run before the dump, at no wall time
        "--virtual-time-budget=5000",
        f"--window-size={WIDTH},{height}",
        *([f"--screenshot={shot}"] if screenshot else []),
        "--dump-dom",
        page.as_uri(),
    ]
    # its own process group: on a timeout the browser's helpers go with it
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        errors="replace", env=env, start_new_session=True,
    ) as p:  # fmt: skip
        try:
            dom, log = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            dom, log = p.communicate()
            pytest.fail(f"the browser took over {TIMEOUT} s on {page.name}; stderr:\n{log[-3000:]}")
    m = re.search(r'<pre id="__results">(.*?)</pre>', dom, re.DOTALL)
    assert p.returncode == 0 and m and m.group(1), (
        f"no results from {page.name} (exit {p.returncode}); stderr:\n{log[-3000:]}"
    )
    if screenshot:
        assert shot.is_file(), f"no screenshot; stderr:\n{log[-3000:]}"
    return Rendered(json.loads(html.unescape(m.group(1))), log, shot if screenshot else None)


def _open(exe: str, page_html: str, work: Path, name: str, **kw: Any) -> Rendered:
    """The page instrumented, alone in a fresh folder (so that a relative reference finds
    nothing and fails loudly), rendered; taller again if a chart lies below the screenshot."""
    work.mkdir(parents=True, exist_ok=True)
    page = work / f"{name}.html"
    page.write_text(_instrument(page_html), encoding="utf-8")
    out = _render(exe, page, work, **kw)
    bottom = max(
        (c["y"] + c["height"] for c in out.results["charts"] if c["y"] is not None), default=0
    )
    if out.screenshot is not None and bottom > HEIGHT:
        out = _render(exe, page, work, height=min(int(bottom) + 50, MAX_HEIGHT), **kw)
    return out


# ---- what counts as a problem ------------------------------------------------------------------


def _page_problems(r: dict[str, Any]) -> list[str]:
    """Errors, fetches, console messages caught in the page, scripts of its own, charts without
    a sensible size."""
    out = [f"{e['kind']}: {e['message']}" for e in r["errors"]]
    out += [f"fetched {u}" for u in r["resources"]]
    if r["scripts"] != _OWN_SCRIPTS:
        out.append(f"the page has {r['scripts'] - _OWN_SCRIPTS} script(s) of its own")
    if not r["charts"]:
        out.append("no figure.chart")
    for c in r["charts"]:
        if c["svgs"] != 1:
            out.append(f"chart {c['id']}: {c['svgs']} <svg> elements")
        if not (c["width"] >= 200 and c["height"] >= 100):
            out.append(f"chart {c['id']}: {c['width']:.1f} x {c['height']:.1f} px")
    return out


def _console_lines(log: str) -> list[str]:
    """Console messages in Chromium's own log (those the browser writes itself included)."""
    return [line for line in log.splitlines() if _CONSOLE.search(line)]


def _cjk_problems(r: dict[str, Any]) -> list[str]:
    c = r["cjk"]
    if c is None:
        return ["no two Chinese characters in the <h1>"]
    out = []
    if min(c["inked"][:2]) < 20:
        out.append(f"{''.join(c['chars'])}: blank glyphs (ink {c['inked']})")
    if not c["distinct"]:
        out.append(f"{''.join(c['chars'])}: the two characters draw the same (no CJK font)")
    if not c["notNotdef"]:
        out.append(f"{''.join(c['chars'])}: drawn as a missing glyph (.notdef)")
    return out


def _image(path: Path) -> np.ndarray:
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _painted(crop: np.ndarray) -> tuple[float, int]:
    """The share of pixels not in the crop's commonest colour, and the number of colours."""
    rgb = crop.reshape(-1, 3).astype(np.uint32)
    _, counts = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2], return_counts=True)
    return 1.0 - counts.max() / len(rgb), len(counts)


def _screenshot_problems(shot: Path, r: dict[str, Any]) -> list[str]:
    img = _image(shot)
    out = []
    share, n = _painted(img[::4, ::4])  # every 16th pixel is plenty
    if img.shape[1] != WIDTH or share < 0.02 or n < 16:
        out.append(f"screenshot {img.shape[1]}x{img.shape[0]}: {n} colours, {share:.1%} painted")
    for c in r["charts"]:
        x0, y0 = round(c["x"] or 0), round(c["y"] or 0)
        x1, y1 = x0 + round(c["width"]), y0 + round(c["height"])
        if y1 > img.shape[0] or x1 > img.shape[1]:
            out.append(f"chart {c['id']}: below the {img.shape[0]} px screenshot")
            continue
        share, n = _painted(img[y0:y1, x0:x1])
        if share < 0.01 or n < 3:
            out.append(f"chart {c['id']}: {n} colours, {share:.2%} painted")
    return out


# ---- the reports -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["en", "zh"])
def report(
    request: pytest.FixtureRequest,
    browser: str,
    tmp_path_factory: pytest.TempPathFactory,
    deal_report: Any,
) -> tuple[str, str, Rendered]:
    """(lang, the report's HTML, the instrumented page rendered): the session's shared
    report (conftest.deal_report), rendered once."""
    lang = request.param
    out, _ = deal_report(lang)
    page = (out / "report.html").read_text(encoding="utf-8")
    return lang, page, _open(browser, page, tmp_path_factory.mktemp(f"browser_{lang}"), "report")


def test_charts_render(report: tuple[str, str, Rendered]) -> None:
    """Every figure.chart the page holds (as many as the HTML has) has one SVG of a sensible
    size, and paints something where the screenshot shows it."""
    _, page, got = report
    r = got.results
    assert len(r["charts"]) == page.count('<figure class="chart"'), r["charts"]
    assert [p for p in _page_problems(r) if p.startswith(("chart", "no figure"))] == []
    assert r["dpr"] == 1
    assert got.screenshot is not None
    assert _screenshot_problems(got.screenshot, r) == []


def test_no_console_errors_nothing_fetched(report: tuple[str, str, Rendered]) -> None:
    _, _, got = report
    assert _page_problems(got.results) == []
    assert _console_lines(got.log) == []


def test_language_and_chinese_labels(report: tuple[str, str, Rendered]) -> None:
    lang, _, got = report
    r = got.results
    assert r["lang"] == {"en": "en", "zh": "zh-CN"}[lang]
    # the control: codepoints no font has all draw the same box, so "distinct" means something
    assert r["control"]["distinct"] is False and r["control"]["notNotdef"] is False
    if lang == "zh":
        problems = _cjk_problems(r)
        assert problems == [], (
            f"{problems} in {r['font']}: is a CJK font (fonts-noto-cjk) installed?"
        )
    else:
        assert r["cjk"] is None  # an English <h1>


# ---- the checks can fail -----------------------------------------------------------------------

_BROKEN_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>broken</title></head>
<body><h1>资产支持证券</h1>
<figure class="chart" id="chart-empty"><svg width="0" height="0"></svg></figure>
<img src="http://example.invalid/x.png" alt="">
<img src="missing-next-to-the-page.png" alt="">
<script>
console.error("x");
console.warn("careful");
Promise.reject(new Error("rejected"));
setTimeout(function () { throw new Error("thrown"); }, 0);
</script>
</body></html>
"""


def test_checks_catch_a_broken_page(browser: str, tmp_path: Path) -> None:
    """A console error and warning, a thrown error, a rejected promise, two broken images (one
    fetched from the network, one relative) and a zero-size chart: each reported."""
    got = _open(browser, _BROKEN_PAGE, tmp_path, "broken", screenshot=False)
    problems = "\n".join(_page_problems(got.results))
    for expected in (
        "console.error: x",
        "console.warn: careful",
        "unhandledrejection: Error: rejected",
        "error: Uncaught Error: thrown",
        "resource: IMG http://example.invalid/x.png",
        "resource: IMG file://",
        "fetched http://example.invalid/x.png",
        "script(s) of its own",
        "chart chart-empty: 0.0 x 0.0 px",
    ):
        assert expected in problems, f"{expected!r} not in:\n{problems}"
    assert any('"x"' in line for line in _console_lines(got.log)), got.log[-3000:]


@pytest.mark.parametrize("report", ["zh"], indirect=True)
def test_cjk_check_fails_without_a_cjk_font(
    browser: str, report: tuple[str, str, Rendered], tmp_path: Path
) -> None:
    """The Chinese report's head (its styles and <h1>), opened by a browser whose fontconfig
    sees only matplotlib's DejaVu fonts (no Han glyphs): its characters draw as identical
    .notdef boxes and the check says so. (A page asking for a font that does not exist would
    prove nothing: fontconfig falls back, per character, to any installed font with the
    glyph, so that page renders its Chinese wherever a CJK font is installed.)"""
    _, page, _ = report
    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    assert any(fonts.glob("DejaVuSans*.ttf")), fonts
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
        f"<fontconfig><dir>{fonts}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir>"
        "</fontconfig>\n",
        encoding="utf-8",
    )
    env = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    # the report's own <head> (its font stack) and <header> (its <h1>) are enough
    head = page[: page.index("</header>")] + "</header>\n</body>\n</html>\n"
    got = _open(browser, head, tmp_path / "page", "report", screenshot=False, env=env)
    problems = _cjk_problems(got.results)
    assert any("no CJK font" in p for p in problems), (problems, got.results["cjk"])


# ---- no browser --------------------------------------------------------------------------------


def test_no_browser_skips_unless_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ABS_ENGINE_CHROMIUM", raising=False)
    exe, reason = _find_browser()
    assert exe is None and "no browser" in reason
    monkeypatch.delenv("ABS_ENGINE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no browser"):
        _no_browser(reason)
    monkeypatch.setenv("ABS_ENGINE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="ABS_ENGINE_REQUIRE_BROWSER=1"):
        _no_browser(reason)
    monkeypatch.setenv("ABS_ENGINE_CHROMIUM", str(tmp_path / "nothing-here"))
    assert _find_browser() == (
        None,
        f"ABS_ENGINE_CHROMIUM={str(tmp_path / 'nothing-here')!r} is not runnable",
    )

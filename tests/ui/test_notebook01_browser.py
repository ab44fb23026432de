"""Notebook 01 as a learner meets it: JupyterLab in a real (headless Debian) Chromium, sliders moved by keyboard.

The test opens ``notebooks/01_low_light_simulation.ipynb`` in JupyterLab, runs every cell from the Run menu,
waits for the kernel, finds the sliders by their descriptions, moves "exposure" and then "shot noise" with the
arrow keys on the focused slider handle, and checks from the pixels of the rendered ``<img>`` that the picture
really changed: brighter after more exposure, rougher (larger neighbouring-pixel differences) after more shot
noise. No cell may show a traceback, no widget may fail to render (without the ipywidgets labextension the
sliders are simply not found), and the pictures must be shown undistorted. Results land in ``runs/ui/``:
``before.png`` and ``after.png`` (the widget's output area), ``page.png`` and ``page_after_run_all.png``
(the whole page), ``failure.png`` on failure, ``report.json`` (timings, slider readouts, pixel statistics),
``console.log`` (browser errors) and ``jupyter-lab.log``.

Run with ``make test-ui`` (installs Debian's chromium when missing). Skipped when chromium is absent.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/01_low_light_simulation.ipynb"
OUT = REPO / "runs" / "ui"
SLIDERS = ("exposure", "gamma", "shot noise", "read noise", "gain")
RUN_ALL_TIMEOUT_S = 300
UPDATE_TIMEOUT_S = 60
# Arrow-key presses on each slider handle (one slider step each).
EXPOSURE_PRESSES = 4
NOISE_PRESSES = 10

# Outputs that mean something went wrong: JupyterLab renders error outputs (and stderr) with this mime type,
# and the widget manager writes these texts when it cannot show a widget.
STDERR_SELECTOR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
ERROR_TEXT = re.compile(r"Traceback|\b\w*(Error|Exception)\b:?")
WIDGET_FAILURES = ("Error displaying widget", "Failed to load model class", "Loading widget...")

# Data of every rendered image inside an element, fetched in the page (blob: or data: URLs alike).
_JS_IMAGES = """
async (root) => {
  const out = [];
  for (const img of root.querySelectorAll('img')) {
    if (!img.src) continue;
    const buf = await (await fetch(img.src)).arrayBuffer();
    let bin = '';
    const bytes = new Uint8Array(buf);
    for (let i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    out.push({src: img.src.slice(0, 40), cls: img.className, data: btoa(bin),
              w: img.naturalWidth, h: img.naturalHeight, cw: img.clientWidth, ch: img.clientHeight});
  }
  return out;
}
"""


def _decode(item: dict) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(item["data"]))) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _roughness(a: np.ndarray) -> float:
    """Mean absolute difference between horizontally and vertically neighbouring pixels (noise raises it)."""
    return float((np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()) / 2)


def _stats(a: np.ndarray) -> dict:
    return {"shape": list(a.shape), "mean": float(a.mean()), "std": float(a.std()), "rough": _roughness(a)}


class Lab:
    """A JupyterLab page with the notebook open: the few UI moves a learner makes, and what the page shows."""

    def __init__(self, page, server):
        self.page = page
        self.server = server
        self.kernel_id: str | None = None

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
        self.wait_kernel_ready(timeout=180)

    def server_kernels(self) -> list[dict]:
        """The server's kernels; ``[]`` while it cannot say (it answers 500 while a kernel is starting)."""
        try:
            return self.server.api("kernels")
        except OSError:  # urllib's HTTPError and URLError are OSErrors
            return []

    def wait_kernel_ready(self, timeout: float, settle: float = 3.0) -> None:
        """Wait for one kernel, idle on the server and in the page, the same one for ``settle`` seconds.

        On a loaded machine JupyterLab may start a kernel, replace it and connect again while the page is
        opening; running cells before that settles loses them.
        """
        deadline, since, last = time.monotonic() + timeout, None, None
        while time.monotonic() < deadline:
            kernels = self.server_kernels()
            ready = (
                len(kernels) == 1
                and kernels[0].get("execution_state") == "idle"
                and kernels[0].get("connections", 1) >= 1
                and self.kernel_status() == "idle"
            )
            key = kernels[0]["id"] if ready else None
            if ready and key == last:
                if time.monotonic() - since >= settle:
                    self.kernel_id = key
                    return
            else:
                since, last = time.monotonic(), key
            self.page.wait_for_timeout(250)
        raise AssertionError(
            f"no single idle kernel after {timeout:.0f} s: server has {self.server_kernels()}, "
            f"page says {self.kernel_status()!r}"
        )

    def kernel_status(self) -> str:
        """The kernel status the page shows (``idle``, ``busy``, ...; ``unknown`` before it shows one)."""
        return self.page.evaluate(
            """() => {
                const el = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) '
                                                  + '.jp-Notebook-ExecutionIndicator');
                return (el && el.getAttribute('data-status')) || 'unknown';
            }"""
        )

    def busy_prompts(self) -> int:
        return self.page.locator(".jp-InputPrompt", has_text="[*]").count()

    def wait_idle(self, timeout: float, settle: float = 1.0) -> None:
        """Wait until the kernel reports idle and no cell shows ``[*]``, for ``settle`` seconds in a row."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.kernel_status() == "idle" and self.busy_prompts() == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            self.page.wait_for_timeout(250)
        raise AssertionError(
            f"kernel not idle after {timeout:.0f} s (status {self.kernel_status()!r}, "
            f"{self.busy_prompts()} cells still running)"
        )

    def run_all(self) -> None:
        """Run → Run All Cells, through the menu bar as a learner would."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        # The first prompt turns to [*] or a number once execution has started.
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
            ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
            timeout=60_000,
        )

    def code_prompts(self) -> list[str]:
        return [t.strip() for t in self.page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]

    def errors(self) -> list[str]:
        texts = [t for t in self.page.locator(STDERR_SELECTOR).all_inner_texts() if ERROR_TEXT.search(t)]
        body = self.page.locator(".jp-Notebook").inner_text()
        texts += [f"widget failure: {w!r}" for w in WIDGET_FAILURES if w in body]
        return texts

    def slider(self, description: str):
        label = self.page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*$"))
        return self.page.locator(".widget-slider", has=label)

    def readout(self, description: str) -> str:
        return self.slider(description).locator(".widget-readout").inner_text().strip()

    def press(self, description: str, key: str, times: int) -> None:
        handle = self.slider(description).locator(".noUi-handle").first
        handle.focus()
        for _ in range(times):
            handle.press(key)
            self.page.wait_for_timeout(60)

    def images(self, area) -> list[dict]:
        return area.evaluate(_JS_IMAGES)

    def wait_images_change(self, area, before: list[dict], timeout: float) -> list[dict]:
        old = [b["data"] for b in before]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.images(area)
            if len(now) == len(old) and now and now[0]["data"] != old[0]:
                self.wait_idle(timeout=timeout)
                return self.images(area)
            self.page.wait_for_timeout(250)
        raise AssertionError(f"the output image did not change within {timeout:.0f} s of moving the slider")


def drive_notebook(page, server, notebook: str, out: Path, report: dict | None = None) -> dict:
    """Open ``notebook`` in JupyterLab, run it, move the sliders; return what was measured (asserts inside).

    ``report`` (filled in as the test goes, so it is useful after a failure too) is returned.
    """
    out.mkdir(parents=True, exist_ok=True)
    lab = Lab(page, server)
    report = {} if report is None else report
    report["notebook"] = notebook
    t0 = time.monotonic()
    lab.open(server.url(f"lab/tree/{notebook}"))
    report["open_s"] = round(time.monotonic() - t0, 1)

    t0 = time.monotonic()
    lab.run_all()
    lab.wait_idle(timeout=RUN_ALL_TIMEOUT_S, settle=2.0)
    report["run_all_s"] = round(time.monotonic() - t0, 1)
    kernels = lab.server_kernels()
    assert [k["id"] for k in kernels] == [lab.kernel_id], (
        f"the kernel died or was replaced during Run All: {kernels}"
    )
    prompts = lab.code_prompts()
    page.screenshot(path=str(out / "page_after_run_all.png"), full_page=True)
    assert prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"not every cell ran: {prompts}"
    errors = lab.errors()
    assert not errors, "a cell shows an error after Run All:\n" + "\n---\n".join(errors)

    for name in SLIDERS:
        n = lab.slider(name).count()
        assert n == 1, f"expected one slider described {name!r}, found {n} (is the widget rendered?)"
    area = page.locator(".jp-OutputArea-output", has=lab.slider("exposure")).last
    area.scroll_into_view_if_needed()
    images = lab.images(area)
    assert images, "no <img> in the widget's output area: the image widget did not render"
    area.screenshot(path=str(out / "before.png"))
    first = _decode(images[0])
    report["before"] = {"readouts": {n: lab.readout(n) for n in SLIDERS}, "image": _stats(first)}
    report["images"] = [
        {"class": i["cls"], "size": [i["w"], i["h"]], "shown": [i["cw"], i["ch"]], "src": i["src"]}
        for i in images
    ]
    # The learner must see the pictures undistorted (shown aspect ratio = the PNG's); asserted at the end so
    # that a layout fault does not hide whether the sliders work.
    distorted = [
        f"image {i} of the widget: {it['w']}x{it['h']} PNG drawn as {it['cw']}x{it['ch']} CSS px"
        for i, it in enumerate(images)
        if it["cw"] <= 0 or it["ch"] <= 0 or abs((it["cw"] / it["ch"]) / (it["w"] / it["h"]) - 1) > 0.05
    ]

    # More exposure: the picture must get brighter.
    t0 = time.monotonic()
    lab.press("exposure", "ArrowRight", EXPOSURE_PRESSES)
    exposed = lab.wait_images_change(area, images, UPDATE_TIMEOUT_S)
    report["exposure_update_s"] = round(time.monotonic() - t0, 1)
    brighter = _decode(exposed[0])
    report["after_exposure"] = {"readout": lab.readout("exposure"), "image": _stats(brighter)}
    assert report["after_exposure"]["readout"] != report["before"]["readouts"]["exposure"], (
        "exposure did not move"
    )
    assert brighter.shape == first.shape, "the image changed size when only the exposure moved"
    assert brighter.mean() > first.mean() + 1 / 255, f"more exposure did not brighten the image: {report}"
    histograms_changed = [a["data"] != b["data"] for a, b in zip(images[1:], exposed[1:], strict=True)]
    report["histogram_changed"] = histograms_changed
    assert all(histograms_changed), f"the histogram image did not follow the exposure: {report['images']}"

    # More shot noise: neighbouring pixels must differ more.
    t0 = time.monotonic()
    lab.press("shot noise", "ArrowRight", NOISE_PRESSES)
    noisy_items = lab.wait_images_change(area, exposed, UPDATE_TIMEOUT_S)
    report["noise_update_s"] = round(time.monotonic() - t0, 1)
    noisy = _decode(noisy_items[0])
    report["after_noise"] = {"readout": lab.readout("shot noise"), "image": _stats(noisy)}
    assert report["after_noise"]["readout"] != report["before"]["readouts"]["shot noise"], (
        "shot noise did not move"
    )
    assert np.abs(noisy - brighter).mean() > 0.5 / 255, "more shot noise left the pixels as they were"
    assert _roughness(noisy) > _roughness(brighter), (
        f"more shot noise did not make the image noisier: {report}"
    )

    area.screenshot(path=str(out / "after.png"))
    page.screenshot(path=str(out / "page.png"), full_page=True)
    errors = lab.errors()
    assert not errors, "a cell shows an error after moving the sliders:\n" + "\n---\n".join(errors)
    assert not distorted, "the widget shows a picture distorted or not at all:\n" + "\n".join(distorted)
    return report


def test_notebook01_sliders_update_the_image_in_jupyterlab(jupyter_lab, chromium_launch):
    from playwright.sync_api import sync_playwright

    assert (REPO / NOTEBOOK).exists(), f"{NOTEBOOK} is missing"
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        if old.is_file():
            old.unlink()
    console: list[str] = []
    report: dict = {"console_errors": console}
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            try:
                drive_notebook(page, jupyter_lab, NOTEBOOK, OUT, report)
            except BaseException:
                page.screenshot(path=str(OUT / "failure.png"), full_page=True)
                raise
        finally:
            (OUT / "report.json").write_text(json.dumps(report, indent=2))
            (OUT / "console.log").write_text("\n".join(console) + "\n")
            (OUT / "jupyter-lab.log").write_text(jupyter_lab.log())
            browser.close()
    cells = json.loads((REPO / NOTEBOOK).read_text(encoding="utf-8"))["cells"]
    assert not any(c.get("outputs") for c in cells), f"the UI test saved outputs into {NOTEBOOK}: strip them"
    widget_errors = [c for c in console if "widget" in c.lower() or "jupyter-widgets" in c.lower()]
    assert not widget_errors, "the widget manager logged errors in the browser:\n" + "\n".join(widget_errors)

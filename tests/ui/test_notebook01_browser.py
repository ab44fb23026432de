"""Notebook 01 as a learner meets it: JupyterLab in a real (headless Debian) Chromium, sliders dragged and keyed.

The test opens ``notebooks/01_low_light_simulation.ipynb`` in JupyterLab, runs every cell from the Run menu,
waits for the kernel and finds the sliders by their descriptions. Then, with the mouse, it **drags** the
"exposure" handle to the right (button down on the handle, a move in several steps, button up): while the
button is held only the readout may move (the sliders update on release, ``continuous_update=False``, so a
drag does not queue a render per pixel), and after the release both pictures must change, judged from their
pixels: the photo gets brighter and the histogram image changes, its orange (simulated) part moving to
brighter code values. Last it moves "shot noise" with the arrow keys on the focused handle (one render per
step) and checks that the picture gets rougher (larger neighbouring-pixel differences). No cell may show a
traceback, no widget may fail to render (without the ipywidgets labextension the sliders are simply not
found), and the pictures must be shown undistorted. Results land in ``runs/ui/``: ``before.png``,
``during_drag.png`` (button still held), ``after_drag.png`` and ``after.png`` (the widget's output area),
``page.png`` and ``page_after_run_all.png`` (the whole page), ``failure.png`` on failure, ``report.json``
(timings, slider readouts, pixel statistics), ``console.log`` (browser errors) and ``jupyter-lab.log``.

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
# The exposure drag: CSS pixels to the right, in this many mouse-move events, and how long the button stays
# down after the move (long enough for a render to show up, were the slider to send values while dragging).
DRAG_PX = 60
DRAG_STEPS = 12
HOLD_S = 2.0
# Arrow-key presses on the shot-noise handle (one slider step, and one render, each).
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


def _orange_x(hist: np.ndarray) -> float:
    """Mean x position (0 = left, 1 = right) of the histogram image's orange pixels: the simulated picture's
    histogram (Matplotlib's tab:orange, drawn translucent; the normal photo's is grey, where R = G = B)."""
    mask = (hist[..., 0] - hist[..., 2]) > 0.15
    assert mask.sum() > 50, "no orange (simulated) histogram found in the histogram image"
    return float(np.nonzero(mask)[1].mean() / hist.shape[1])


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

    def drag(self, description: str, dx: float, steps: int, hold_s: float, area, out: Path) -> dict:
        """Drag the slider's handle ``dx`` CSS pixels with the mouse; before letting go, wait ``hold_s`` and
        record whether the pictures changed while the button was held (screenshot ``during_drag.png``)."""
        handle = self.slider(description).locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        assert box, f"the {description!r} handle has no box on the page"
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        before = [i["data"] for i in self.images(area)]
        readout = self.readout(description)
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x + dx, y, steps=steps)
        self.page.wait_for_timeout(int(hold_s * 1000))
        held = {
            "readout_before": readout,
            "readout_while_held": self.readout(description),
            "images_changed_while_held": [i["data"] for i in self.images(area)] != before,
            "kernel_while_held": self.kernel_status(),
        }
        area.screenshot(path=str(out / "during_drag.png"))
        self.page.mouse.up()
        return held

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

    # Drag the exposure handle to the right: nothing renders while the button is held; after the release the
    # picture gets brighter and the histogram follows.
    held = lab.drag("exposure", DRAG_PX, DRAG_STEPS, HOLD_S, area, out)
    report["drag"] = held
    t0 = time.monotonic()
    exposed = lab.wait_images_change(area, images, UPDATE_TIMEOUT_S)
    report["drag_update_s"] = round(time.monotonic() - t0, 1)
    area.screenshot(path=str(out / "after_drag.png"))
    brighter = _decode(exposed[0])
    report["after_drag"] = {"readout": lab.readout("exposure"), "image": _stats(brighter)}
    assert held["readout_while_held"] != held["readout_before"], f"the drag did not move the handle: {held}"
    assert not held["images_changed_while_held"], (
        f"the pictures changed while the button was still held: the slider updates during a drag: {held}"
    )
    assert report["after_drag"]["readout"] == held["readout_while_held"], (
        f"the value on release is not the one dragged to: {report}"
    )
    assert brighter.shape == first.shape, "the image changed size when only the exposure moved"
    assert brighter.mean() > first.mean() + 1 / 255, (
        f"dragging exposure up did not brighten the image: {report}"
    )
    assert len(exposed) == len(images) >= 2, f"expected the picture and its histogram: {report['images']}"
    hist_before, hist_after = _decode(images[1]), _decode(exposed[1])
    assert hist_before.shape == hist_after.shape, "the histogram image changed size"
    changed = float((np.abs(hist_after - hist_before).max(axis=2) > 0.1).mean())
    report["histogram"] = {
        "pixels_changed": changed,
        "orange_x_before": _orange_x(hist_before),
        "orange_x_after": _orange_x(hist_after),
    }
    assert changed > 0.01, f"the histogram image did not follow the exposure: {report['histogram']}"
    assert report["histogram"]["orange_x_after"] > report["histogram"]["orange_x_before"] + 0.01, (
        f"the simulated histogram did not move to brighter code values: {report['histogram']}"
    )

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

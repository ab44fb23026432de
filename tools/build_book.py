"""Build the course as a static site: execute every notebook, render it with its outputs to HTML.

``make book`` runs ``python tools/build_book.py --out build/book``. Each ``notebooks/NN_name.ipynb`` is executed
top to bottom in a fresh ``python3`` kernel (nbclient, working directory = the notebook's folder, widget state
saved so nbconvert can embed it), rendered with nbconvert's ``lab`` template to ``build/book/NN_name.html``
with previous / contents / next links, and listed on ``build/book/index.html`` in chapter order under the title
of its first Markdown heading. The executed notebooks are kept next to the pages (``notebooks/``) for download.
Nothing here is committed (``build/`` is git-ignored).

Mode: on a CPU the notebooks run in FAST mode (``LOWLIGHT_FAST=1``, see ``lowlight_matting.course``) unless
``--no-fast`` is given; with a CUDA GPU, or ``--no-fast``, they run at full size. ``--fast`` forces FAST.

A notebook that fails to execute is still rendered (up to the failing cell, with the error) and marked on the
index, and the build exits with status 1, naming every failed notebook.

Example::

    python tools/build_book.py --out build/book            # FAST on a CPU, full size on a GPU
    python tools/build_book.py --out build/book --no-fast  # full size everywhere (minutes per chapter on CPU)
"""

from __future__ import annotations

import argparse
import copy
import html
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHAPTER_RE = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")
HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)

NAV_CSS = """
<style>
.book-nav { display: flex; justify-content: space-between; gap: 1em; max-width: 1100px; margin: 0.5em auto;
  padding: 0.5em 1em; font: 14px/1.4 system-ui, sans-serif; border-bottom: 1px solid #ddd; }
.book-nav.bottom { border-bottom: none; border-top: 1px solid #ddd; }
.book-nav a { text-decoration: none; color: #1a5fb4; }
.book-nav span { flex: 1; }
.book-nav .home { text-align: center; }
.book-nav .next { text-align: right; }
.book-failed { color: #a51d2d; font-weight: bold; }
</style>
"""


@dataclass
class Chapter:
    """One notebook of the book: where it came from, its title, and how its execution went."""

    source: Path
    title: str = ""
    html_name: str = ""
    seconds: float = 0.0
    error: str | None = None
    nav: dict[str, Chapter | None] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


class BookBuildError(RuntimeError):
    """Raised by :func:`build` when one or more notebooks failed to execute; the message names them."""

    def __init__(self, failed: list[Chapter]):
        self.failed = failed
        lines = [f"  {c.source.name}: {c.error}" for c in failed]
        super().__init__(f"{len(failed)} notebook(s) failed to execute:\n" + "\n".join(lines))


def find_notebooks(folder: Path) -> list[Path]:
    """The chapters in ``folder``: files named ``NN_name.ipynb``, in numeric (= chapter) order."""
    return sorted(p for p in Path(folder).glob("*.ipynb") if CHAPTER_RE.match(p.name))


def notebook_title(nb, fallback: str) -> str:
    """Text of the first Markdown heading in ``nb`` (a NotebookNode or dict), else ``fallback``."""
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        m = HEADING_RE.search(source)
        if m:
            return re.sub(r"[*_`]", "", m.group(1)).strip()
    return fallback


def default_fast() -> bool:
    """FAST unless a CUDA GPU is available (``LOWLIGHT_FAST`` in the environment wins when set)."""
    env = os.environ.get("LOWLIGHT_FAST")
    if env is not None and env.strip():
        return env.strip().lower() in {"1", "true", "yes", "on"}
    try:
        import torch
    except ImportError:
        return True
    return not torch.cuda.is_available()


def kernel_env(fast: bool) -> dict[str, str]:
    """The environment of each notebook's kernel: FAST flag, offline hubs, inline plots."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # a non-inline backend (e.g. Agg from a test run) would hide every plot
    env["HF_HUB_OFFLINE"] = "1"
    if fast:
        env["LOWLIGHT_FAST"] = "1"
    else:
        env.pop("LOWLIGHT_FAST", None)
    return env


def execute(path: Path, fast: bool, timeout: int = 1800, kernel_name: str = "python3"):
    """Run ``path`` in a fresh kernel; return ``(executed notebook, error text or None, seconds)``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=True,
    )
    t0 = time.perf_counter()
    error = None
    try:
        client.execute(env=kernel_env(fast))
    except Exception as exc:  # CellExecutionError, CellTimeoutError, DeadKernelError, kernel start failures
        error = describe_failure(nb, exc)
    return nb, error, time.perf_counter() - t0


ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def describe_failure(nb, exc: BaseException) -> str:
    """One line: which cell failed (index and first source line) and with what, from its error output."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                src = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                return ANSI_RE.sub("", f"cell {i} ({src.strip()[:80]}): {out.ename}: {out.evalue}")[:500]
    lines = [ln for ln in ANSI_RE.sub("", str(exc)).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:500]


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Live widgets need the html-manager script from a CDN; when it has drawn them, hide the static snapshots.
SNAPSHOT_JS = """<script>(function () {
  var tries = 0, t = setInterval(function () {
    if (document.querySelector('.jupyter-widgets.widget-image') || ++tries > 40) {
      if (tries <= 40) document.querySelectorAll('.widget-snapshot').forEach(function (e) { e.style.display = 'none'; });
      clearInterval(t);
    }
  }, 250);
})();</script>"""


def widget_snapshot_html(state: dict, model_id: str) -> str | None:
    """Static HTML of a saved widget: its images (PNG/JPEG bytes from the widget state) and slider values.

    ``state`` is ``metadata.widgets[WIDGET_STATE]["state"]`` of an executed notebook; the tree under
    ``model_id`` is walked through ``children``. Returns None when the widget holds no image. This keeps the
    pictures of interactive widgets visible in the book when the widget scripts cannot be loaded (offline).
    """
    images, values, texts, seen = [], [], [], set()

    def walk(mid: str) -> None:
        mid = mid.removeprefix("IPY_MODEL_")
        if mid in seen or mid not in state:
            return
        seen.add(mid)
        model = state[mid]
        name, st = model.get("model_name", ""), model.get("state", {})
        if name == "ImageModel":
            buf = next((b for b in model.get("buffers", []) if b.get("path") == ["value"]), None)
            if buf and buf.get("encoding") == "base64":
                fmt = html.escape(st.get("format", "png"))
                images.append(f'<img src="data:image/{fmt};base64,{buf["data"]}" style="max-width:400px">')
        elif name.endswith("SliderModel") and "value" in st:
            values.append(f"{html.escape(str(st.get('description', '')))} = {html.escape(str(st['value']))}")
        elif name == "HTMLModel" and st.get("value"):
            texts.append(str(st["value"]))
        for child in st.get("children", []):
            walk(child)

    walk(model_id)
    if not images:
        return None
    caption = "Snapshot of the interactive widget as executed"
    if values:
        caption += ": " + ", ".join(values)
    return (
        '<div class="widget-snapshot"><div>'
        + "".join(images)
        + "</div>"
        + "".join(f"<div>{t}</div>" for t in texts)
        + f"<p><small>{caption}. Open the notebook in JupyterLab to move the sliders.</small></p></div>"
    )


def add_widget_snapshots(nb) -> int:
    """Add a static snapshot output after every widget output holding images (in place); return how many."""
    import nbformat

    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    added = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or not state:
            continue
        outputs = []
        for out in cell.get("outputs", []):
            outputs.append(out)
            view = out.get("data", {}).get(WIDGET_VIEW) if out.get("output_type") != "stream" else None
            snap = widget_snapshot_html(state, view["model_id"]) if view else None
            if snap:
                outputs.append(nbformat.v4.new_output("display_data", data={"text/html": snap}))
                added += 1
        cell.outputs = outputs
    return added


def _nav_html(chapter: Chapter, where: str) -> str:
    def link(c: Chapter | None, label: str) -> str:
        return f'<a href="{html.escape(c.html_name)}">{label} {html.escape(c.title)}</a>' if c else ""

    return (
        f'<nav class="book-nav {where}">'
        f'<span class="prev">{link(chapter.nav.get("prev"), "&larr;")}</span>'
        f'<span class="home"><a href="index.html">Contents</a></span>'
        f'<span class="next">{link(chapter.nav.get("next"), "&rarr;")}</span></nav>'
    )


def render(nb, chapter: Chapter) -> str:
    """The chapter's HTML page (nbconvert ``lab`` template, widget state embedded) with navigation bars.

    Widgets that hold images also get a static snapshot (see :func:`widget_snapshot_html`), hidden again
    once the live widgets have been drawn.
    """
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    snapshots = add_widget_snapshots(nb)
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": chapter.title}})
    if snapshots:
        body = body.replace("</head>", SNAPSHOT_JS + "</head>", 1)
    top, bottom = _nav_html(chapter, "top"), _nav_html(chapter, "bottom")
    if chapter.error:
        top += f'<p class="book-nav book-failed">This notebook failed to execute: {html.escape(chapter.error)}</p>'
    body = body.replace("</head>", NAV_CSS + "</head>", 1)
    body, n = re.subn(r"(<body[^>]*>)", lambda m: m.group(1) + top, body, count=1)
    if n == 0:
        body = top + body
    idx = body.rfind("</body>")
    return body[:idx] + bottom + body[idx:] if idx >= 0 else body + bottom


def render_index(chapters: list[Chapter], fast: bool, seconds: float) -> str:
    mode = "FAST mode (LOWLIGHT_FAST=1: small sizes, short runs)" if fast else "full size"
    items = []
    for c in chapters:
        status = f" <span class='book-failed'>(failed: {html.escape(c.error)})</span>" if c.error else ""
        items.append(
            f'<li><a href="{html.escape(c.html_name)}">{html.escape(c.title)}</a> '
            f"<small>&mdash; {html.escape(c.source.name)}, executed in {c.seconds:.0f} s, "
            f'<a href="notebooks/{html.escape(c.source.name)}">executed notebook</a></small>{status}</li>'
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Low-light matting: the course</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em}"
        "ul.chapters{list-style:none;padding:0}li{margin:.6em 0}small{color:#555}.book-failed{color:#a51d2d;font-weight:bold}</style>"
        "</head><body>\n<h1>Low-light matting: the course</h1>\n"
        f"<p>Every chapter below was executed top to bottom in {mode}; the pages show its real outputs. "
        f"Built in {seconds:.0f} s on {html.escape(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}.</p>\n"
        "<ul class='chapters'>\n" + "\n".join(items) + "\n</ul>\n</body></html>\n"
    )


def build(
    notebooks: list[Path],
    out: Path,
    fast: bool,
    timeout: int = 1800,
    kernel_name: str = "python3",
    log=print,
) -> list[Chapter]:
    """Execute and render ``notebooks`` (in the given order) into ``out``; raise BookBuildError on failures."""
    import nbformat

    if not notebooks:
        raise ValueError("build: no notebooks given")
    out = Path(out)
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.html"), *(out / "notebooks").glob("*.ipynb")]:
        stale.unlink()
    chapters = []
    for path in notebooks:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        chapters.append(
            Chapter(source=path, title=notebook_title(nb, path.stem.replace("_", " ")), html_name="")
        )
        chapters[-1].html_name = path.with_suffix(".html").name
    for i, c in enumerate(chapters):
        c.nav = {
            "prev": chapters[i - 1] if i > 0 else None,
            "next": chapters[i + 1] if i + 1 < len(chapters) else None,
        }

    t_start = time.perf_counter()
    for c in chapters:
        log(f"book: executing {c.source.name} ({'FAST' if fast else 'full size'}) ...")
        nb, c.error, c.seconds = execute(c.source, fast=fast, timeout=timeout, kernel_name=kernel_name)
        log(f"book:   {'FAILED ' + c.error if c.error else 'ok'} in {c.seconds:.1f} s")
        nbformat.write(nb, out / "notebooks" / c.source.name)
        (out / c.html_name).write_text(render(nb, c), encoding="utf-8")
    (out / "index.html").write_text(
        render_index(chapters, fast, time.perf_counter() - t_start), encoding="utf-8"
    )
    log(f"book: wrote {out / 'index.html'} with {len(chapters)} chapter(s)")
    failed = [c for c in chapters if not c.ok]
    if failed:
        raise BookBuildError(failed)
    return chapters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to build (default: notebooks/NN_*.ipynb)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "build" / "book", help="output folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fast", dest="fast", action="store_true", default=None, help="force FAST mode")
    mode.add_argument("--no-fast", dest="fast", action="store_false", help="full size even on a CPU")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    parser.add_argument("--kernel", default="python3", help="kernel name (default python3)")
    args = parser.parse_args(argv)

    notebooks = args.notebooks or find_notebooks(REPO / "notebooks")
    if not notebooks:
        parser.error("no notebooks found")
    fast = default_fast() if args.fast is None else args.fast
    try:
        build(notebooks, args.out, fast=fast, timeout=args.timeout, kernel_name=args.kernel)
    except BookBuildError as exc:
        print(f"book: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""tools/build_book.py: chapter order, titles, prev/next navigation, the index, widget state and failures.

Runs the builder on tiny throwaway notebooks written into tmp_path (each executes in a real kernel in ~1 s).
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def book():
    spec = importlib.util.spec_from_file_location("build_book", REPO / "tools" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_book"] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("build_book", None)


def _write(path: Path, title_md: str, *codes: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(title_md)] + [nbformat.v4.new_code_cell(c) for c in codes]
    nbformat.write(nb, path)
    return path


def _links(html_text: str) -> list[str]:
    return re.findall(r'href="([^"#]+\.html)"', html_text)


def test_find_notebooks_keeps_numbered_chapters_in_order(tmp_path, book):
    for name in [
        "10_late.ipynb",
        "02_early.ipynb",
        "00_start.ipynb",
        "notes.ipynb",
        "3_bad.ipynb",
        "02_x.txt",
    ]:
        (tmp_path / name).write_text("{}")
    assert [p.name for p in book.find_notebooks(tmp_path)] == [
        "00_start.ipynb",
        "02_early.ipynb",
        "10_late.ipynb",
    ]


def test_title_is_the_first_markdown_heading(book):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("# not a title: a code comment"),
        nbformat.v4.new_markdown_cell("Some text first\n\n## 3. Noise, *really* ##\n\n# Later heading"),
    ]
    assert book.notebook_title(nb, "fallback") == "3. Noise, really"
    nb.cells = [nbformat.v4.new_markdown_cell("no heading here")]
    assert book.notebook_title(nb, "fallback") == "fallback"


def test_build_executes_renders_and_links_every_chapter_in_order(tmp_path, book):
    src = tmp_path / "nb"
    src.mkdir()
    first = _write(
        src / "00_intro.ipynb",
        "# Intro to *low light*\n\nLearning goals",
        "import os\nprint('fast is', os.environ.get('LOWLIGHT_FAST'), 'cwd', os.path.basename(os.getcwd()))",
    )
    second = _write(
        src / "01_sliders.ipynb",
        "## Sliders chapter",
        "import io\nimport ipywidgets\nfrom PIL import Image\nbuf = io.BytesIO()\n"
        "Image.new('RGB', (8, 8), (200, 30, 30)).save(buf, format='PNG')\n"
        "ipywidgets.VBox([ipywidgets.Image(value=buf.getvalue(), format='png'),"
        " ipywidgets.IntSlider(value=7, description='knob')])",
    )
    out = tmp_path / "book"
    (out).mkdir()
    (out / "99_stale.html").write_text("old chapter")
    logs = []
    chapters = book.build([first, second], out, fast=True, log=logs.append)

    assert [c.title for c in chapters] == ["Intro to low light", "Sliders chapter"]
    assert all(c.ok for c in chapters)
    assert not (out / "99_stale.html").exists(), "pages of chapters that no longer exist must go"
    index = (out / "index.html").read_text()
    assert _links(index) == ["00_intro.html", "01_sliders.html"], "index must link every chapter, in order"
    assert "Intro to low light" in index and "Sliders chapter" in index and "FAST" in index

    intro = (out / "00_intro.html").read_text()
    sliders = (out / "01_sliders.html").read_text()
    # The page shows real outputs: the kernel saw FAST mode and ran in the notebook's folder.
    assert "fast is 1 cwd nb" in intro
    # Navigation: contents on both; next on the first page only, previous on the second only.
    assert "index.html" in _links(intro) and "index.html" in _links(sliders)
    assert "01_sliders.html" in _links(intro) and "00_intro.html" not in _links(intro)
    assert "00_intro.html" in _links(sliders) and "01_sliders.html" not in _links(sliders)
    assert "<title>Intro to low light</title>" in intro

    # Widget state is saved in the executed notebook and embedded in the page.
    executed = json.loads((out / "notebooks" / "01_sliders.ipynb").read_text())
    state = executed["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(s["model_name"] == "IntSliderModel" and s["state"]["value"] == 7 for s in state.values())
    assert "application/vnd.jupyter.widget-state+json" in sliders
    # ... and a static snapshot keeps the widget's picture visible without the widget scripts (offline).
    snapshot = sliders[sliders.index('class="widget-snapshot"') :]
    assert "data:image/png;base64," in snapshot and "knob = 7" in snapshot
    assert "widget-snapshot" not in intro
    # The sources stay as they were: nothing executed is written back.
    assert all(
        not c.get("outputs") for c in json.loads(first.read_text())["cells"] if c["cell_type"] == "code"
    )


def test_a_failing_notebook_fails_the_build_and_is_named(tmp_path, book, capsys):
    good = _write(tmp_path / "00_fine.ipynb", "# Fine", "x = 1")
    bad = _write(
        tmp_path / "01_broken.ipynb", "# Broken", "raise ValueError('boom in chapter')", "print('never')"
    )
    out = tmp_path / "book"
    assert book.main([str(good), str(bad), "--out", str(out), "--fast"]) == 1
    err = capsys.readouterr().err
    assert "01_broken.ipynb" in err and "00_fine.ipynb" not in err
    # ... with the failing cell and the error, readable (no terminal colour codes).
    assert "cell 1 (raise ValueError('boom in chapter')): ValueError: boom in chapter" in err
    assert "\x1b[" not in err
    # The page still exists, shows the error, and the index marks the chapter as failed.
    page = (out / "01_broken.html").read_text()
    assert "boom in chapter" in page and "failed to execute" in page
    assert "failed" in (out / "index.html").read_text()
    assert _links((out / "index.html").read_text()) == ["00_fine.html", "01_broken.html"]

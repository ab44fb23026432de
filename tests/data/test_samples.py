"""data_samples/: the committed samples match the SHA-256 list in their README, stay within the size limits,
load through load_samples, are hard matting problems, and still come from the current generator."""

import hashlib
import re

import numpy as np
import pytest

from lowlight_matting.data import SyntheticMattingDataset, alpha_statistics, load_samples, samples_root
from lowlight_matting.io import read_alpha, read_image


@pytest.fixture(scope="module")
def root():
    return samples_root()


def _listed(root):
    text = (root / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```sha256\n(.*?)^```", text, re.S | re.M)
    assert block, "data_samples/README.md needs a ```sha256 block"
    return dict(
        (path, digest)
        for digest, path in (line.split() for line in block.group(1).splitlines() if line.strip())
    )


def test_sha256_list_matches_the_files(root):
    listed = _listed(root)
    files = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != "README.md"
    )
    assert sorted(listed) == files, "README checksum list and files differ"
    for rel, digest in listed.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, f"{rel}: checksum changed"


def test_readme_states_provenance_and_licences(root, monkeypatch):
    """The README's table names, for every sample, the photograph behind it (found by regenerating it) and
    that photograph's licence; procedural backgrounds are marked as the project's own."""
    import lowlight_matting.data.backgrounds as backgrounds
    from lowlight_matting.data import SyntheticMattingDataset

    text = (root / "README.md").read_text(encoding="utf-8")
    assert "lowlight-matting make-data data_samples/test --n 10 --size 384 --seed 2024" in text
    used: list[str] = []
    load = backgrounds.load_photo
    monkeypatch.setattr(backgrounds, "load_photo", lambda name: used.append(name) or load(name))
    ds = SyntheticMattingDataset(10, size=384, seed=2024)
    for i in range(10):
        used.clear()
        ds[i]
        row = next(ln for ln in text.splitlines() if ln.startswith(f"| {i:05d} |"))
        if used:
            assert f"skimage.data.{used[0]}" in row, row
            licence = backgrounds.PHOTOS[used[0]].split(" (")[0]
            assert licence in row, (row, licence)
        else:
            assert "procedural" in row, row


def test_size_limits(root):
    files = [p for p in root.rglob("*.png")]
    assert 16 <= len(files) <= 24  # 8-12 samples, image + alpha each
    assert sum(p.stat().st_size for p in files) <= 5 * 1024 * 1024
    for p in files:
        img = read_image(p)
        assert max(img.shape[:2]) <= 512, p


def test_load_samples(root):
    items = load_samples("test")
    assert 8 <= len(items) <= 12
    assert [it["name"] for it in items] == sorted(it["name"] for it in items)
    for it in items:
        assert it["image"].dtype == np.uint8 and it["image"].shape[2] == 3
        assert it["alpha"].dtype == np.float32 and it["alpha"].shape == it["image"].shape[:2]
    assert len(load_samples("test", n=3)) == 3
    with pytest.raises(FileNotFoundError, match="split"):
        load_samples("nope")


def test_samples_are_hard_matting_problems():
    stats = [alpha_statistics(it["alpha"]) for it in load_samples("test")]
    assert np.mean([s["fractional"] for s in stats]) > 0.08
    assert sum(s["subpixel"] > 0.002 for s in stats) >= len(stats) // 2  # hair/fur in at least half


def test_samples_come_from_the_current_generator(root):
    """Sample 00000 regenerated today matches the committed PNGs (allowing library rounding differences)."""
    ref = SyntheticMattingDataset(10, size=384, seed=2024)[0]
    image = read_image(root / "test" / "image" / "00000.png")
    alpha = read_alpha(root / "test" / "alpha" / "00000.png")
    assert np.mean(np.abs(alpha - ref["alpha"]) > 2 / 255) < 0.001, "regenerate data_samples (see its README)"
    assert np.mean(np.abs(image.astype(int) - ref["image"]) > 2) < 0.001, (
        "regenerate data_samples (see README)"
    )


def test_samples_root_honours_the_environment(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text("x")
    monkeypatch.setenv("LOWLIGHT_SAMPLES", str(tmp_path))
    assert samples_root() == tmp_path

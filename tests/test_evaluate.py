"""Evaluation: records agree with the metrics, summaries and tables compute the right means and changes,
the one formatter, bootstrap intervals, brightness bins and the package's meaning of dark, hardest images,
zoom boxes, files and figures."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from lowlight_matting import evaluation as E
from lowlight_matting.io import read_image, write_image
from lowlight_matting.metrics import compute_metrics, make_trimap


class Const(nn.Module):
    """Predicts the same alpha everywhere."""

    def __init__(self, value):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x):
        return self.value.clamp(0, 1).expand(x.shape[0], 1, *x.shape[2:])


class Brightness(nn.Module):
    """Alpha = grey level of the input: a 'model' that gets worse in the dark."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x.mean(1, keepdim=True) + 0 * self.dummy


def make_items(n=3, size=24, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        alpha = np.zeros((size, size), np.float32)
        alpha[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
        alpha[size // 4 : 3 * size // 4, 3 * size // 4] = 0.5
        level = [250, 60, 5][i % 3]  # bright, dim, pitch dark inputs
        image = np.clip(rng.normal(level, 2, (size, size, 3)), 0, 255).astype(np.uint8)
        items.append({"image": image, "alpha": alpha, "name": f"img{i}"})
    return items


def test_records_match_compute_metrics_and_carry_context():
    items = make_items()
    models = {"zeros": Const(0.0), "half": Const(0.5)}
    recs = E.evaluate_models(models, items, "toy", device="cpu", progress=False, batch_size=2)
    assert len(recs) == 6
    assert [(r["model"], r["index"]) for r in recs[:4]] == [
        ("zeros", 0),
        ("zeros", 1),
        ("zeros", 2),
        ("half", 0),
    ]
    for r in recs:
        it = items[r["index"]]
        pred = np.full(it["alpha"].shape, 0.0 if r["model"] == "zeros" else 0.5)
        want = compute_metrics(pred, it["alpha"])
        for k in E.METRICS:
            assert r[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9)
        assert r["name"] == it["name"] and r["test_set"] == "toy" and r["region"] == "whole"
        assert r["unknown_fraction"] == 1.0
    # brightness is the mean linear luminance of the input: the three images are far apart
    b = sorted({r["brightness"] for r in recs})
    assert b[0] < 0.01 < b[1] < 0.1 < b[2]


def test_trimap_options():
    items = make_items(2)
    auto = E.evaluate_models({"half": Const(0.5)}, items, trimap="auto", progress=False)
    assert all(r["region"] == "unknown" and 0 < r["unknown_fraction"] < 1 for r in auto)
    k = E.auto_trimap_kernel(24)
    want = compute_metrics(
        np.full((24, 24), 0.5), items[0]["alpha"], make_trimap(items[0]["alpha"], kernel_size=k)
    )
    assert auto[0]["sad"] == pytest.approx(want["sad"], rel=1e-6)
    given = [{**it, "trimap": np.full((24, 24), 128, np.uint8)} for it in items]
    whole = E.evaluate_models({"half": Const(0.5)}, items, progress=False)
    via_item = E.evaluate_models({"half": Const(0.5)}, given, trimap="item", progress=False)
    assert [r["sad"] for r in via_item] == pytest.approx([r["sad"] for r in whole])
    with pytest.raises(FileNotFoundError, match="trimap"):
        E.evaluate_models({"half": Const(0.5)}, items, trimap="/no/such/folder", progress=False)


def test_trimap_folder_is_matched_by_name(tmp_path):
    items = make_items(2)
    for it in items:
        write_image(tmp_path / f"{it['name']}.png", make_trimap(it["alpha"], kernel_size=3))
    recs = E.evaluate_models({"half": Const(0.5)}, items, trimap=tmp_path, progress=False)
    want = compute_metrics(
        np.full((24, 24), 0.5), items[1]["alpha"], make_trimap(items[1]["alpha"], kernel_size=3)
    )
    assert recs[1]["sad"] == pytest.approx(want["sad"], rel=1e-6)
    (tmp_path / "img1.png").unlink()
    with pytest.raises(FileNotFoundError, match="img1"):
        E.evaluate_models({"half": Const(0.5)}, items, trimap=tmp_path, progress=False)


def test_summary_table_and_relative_change():
    recs = [
        {"model": "a", "test_set": "s", "index": 0, "mse": 0.04, "sad": 40.0, "grad": 20.0, "conn": 30.0},
        {"model": "a", "test_set": "s", "index": 1, "mse": 0.02, "sad": 60.0, "grad": 40.0, "conn": 10.0},
        {"model": "b", "test_set": "s", "index": 0, "mse": 0.01, "sad": 25.0, "grad": 15.0, "conn": 20.0},
        {"model": "b", "test_set": "s", "index": 1, "mse": 0.02, "sad": 25.0, "grad": 15.0, "conn": 20.0},
    ]
    s = E.summarize(recs)
    assert s["s"]["a"] == {"mse": pytest.approx(0.03), "sad": 50.0, "grad": 30.0, "conn": 20.0, "n": 2}
    table = E.comparison_table(s["s"])
    lines = table.splitlines()
    assert lines[0] == "| model | MSE ↓ | SAD ↓ | Grad ↓ | Conn ↓ |"
    assert lines[2].startswith("| a | 0.0300 | 50.00 | 30.00 | 20.00")
    assert lines[-1] == "| relative change, b vs a | -50.0% | -50.0% | -50.0% | 0.0% |"
    scaled = E.comparison_table(s["s"], baseline="b", mse_scale=1000)
    assert "MSE ×1000 ↓" in scaled and "| b | 15.00 |" in scaled and "relative change, a vs b" in scaled
    assert E.relative_change(0.032, 0.018) == pytest.approx(-0.4375)
    assert np.isnan(E.relative_change(0, 1)) and E.format_change(float("nan")) == "n/a"
    with pytest.raises(KeyError, match="baseline"):
        E.comparison_table(s["s"], baseline="zzz")
    assert "×1000" in E.conventions("whole", 1000) and "whole image" in E.conventions("whole")
    assert "unknown region" in E.conventions("unknown", 1, "auto")


def test_brightness_bins_and_table():
    items = make_items(3)
    recs = E.evaluate_models({"zeros": Const(0.0), "grey": Brightness()}, items, progress=False)
    rows = E.brightness_bins(recs)
    assert [r["n"] for r in rows] == [1, 1, 1]
    dark, bright = rows[0], rows[-1]
    # the brightness 'model' predicts ~0 on the pitch-dark input: as bad as predicting zeros there
    assert dark["grey"]["sad"] == pytest.approx(dark["zeros"]["sad"], rel=0.05)
    assert bright["grey"]["sad"] != pytest.approx(bright["zeros"]["sad"], rel=0.05)
    assert [r["dark"] for r in rows] == ["yes", "yes", "no"]  # bins below / above color.DARK_THRESHOLD
    table = E.brightness_table(recs)
    assert table.count("\n") == 1 + len(rows) and "SAD change (grey vs zeros)" in table
    assert "| dark (< 7.32 %) |" in table and f"| {rows[-1]['bin']} | no | 1 |" in table


def test_brightness_bins_split_where_the_package_says_dark():
    from lowlight_matting.color import DARK_THRESHOLD, is_dark, mean_luminance

    assert DARK_THRESHOLD in E.BRIGHTNESS_EDGES
    recs = []
    for i, v in enumerate((3, 60, 76, 77, 200)):  # sRGB 76/255 is just darker than 0.3, 77/255 just brighter
        img = np.full((4, 4, 3), v, np.uint8)
        recs.append({"model": "m", "test_set": "s", "index": i, "brightness": mean_luminance(img), "sad": v})
        recs[-1]["is_dark"] = is_dark(img)
    for lo, hi, mask in E.bin_by_brightness([r["brightness"] for r in recs]):
        for r in (r for r, m in zip(recs, mask, strict=True) if m):
            assert E.is_dark_bin(lo, hi) == ("yes" if r["is_dark"] else "no"), r
    rows = E.brightness_bins(recs, metrics=("sad",))
    assert [(row["bin"], row["dark"], row["n"]) for row in rows] == [
        ("0–1 %", "yes", 1),
        ("3–7.32 %", "yes", 2),
        ("7.32–100 %", "no", 2),
    ]
    assert rows[1]["m"]["sad"] == pytest.approx((60 + 76) / 2)
    assert E.is_dark_bin(0.05, 0.1) == "partly"  # custom edges that straddle the threshold say so
    with pytest.raises(ValueError, match="edges"):
        E.bin_by_brightness([0.5], edges=(0.0, 0.5, 0.2))


def test_hardest_and_zoom_box():
    recs = [
        {"model": m, "test_set": "s", "index": i, "sad": s}
        for m in ("a", "b")
        for i, s in enumerate([1.0, 5.0, 3.0, 0.5])
    ]
    assert E.hardest(recs, 2) == [1, 2]
    assert E.hardest(recs, 10, test_set="other") == []
    alpha = np.zeros((100, 120), np.float32)
    alpha[60:90, 80:110] = np.linspace(0, 1, 30)[None, :]  # the only soft region
    y0, y1, x0, x1 = E.zoom_box(alpha, fraction=0.4)
    assert y1 - y0 == x1 - x0 == 40
    assert 0 <= y0 and y1 <= 100 and 0 <= x0 and x1 <= 120
    assert y0 <= 60 and y1 >= 90 - 10 and x0 <= 85 and x1 >= 105


def test_csv_round_trip(tmp_path):
    recs = E.evaluate_models({"half": Const(0.5)}, make_items(2), "toy", progress=False)
    path = E.write_csv(recs, tmp_path / "m.csv")
    back = E.read_csv(path)
    assert len(back) == 2
    for a, b in zip(recs, back, strict=True):
        for k in E.CSV_FIELDS:
            assert b[k] == a[k], k  # floats are written with repr: exact


def test_make_test_sets_synthetic_lowlight_is_the_same_images_darker():
    sets = E.make_test_sets("synthetic", lowlight=True, n=2, size=32, seed=3)
    assert list(sets) == ["normal", "lowlight"]
    normal, low = sets["normal"], sets["lowlight"]
    for i in range(2):
        np.testing.assert_array_equal(normal[i]["alpha"], low[i]["alpha"])
        np.testing.assert_array_equal(normal[i]["image"], low[i]["normal"])
        assert low[i]["image"].mean() < normal[i]["image"].mean()
    again = E.make_test_sets("synthetic", lowlight=True, n=2, size=32, seed=3, normal=False)
    assert list(again) == ["lowlight"]
    np.testing.assert_array_equal(again["lowlight"][1]["image"], low[1]["image"])
    with pytest.raises(FileNotFoundError, match="--data"):
        E.make_test_sets("/no/such/dir")


def test_make_test_sets_from_a_folder(tmp_path):
    root = tmp_path / "mydata"
    for it in make_items(3):
        write_image(root / "image" / f"{it['name']}.png", it["image"])
        write_image(root / "alpha" / f"{it['name']}.png", it["alpha"])
    sets = E.make_test_sets(root, n=2)
    assert list(sets) == ["mydata"] and len(sets["mydata"]) == 2
    recs = E.evaluate_models({"half": Const(0.5)}, sets["mydata"], progress=False)
    assert [r["name"] for r in recs] == ["img0", "img1"]


def test_evaluate_checkpoints_writes_everything(tmp_path):
    items = make_items(3)
    sets = {"toy": items, "toy2": items[:2]}
    out = tmp_path / "ev"
    res = E.evaluate_checkpoints(
        {"zeros": Const(0.0), "grey": Brightness()},
        sets,
        out_dir=out,
        device="cpu",
        progress=False,
        n_figure=2,
    )
    assert res["models"] == ["zeros", "grey"] and res["baseline"] == "zeros"
    assert len(res["records"]) == 2 * 5
    assert set(res["tables"]) == {"toy", "toy2"} and "relative change, grey vs zeros" in res["tables"]["toy"]
    for f in E.OUTPUT_FILES:
        assert (out / f).is_file(), f
    summary = (out / "summary.md").read_text()
    assert (
        res["tables"]["toy"] in summary and "whole image" in summary and "figures/hardest_toy.png" in summary
    )
    data = json.loads((out / "results.json").read_text())
    assert data["summary"]["toy"]["zeros"]["n"] == 3 and len(data["records"]) == 10
    assert [f.split("/")[-1] for f in res["files"]["figures"]] == [
        "hardest_toy.png",
        "hardest_toy2.png",
        "brightness_sad.png",
    ]
    # 2 hardest images × (full + zoom) rows, input / truth / 2 alphas / 2 error maps, at 110 dpi
    assert read_image(out / "figures" / "hardest_toy.png").shape == (round((1.85 * 4 + 0.4) * 110), 1188, 3)
    assert len(E.read_csv(out / "metrics.csv")) == 10
    with pytest.raises(FileExistsError, match="overwrite"):
        E.evaluate_checkpoints({"zeros": Const(0.0)}, sets, out_dir=out, progress=False)
    E.evaluate_checkpoints(
        {"zeros": Const(0.0)}, sets, out_dir=out, progress=False, overwrite=True, n_figure=0
    )
    assert len(E.read_csv(out / "metrics.csv")) == 5


def test_plot_hardest_returns_a_figure_with_zoom_rows():
    items = make_items(2)
    rows = [{"image": it["image"], "alpha": it["alpha"], "preds": {"a": it["alpha"] * 0.5}} for it in items]
    fig = E.plot_hardest(rows, None)
    assert len(fig.axes) == 2 * 2 * 4  # (full + zoom) × images × (input, gt, alpha, error)
    with pytest.raises(ValueError):
        E.plot_hardest([], None)


def test_names_pass_through_the_low_light_wrapper():
    from lowlight_matting.data import LowLightPairs
    from lowlight_matting.simulate import LowLightSimulator

    items = make_items(2)
    pairs = LowLightPairs(items, simulator=LowLightSimulator(seed=0), seed=0)
    recs = E.evaluate_models({"half": Const(0.5)}, pairs, "dark", progress=False)
    assert [r["name"] for r in recs] == ["img0", "img1"]


def test_bootstrap_interval_of_a_relative_change():
    from lowlight_matting.evaluation import bootstrap_relative_change

    # every image halves its error: every resample gives exactly -50 %
    lo, hi = bootstrap_relative_change([2.0, 4.0, 6.0, 1.0], [1.0, 2.0, 3.0, 0.5])
    assert lo == pytest.approx(-0.5) and hi == pytest.approx(-0.5)
    g = np.random.default_rng(0)
    before = g.gamma(2.0, 1.0, 200)
    after = before * (0.8 + 0.1 * g.standard_normal(200))  # about -20 %, noisy per image
    lo, hi = bootstrap_relative_change(before, after, seed=3)
    point = (after.mean() - before.mean()) / before.mean()
    assert lo < point < hi and hi - lo < 0.1
    assert (lo, hi) == bootstrap_relative_change(before, after, seed=3)  # seeded: repeatable
    lo99, hi99 = bootstrap_relative_change(before, after, seed=3, level=0.99)
    assert lo99 <= lo and hi <= hi99
    # pairing: images that differ wildly in difficulty, each improved by 10 % -> exactly -10 %, no spread
    wild = g.gamma(0.5, 10.0, 50) + 1
    assert bootstrap_relative_change(wild, 0.9 * wild) == pytest.approx((-0.1, -0.1))
    with pytest.raises(ValueError, match="same length"):
        bootstrap_relative_change([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2 images"):
        bootstrap_relative_change([1.0], [1.0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_relative_change([1.0, 2.0], [1.0, 2.0], level=1.5)
    # a resample whose baseline mean is 0 has no relative change: the interval is undefined, not a number
    lo, hi = bootstrap_relative_change([0.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    assert np.isnan(lo) and np.isnan(hi)


def test_one_formatter_for_changes_and_metrics():
    assert E.format_change(-0.4375) == "-44%" and E.format_change(-0.4375, 1) == "-43.8%"
    assert E.format_change(0.021) == "+2%" and E.format_change(0.0004, 1) == "0.0%"
    assert E.format_change(None) == "n/a" and E.format_change(float("inf")) == "n/a"
    assert E.format_metric("mse", 0.0321) == "0.0321" and E.format_metric("mse", 0.0321, 1000) == "32.10"
    assert E.format_metric("sad", 48.7) == "48.70" and E.format_metric("grad", None) == "n/a"
    table = E.metrics_table(
        [("a", {"mse": 0.02, "sad": 4.0, "grad": 2.0, "conn": 3.0})],
        [("change", {"mse": -0.5, "sad": 0.1, "grad": 0.0, "conn": float("nan")})],
    )
    assert table.splitlines()[-1] == "| change | -50% | +10% | 0% | n/a |"


def test_the_demo_report_formats_with_the_evaluation_formatter():
    from lowlight_matting.experiment import report

    for name in ("format_change", "format_metric", "metrics_table", "relative_change", "ARTICLE", "METRICS"):
        assert getattr(report, name) is getattr(E, name), name
    assert report.comparison_rows is E.relative_changes

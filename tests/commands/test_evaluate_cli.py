"""``lowlight-matting evaluate``: two checkpoints → the article-shaped table, per-image CSV and figures;
every model format ``matte`` takes (.pt, .safetensors, .onnx, shipped names); one-line usage errors with
status 2."""

import pytest
import torch

from lowlight_matting.checkpoint import save_checkpoint
from lowlight_matting.cli import main
from lowlight_matting.evaluation import read_csv
from lowlight_matting.io import read_image, write_image
from lowlight_matting.metrics import make_trimap
from lowlight_matting.models import build_model


def make_checkpoint(path, seed):
    torch.manual_seed(seed)
    m = build_model("test_convnext")
    save_checkpoint(path, {"model": m.state_dict(), "model_config": m.config})
    return path


def test_evaluate_two_checkpoints_writes_table_csv_and_figures(tmp_path, capsys):
    a = make_checkpoint(tmp_path / "baseline.pt", 0)
    b = make_checkpoint(tmp_path / "tuned.pt", 1)
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--checkpoint",
        str(a),
        "--checkpoint",
        f"ft={b}",
        "--data",
        "synthetic",
        "--lowlight",
    ]
    args += ["--n", "2", "--size", "40", "--seed", "1", "--figures", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "relative change, ft vs baseline" in printed
    summary = (out / "summary.md").read_text()
    for title in (
        "## Test set: normal (2 images)",
        "## Test set: lowlight (2 images)",
        "| model | MSE ↓ | SAD ↓",
    ):
        assert title in summary
    assert "| baseline |" in summary and "| ft |" in summary and "whole image" in summary
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 2 * 2 * 2  # models × test sets × images
    assert {r["model"] for r in rows} == {"baseline", "ft"} and {r["test_set"] for r in rows} == {
        "normal",
        "lowlight",
    }
    assert all(r["sad"] > 0 and r["region"] == "whole" for r in rows)
    # the low-light inputs are the same images, darker
    bright = {(r["index"]): r["brightness"] for r in rows if r["test_set"] == "normal"}
    assert all(r["brightness"] < bright[r["index"]] for r in rows if r["test_set"] == "lowlight")
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "brightness_sad.png",
        "hardest_lowlight.png",
        "hardest_normal.png",
    ]
    # 2 hardest images × (full + zoom) rows; input, truth, 2 alphas, 2 error maps; 110 dpi
    assert read_image(out / "figures" / "hardest_normal.png").shape == (858, 1188, 3)
    assert (out / "brightness.md").read_text().startswith("| input brightness")
    # existing results are kept unless --overwrite
    assert main(args) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--trimap", "auto", "--figures", "0", "--mse-scale", "1000"]) == 0
    assert "MSE ×1000" in (out / "summary.md").read_text()
    assert all(r["region"] == "unknown" for r in read_csv(out / "metrics.csv"))


def test_evaluate_folder_with_trimap_folder(tmp_path):
    from lowlight_matting.data import SyntheticMattingDataset

    root = tmp_path / "testset"
    ds = SyntheticMattingDataset(2, size=36, seed=5)
    for i in range(2):
        it = ds[i]
        write_image(root / "image" / f"p{i}.png", it["image"])
        write_image(root / "alpha" / f"p{i}.png", it["alpha"])
        write_image(tmp_path / "tri" / f"p{i}.png", make_trimap(it["alpha"], kernel_size=3))
    ckpt = make_checkpoint(tmp_path / "m.pt", 0)
    out = tmp_path / "ev"
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--trimap", str(tmp_path / "tri")]
    assert main([*args, "--out", str(out), "--quiet", "--figures", "1"]) == 0
    rows = read_csv(out / "metrics.csv")
    assert [r["name"] for r in rows] == ["p0", "p1"] and all(r["region"] == "unknown" for r in rows)
    assert (out / "figures" / "hardest_testset.png").is_file()


def test_evaluate_layout_reads_am2k_train_as_photos(tmp_path):
    """AM-2k's train/ holds fg/ beside original/ + mask/: auto composites the foregrounds over new
    backgrounds, --layout image_alpha scores the photos themselves."""
    from lowlight_matting.data import SyntheticMattingDataset

    root = tmp_path / "AM-2k" / "train"
    ds = SyntheticMattingDataset(2, size=36, seed=5)
    for i in range(2):
        it = ds[i]
        write_image(root / "original" / f"m{i}.png", it["image"])
        write_image(root / "mask" / f"m{i}.png", it["alpha"])
        write_image(root / "fg" / f"m{i}.png", it["fg"])
    ckpt = make_checkpoint(tmp_path / "m.pt", 0)
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--figures", "0", "--quiet"]
    brightness = {}
    for layout in ("auto", "image_alpha"):
        assert main([*args, "--layout", layout, "--out", str(tmp_path / layout)]) == 0
        brightness[layout] = [r["brightness"] for r in read_csv(tmp_path / layout / "metrics.csv")]
    from lowlight_matting.color import mean_luminance

    assert brightness["image_alpha"] == [pytest.approx(mean_luminance(ds[i]["image"])) for i in range(2)]
    assert brightness["auto"] != brightness["image_alpha"]  # composited over other backgrounds
    with pytest.raises(SystemExit) as e:  # argparse's usage error
        main([*args, "--layout", "bogus", "--out", str(tmp_path / "x")])
    assert e.value.code == 2


def test_evaluate_reports_missing_checkpoint(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope.pt" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_evaluate_accepts_every_format_matte_takes_with_the_same_numbers(tmp_path):
    from lowlight_matting.checkpoint import model_from_checkpoint
    from lowlight_matting.export import export_onnx, save_weights

    ckpt = make_checkpoint(tmp_path / "m.pt", 0)
    model = model_from_checkpoint(ckpt)
    save_weights(model, tmp_path / "m.safetensors")
    export_onnx(model, tmp_path / "m.onnx", legacy=True)
    out = tmp_path / "ev"
    args = ["evaluate", "--checkpoint", f"pt={ckpt}", "--checkpoint", str(tmp_path / "m.safetensors")]
    args += [
        "--checkpoint",
        f"graph={tmp_path / 'm.onnx'}",
        "--data",
        "synthetic",
        "--n",
        "2",
        "--size",
        "64",
    ]
    assert main([*args, "--figures", "0", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    rows = read_csv(out / "metrics.csv")
    by = {(r["model"], r["index"]): r for r in rows}
    assert {m for m, _ in by} == {"pt", "m", "graph"}
    for i in range(2):
        for k in ("sad", "mse", "grad", "conn"):
            assert by["m", i][k] == by["pt", i][k], k  # same weights, same torch forward
            assert abs(by["graph", i][k] - by["pt", i][k]) <= 1e-4 * by["pt", i][k] + 1e-9, k  # onnxruntime


def test_evaluate_accepts_a_shipped_model_name(tmp_path):
    out = tmp_path / "ev"
    args = ["evaluate", "--checkpoint", "cvunet-base", "--data", "synthetic", "--n", "1", "--size", "64"]
    assert main([*args, "--figures", "0", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    assert {r["model"] for r in read_csv(out / "metrics.csv")} == {"cvunet-base"}


def test_evaluate_usage_errors_are_one_line_with_status_2(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "m.pt", 0)
    base = ["evaluate", "--checkpoint", str(ckpt), "--n", "1", "--size", "32", "--out", str(tmp_path / "o")]
    for extra, words in (
        (["--device", "banana"], ("banana", "device")),
        (["--checkpoint", "no-such-model"], ("no-such-model",)),
        (["--data", str(tmp_path / "nowhere")], ("nowhere",)),
    ):
        assert main([*base, *extra, "--quiet"]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("evaluate: ") and err.count("\n") == 1, err
        assert all(w in err for w in words), err
    assert not (tmp_path / "o").exists()

"""``lowlight-matting evaluate``: two checkpoints → the article-shaped table, per-image CSV and figures."""

import torch

from lowlight_matting.checkpoint import save_checkpoint
from lowlight_matting.cli import main
from lowlight_matting.evaluate import read_csv
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
    for name in ("hardest_normal.png", "hardest_lowlight.png", "brightness_sad.png"):
        assert read_image(out / "figures" / name).ndim == 3
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


def test_evaluate_reports_missing_checkpoint(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.pt" in capsys.readouterr().err

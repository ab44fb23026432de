"""``lowlight-matting simulate``: writes outputs, never into IN_DIR, reports a corrupt file, exits non-zero."""

import json

import numpy as np
import skimage.data

from lowlight_matting.cli import main
from lowlight_matting.io import read_image, write_image
from lowlight_matting.simulate import SIMULATOR_PRESETS, LowLightSimulator


def make_inputs(tmp_path, corrupt=False):
    src = tmp_path / "in"
    write_image(src / "coffee.png", skimage.data.coffee()[::4, ::4])
    write_image(src / "sub" / "cat.jpg", skimage.data.chelsea()[::4, ::4])
    if corrupt:
        (src / "broken.png").write_bytes(b"\x89PNG not really")
    return src


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_simulate_writes_darker_pngs_and_params(tmp_path, capsys):
    src = make_inputs(tmp_path)
    before = snapshot(src)
    out = tmp_path / "out"
    assert main(["simulate", str(src), str(out), "--seed", "3", "--recursive", "--quiet"]) == 0
    assert snapshot(src) == before
    dark = read_image(out / "coffee.png")
    assert dark.shape == read_image(src / "coffee.png").shape
    assert dark.mean() < read_image(src / "coffee.png").mean()
    assert (out / "sub" / "cat.png").exists()
    records = [json.loads(line) for line in (out / "params.jsonl").read_text().splitlines()]
    assert {r["file"] for r in records} == {"coffee.png", "sub/cat.jpg"}
    # each recorded parameter set replays its picture exactly
    for r in records:
        replay = LowLightSimulator.apply(read_image(src / r["file"]), **r["params"])
        np.testing.assert_array_equal(read_image(out / r["output"]), replay, err_msg=r["file"])
    # same seed -> same pictures; existing outputs are kept unless --overwrite
    assert main(["simulate", str(src), str(tmp_path / "again"), "--seed", "3", "--recursive", "--quiet"]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "again" / "coffee.png"), dark)
    assert main(["simulate", str(src), str(out), "--seed", "4", "--recursive", "--quiet"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["simulate", str(src), str(out), "--seed", "4", "--recursive", "--quiet", "--overwrite"]) == 0


def test_simulate_refuses_to_write_into_in_dir(tmp_path, capsys):
    src = make_inputs(tmp_path)
    before = snapshot(src)
    assert main(["simulate", str(src), str(src), "--quiet"]) != 0
    assert main(["simulate", str(src), str(src / "dark"), "--quiet"]) != 0
    assert "refusing" in capsys.readouterr().err
    assert snapshot(src) == before


def test_simulate_reports_a_corrupt_file_and_keeps_going(tmp_path, capsys):
    src = make_inputs(tmp_path, corrupt=True)
    out = tmp_path / "out"
    assert main(["simulate", str(src), str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 file(s) failed" in err
    assert (out / "coffee.png").exists()


def test_simulate_missing_in_dir(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "nope"), str(tmp_path / "out"), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_simulate_presets_are_the_simulators(tmp_path):
    src = make_inputs(tmp_path)
    for name in SIMULATOR_PRESETS:
        assert (
            main(["simulate", str(src), str(tmp_path / name), "--preset", name, "--seed", "1", "--quiet"])
            == 0
        )
    # the preset reaches the simulator: exposure_only adds no noise, so a flat patch stays flat
    flat = tmp_path / "flat"
    write_image(flat / "grey.png", np.full((32, 32, 3), 150, np.uint8))
    assert (
        main(["simulate", str(flat), str(tmp_path / "flat_out"), "--preset", "exposure_only", "--quiet"]) == 0
    )
    assert len(np.unique(read_image(tmp_path / "flat_out" / "grey.png")[..., 1])) == 1

"""Data pipeline throughput, in samples per second on ONE core (OpenCV and torch limited to one thread):
the synthetic generator at 256² and 512², the CPU low-light simulator on top, and reading a folder dataset
written by ``make-data``. A DataLoader with ``k`` workers gets about ``k`` times these numbers.

Run: ``.venv/bin/python -m benchmarks data``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2

from benchmarks._common import print_table


def _rate(get, n: int) -> tuple[float, float]:
    """(samples/s, ms/sample) over ``n`` consecutive items, CPU time of this process (robust to other load)."""
    get(0)  # warm-up: imports, photo decoding, lookup tables
    t0 = time.process_time()
    for i in range(1, n + 1):
        get(i)
    dt = max(time.process_time() - t0, 1e-9)
    return n / dt, 1000 * dt / n


def main() -> None:
    from lowlight_matting.data import FolderMattingDataset, LowLightPairs, SyntheticMattingDataset
    from lowlight_matting.data.backgrounds import PHOTOS, load_photo

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        torch, torch_threads = None, None
    try:
        for name in PHOTOS:  # decoded once per process; not part of the per-sample cost
            load_photo(name)
        rows = []
        for size, n in ((256, 60), (512, 20)):
            ds = SyntheticMattingDataset(n + 1, size=size, seed=0)
            rate, ms = _rate(ds.__getitem__, n)
            rows.append([f"SyntheticMattingDataset {size}²", n, round(rate, 1), round(ms, 2)])
        for size, n in ((256, 30), (512, 10)):
            pairs = LowLightPairs(SyntheticMattingDataset(n + 1, size=size, seed=0), seed=0)
            rate, ms = _rate(pairs.__getitem__, n)
            rows.append([f"+ LowLightPairs (CPU simulator) {size}²", n, round(rate, 1), round(ms, 2)])
        with tempfile.TemporaryDirectory() as tmp:
            from lowlight_matting.cli import main as cli

            cli(["make-data", str(Path(tmp) / "d"), "--n", "41", "--size", "256", "--seed", "0", "--quiet"])
            folder = FolderMattingDataset(Path(tmp) / "d")
            rate, ms = _rate(folder.__getitem__, 40)
            rows.append(["FolderMattingDataset read 256² PNG", 40, round(rate, 1), round(ms, 2)])
        print_table(
            "Data pipeline throughput (one core: OpenCV and torch at 1 thread; CPU time)",
            ["pipeline", "samples", "samples/s/core", "ms/sample"],
            rows,
        )
    finally:
        cv2.setNumThreads(threads)
        if torch is not None and torch_threads is not None:
            torch.set_num_threads(torch_threads)


if __name__ == "__main__":
    main()

"""Matting metrics on one 2048×2048 pair: :mod:`lowlight_matting.metrics.reference` beside a straightforward
port of the Deep Image Matting MATLAB code on the same inputs.

The port does what the MATLAB files do: a full 2-D 9×9 convolution per gradient component (``imfilter``),
and per threshold a labelling, a region-size table, the largest region's mask *and* the normalised distance
transform (``bwdist``) that ``compute_connectivity_error.m`` computes and never uses. Both run on one core
(OpenCV and torch limited to one thread). Also times the batched torch SAD/MSE/Grad used for validation
(:mod:`lowlight_matting.metrics.batched`).

Run: ``python -m benchmarks metrics``.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import scipy.ndimage as ndi
import torch

from benchmarks._common import print_table, timeit
from lowlight_matting.metrics import batched, reference

SIZE = 2048


def make_pair(size: int = SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A portrait-like ground truth (soft body + anti-aliased hair strands) and an imperfect prediction."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    body = np.clip((0.3 - np.hypot((yy - 0.65) / 1.2, xx - 0.5)) * 60 + 0.5, 0, 1)
    hair = np.zeros((size, size), np.float32)
    for _ in range(400):
        a = rng.uniform(math.pi * 1.05, math.pi * 1.95)
        r0, r1 = 0.28 * size, rng.uniform(0.33, 0.45) * size
        cx, cy = 0.5 * size, 0.58 * size
        p0 = (int(cx + r0 * math.cos(a)), int(cy + r0 * math.sin(a)))
        p1 = (
            int(cx + r1 * math.cos(a + rng.normal(0, 0.05))),
            int(cy + r1 * math.sin(a + rng.normal(0, 0.05))),
        )
        cv2.line(hair, p0, p1, float(rng.uniform(0.3, 1.0)), 1, cv2.LINE_AA)
    gt = np.clip(np.maximum(body, hair), 0, 1).astype(np.float64)
    noise = cv2.GaussianBlur(rng.normal(0, 0.15, (size, size)), (0, 0), 3)
    pred = np.clip(cv2.GaussianBlur(gt, (0, 0), 1.2) + noise * (gt > 0.02), 0, 1)
    pred[rng.random((size, size)) < 0.001] = 0  # a few pinholes
    return pred, gt


# --------------------------------------------------------------------------- straightforward port
def _port_kernel(sigma: float = 1.4) -> np.ndarray:
    epsilon = 1e-2
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    u = np.arange(-half, half + 1)
    gauss = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    hx = gauss[:, None] * (-u * gauss / sigma**2)[None, :]
    return hx / np.sqrt(np.sum(hx**2))


def port_sad(pred, gt, trimap):
    return np.sum(np.abs(pred - gt) * (trimap == 128)) / 1000


def port_mse(pred, gt, trimap):
    w = trimap == 128
    return np.sum((pred - gt) ** 2 * w) / np.sum(w)


def port_grad(pred, gt, trimap):
    hx = _port_kernel()
    hy = hx.T

    def amp(x):
        gx = ndi.convolve(x, hx, mode="nearest")  # imfilter(x, hx, 'replicate', 'conv'): full 2-D kernel
        gy = ndi.convolve(x, hy, mode="nearest")
        return np.sqrt(gx**2 + gy**2)

    return np.sum((amp(pred) - amp(gt)) ** 2 * (trimap == 128)) / 1000


def port_conn(pred, gt, trimap, step=0.1):
    thresh_steps = np.arange(0, 1 + step / 2, step)
    l_map = -np.ones(pred.shape)
    dist_maps = np.zeros(pred.shape + (len(thresh_steps),), np.float32)
    for ii in range(1, len(thresh_steps)):
        both = (pred >= thresh_steps[ii]) & (gt >= thresh_steps[ii])
        labels, n = ndi.label(both)  # bwconncomp(..., 4)
        omega = np.zeros(pred.shape)
        if n:
            sizes = np.bincount(labels.ravel())[1:]  # cellfun(@numel, cc.PixelIdxList)
            omega[labels == 1 + int(np.argmax(sizes))] = 1
        flag = (l_map == -1) & (omega == 0)
        l_map[flag] = thresh_steps[ii - 1]
        d = ndi.distance_transform_edt(omega == 0)  # bwdist(omega), computed and never used
        dist_maps[:, :, ii] = d / max(d.max(), 1e-12)
    l_map[l_map == -1] = 1
    pred_d, gt_d = pred - l_map, gt - l_map
    pred_phi = 1 - pred_d * (pred_d >= 0.15)
    gt_phi = 1 - gt_d * (gt_d >= 0.15)
    return np.sum(np.abs(pred_phi - gt_phi) * (trimap == 128)) / 1000


def cpu_time(fn, repeat: int = 5) -> float:
    """Median CPU time of ``fn()`` in this process (less sensitive than wall time to a busy machine)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    cv2.setNumThreads(1)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pred, gt = make_pair()
        whole = np.full(gt.shape, 128, np.uint8)  # the port always takes a trimap: all unknown = whole image
        ours = {
            "SAD": lambda: reference.sad(pred, gt),
            "MSE": lambda: reference.mse(pred, gt),
            "Grad": lambda: reference.gradient_error(pred, gt),
            "Conn": lambda: reference.connectivity_error(pred, gt),
            "all four (compute_metrics)": lambda: reference.compute_metrics(pred, gt),
        }
        port = {
            "SAD": lambda: port_sad(pred, gt, whole),
            "MSE": lambda: port_mse(pred, gt, whole),
            "Grad": lambda: port_grad(pred, gt, whole),
            "Conn": lambda: port_conn(pred, gt, whole),
        }
        rows = []
        values = {}
        for name, fn in ours.items():
            t_ours = timeit(fn, repeat=5, warmup=1)
            c_ours = cpu_time(fn)
            if name in port:
                v_ours, v_port = fn(), port[name]()
                values[name] = (v_ours, v_port)
                t_port = timeit(port[name], repeat=1, warmup=0)
                rel = f"{abs(v_ours - v_port) / max(abs(v_port), 1e-300):.1e}"
            else:
                t_port = sum(timeit(f, repeat=1, warmup=0) for f in port.values())
                rel = ""
            speed = f"{t_port / t_ours:.1f}×"
            rows.append(
                [name, f"{t_ours * 1000:.1f}", f"{c_ours * 1000:.1f}", f"{t_port * 1000:.0f}", speed, rel]
            )
        print_table(
            f"Matting metrics on one {SIZE}×{SIZE} pair, whole image, one core (ms)",
            [
                "metric",
                "lowlight_matting wall",
                "its CPU time",
                "straightforward port wall",
                "speed-up",
                "rel. diff.",
            ],
            rows,
        )
        print("values:", {k: round(v[0], 6) for k, v in values.items()}, "\n")

        # trimap case: the unknown band only
        tri = reference.make_trimap(gt, kernel_size=25)
        t_tri = timeit(lambda: reference.compute_metrics(pred, gt, tri), repeat=5, warmup=1)
        print_table(
            f"All four with a trimap ({(tri == 128).mean():.0%} unknown), one core",
            ["call", "ms"],
            [["compute_metrics(pred, gt, trimap)", f"{t_tri * 1000:.1f}"]],
        )

        # batched torch SAD/MSE/Grad for validation during training
        rows = []
        b = 8
        p = torch.from_numpy(cv2.resize(pred, (512, 512))).float()[None, None].repeat(b, 1, 1, 1)
        g = torch.from_numpy(cv2.resize(gt, (512, 512))).float()[None, None].repeat(b, 1, 1, 1)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for dev in devices:
            pd, gd = p.to(dev), g.to(dev)
            sync = torch.cuda.synchronize if dev == "cuda" else None
            t = timeit(lambda pd=pd, gd=gd: batched.batch_metrics(pd, gd), repeat=5, warmup=1, sync=sync)
            rows.append([f"batch_metrics, {b}×1×512×512 float32", dev, f"{t * 1000:.1f}"])
        t_np = timeit(
            lambda: [reference.compute_metrics(pred[:512, :512], gt[:512, :512]) for _ in range(b)], repeat=3
        )
        rows.append([f"compute_metrics ×{b} (numpy, incl. Conn), 512×512", "cpu", f"{t_np * 1000:.1f}"])
        print_table("Batched validation metrics", ["call", "device", "ms"], rows)
    finally:
        torch.set_num_threads(old_threads)
        cv2.setNumThreads(-1)


if __name__ == "__main__":
    main()

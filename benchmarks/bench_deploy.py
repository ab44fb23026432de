"""Deployment speed: single-photo latency on CPU (2 threads) and batch throughput on a CUDA GPU.

CPU: the ``mobilenetv2_100`` preset (random init: speed does not depend on the weights) at a 512 x 512 working
size: the network alone, ``Matter.predict`` on a 512 x 512 photo and on a 3000 x 2000 photo (guided upsampling
to 6 megapixels), and ``Matter.cutout`` with and without foreground estimation.
CUDA (when available): images per second of ``Matter.predict_batch`` on 512 x 512 photos, fp32 vs bf16
autocast, at several batch sizes, plus the network alone.

Run: ``python -m benchmarks deploy``.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks._common import print_table, timeit


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def bench_cpu(encoder: str = "mobilenetv2_100", long_side: int = 512, repeat: int = 5) -> None:
    from lowlight_matting.deploy import Matter
    from lowlight_matting.models import build_model

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = build_model(encoder).eval()
        plain = Matter(model, device="cpu", long_side=long_side, foreground="none")
        ml = Matter(model, device="cpu", long_side=long_side, foreground="ml")
        square, big = _photo(512, 512), _photo(2000, 3000)
        ml.warmup()
        x = plain._prepare(square)[None]
        big_alpha = plain.predict(big)
        big_small = plain._forward(plain._prepare(big)[None])[0]  # the network's alpha at working size
        rows = []
        cases = [
            ("network only, 512x512 input", lambda: plain._forward(x)),
            ("predict 512x512 photo", lambda: plain.predict(square)),
            ("cutout 512x512, no foreground", lambda: plain.cutout(square)),
            ("cutout 512x512, ml foreground", lambda: ml.cutout(square)),
            ("predict 3000x2000 photo (guided upsampling)", lambda: plain.predict(big)),
            ("guided upsampling alone, 3000x2000", lambda: plain._finish(big, big_small)),
            ("ml foreground alone, 3000x2000", lambda: ml.estimate_foreground(big, big_alpha)),
            ("cutout 3000x2000, ml foreground", lambda: ml.cutout(big)),
        ]
        for name, fn in cases:
            rows.append([name, 1000 * timeit(fn, repeat=repeat, warmup=1)])
        print_table(
            f"Matter latency on CPU, {encoder}, working long side {long_side}, torch threads 2",
            ["case", "median ms"],
            rows,
        )
    finally:
        torch.set_num_threads(threads)


def bench_cuda(
    encoder: str = "mobilenetv2_100", long_side: int = 512, batches=(1, 8, 32), repeat: int = 5
) -> None:
    from lowlight_matting.deploy import Matter
    from lowlight_matting.models import build_model

    model = build_model(encoder).eval()
    sync = torch.cuda.synchronize
    rows = []
    for precision in ("fp32", "bf16"):
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            continue
        matter = Matter(model, device="cuda", long_side=long_side, precision=precision, foreground="none")
        for b in batches:
            images = [_photo(512, 512, seed=i) for i in range(b)]
            x = np.stack([matter._prepare(im) for im in images])
            t_net = timeit(lambda x=x, m=matter: m._forward(x), repeat=repeat, warmup=2, sync=sync)
            t_all = timeit(
                lambda im=images, m=matter, b=b: m.predict_batch(im, batch_size=b),
                repeat=repeat,
                warmup=1,
                sync=sync,
            )
            rows.append([precision, b, b / t_net, b / t_all])
    print_table(
        f"Batch throughput on CUDA, {encoder}, 512x512 photos",
        ["precision", "batch", "network img/s", "predict_batch img/s"],
        rows,
    )


def main() -> None:
    bench_cpu()
    if torch.cuda.is_available():
        bench_cuda()
    else:
        print("(no CUDA GPU here: batch throughput on GPU skipped)\n")


if __name__ == "__main__":
    main()

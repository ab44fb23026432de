"""Low-light simulator throughput: the NumPy path per CPU core and the batched torch path (CPU; CUDA if present).

Run: ``python -m benchmarks simulate``. Images are skimage's astronaut resized; the default preset with JPEG
off and on (``p_jpeg=1``: every image re-encoded) on both paths, which apply the same steps (the batched path
round-trips its JPEG samples through the host's OpenCV codec).
"""

from __future__ import annotations

import cv2
import skimage.data
import torch

from benchmarks._common import print_table, timeit
from lowlight_matting.simulate import LowLightSimulator, simulate_batch


def main() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    photo = skimage.data.astronaut()
    rows = []
    for side in (256, 512):
        img = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
        for jpeg in (0.0, 1.0):
            sim = LowLightSimulator(seed=0, p_jpeg=jpeg)
            n = 8
            t = timeit(lambda sim=sim, img=img, n=n: [sim(img) for _ in range(n)], repeat=3, warmup=1)
            rows.append(("numpy, 1 core", f"{side}x{side}", "-", "on" if jpeg else "off", n / t))
        x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)[None]
        for batch in (16,):
            xb = x.repeat(batch, 1, 1, 1)
            for jpeg in (0.0, 1.0):
                g = torch.Generator().manual_seed(0)
                t = timeit(lambda xb=xb, g=g, j=jpeg: simulate_batch(xb, g, p_jpeg=j), repeat=3, warmup=1)
                rows.append(
                    ("torch CPU, 1 thread", f"{side}x{side}", batch, "on" if jpeg else "off", batch / t)
                )
                if torch.cuda.is_available():
                    xc = xb.cuda().repeat(4, 1, 1, 1)
                    # a CPU generator: the parameters are drawn without a GPU sync
                    gc = torch.Generator().manual_seed(0)
                    t = timeit(
                        lambda xc=xc, gc=gc, j=jpeg: simulate_batch(xc, gc, p_jpeg=j),
                        repeat=10,
                        warmup=3,
                        sync=torch.cuda.synchronize,
                    )
                    rows.append(
                        (
                            f"torch {torch.cuda.get_device_name(0)}",
                            f"{side}x{side}",
                            4 * batch,
                            "on" if jpeg else "off",
                            4 * batch / t,
                        )
                    )
    print_table("Low-light simulator throughput", ["path", "size", "batch", "jpeg", "images/s"], rows)


if __name__ == "__main__":
    main()

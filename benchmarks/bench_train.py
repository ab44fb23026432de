"""Training throughput: the whole step (data loading, augmentation, on-device low-light simulation, forward,
loss, backward, clipping, AdamW) against the model-only step, and the share of time spent waiting for data.

On CUDA: 512 x 512, batch 16, bf16 autocast, channels-last, for ``convnext_tiny`` and
``swin_tiny_patch4_window7_224`` (random init; with the Zero-DCE++ LLIE in front, as in the fine-tune).
Target: the whole step at >= 85 % of the model-only step's images/s.
On CPU (no GPU): a small size and the tiny encoders, fp32 -- the table says so; it shows the method, not a
GPU number.

Data: a pool of synthetic composites rendered once up front (standing in for decoded photos of a real
dataset -- rendering a fresh 512 px composite costs more CPU than decoding a JPEG), then per sample:
augmentation (:func:`lowlight_matting.augment.build_train_transform`, crops/flips/colour/blur/noise/cut-out)
in DataLoader workers, collation, pinned-memory copy, and :func:`lowlight_matting.simulate.simulate_batch`
on the device for 70 % of the samples. Workers are persistent and warmed up, so the numbers are steady-state.

Run: ``.venv/bin/python -m benchmarks train`` (``BENCH_TRAIN_STEPS``, ``BENCH_TRAIN_WORKERS`` override).
"""

from __future__ import annotations

import os
import time

import torch

from benchmarks._common import print_table


class _Pool(torch.utils.data.Dataset):
    """``length`` items drawn cyclically from a small pre-rendered pool, augmented per access."""

    def __init__(self, items, length, transform):
        self.items, self.length, self.transform = items, length, transform

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        item = self.items[i % len(self.items)]
        out = self.transform(image=item["image"], alpha=item["alpha"])
        return {"image": out["image"], "alpha": out["alpha"]}

    def reseed(self, seed):
        self.transform.reseed(seed)


def _context(model, device, amp, lowlight):
    from lowlight_matting.losses import MattingLoss
    from lowlight_matting.train import OptimConfig, build_optimizer, build_scheduler
    from lowlight_matting.train.loop import StepContext

    opt = build_optimizer(model, 1e-4, OptimConfig())
    return StepContext(
        optimizer=opt,
        scheduler=build_scheduler(opt, OptimConfig(), 10_000, 0, 100),
        scaler=torch.amp.GradScaler(device.type, enabled=amp.scaler),
        criterion=MattingLoss(),
        device=device,
        amp=amp,
        lowlight=lowlight,
        p_lowlight=0.7,
        channels_last=True,
        log_every=10**9,
    )


def _timed(fn, sync):
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def main() -> None:
    from lowlight_matting.augment import build_train_transform
    from lowlight_matting.data import SyntheticMattingDataset, collate_matting
    from lowlight_matting.models import build_model
    from lowlight_matting.seeding import worker_init_fn
    from lowlight_matting.train.loop import train_one_epoch
    from lowlight_matting.train.optim import resolve_amp

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        size, batch, encoders, amp_mode = 512, 16, ["convnext_tiny", "swin_tiny_patch4_window7_224"], "bf16"
        steps = int(os.environ.get("BENCH_TRAIN_STEPS", 60))
        workers = int(os.environ.get("BENCH_TRAIN_WORKERS", min(12, os.cpu_count() or 1)))
        note = "CUDA"
        torch.backends.cudnn.benchmark = True
    else:
        size, batch, encoders, amp_mode = 64, 4, ["test_convnext", "mobilenetv2_100"], "off"
        steps = int(os.environ.get("BENCH_TRAIN_STEPS", 6))
        workers = int(os.environ.get("BENCH_TRAIN_WORKERS", min(2, os.cpu_count() or 1)))
        note = (
            "CPU ONLY (no GPU found): small size, tiny encoders, fp32 -- not the 512 px / bf16 GPU benchmark"
        )
    amp = resolve_amp(amp_mode, device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    pool = [SyntheticMattingDataset(32, size=int(size * 1.15), seed=0)[i] for i in range(32 if cuda else 8)]
    rows = []
    for enc in encoders:
        torch.manual_seed(0)
        model = build_model(encoder=enc, llie="zero_dce_pp").to(device, memory_format=torch.channels_last)

        # --- model only: batches already on the device, no simulation
        g = torch.Generator(device=device).manual_seed(0)
        fixed = [
            {
                "image": torch.rand(batch, 3, size, size, generator=g, device=device).contiguous(
                    memory_format=torch.channels_last
                ),
                "alpha": torch.rand(batch, 1, size, size, generator=g, device=device),
            }
            for _ in range(4)
        ]
        ctx = _context(model, device, amp, lowlight="off")
        train_one_epoch(model, model, fixed * 2, ctx)  # warm-up (cudnn autotune, allocator)
        t_model, _ = _timed(
            lambda model=model, ctx=ctx, fixed=fixed: train_one_epoch(
                model, model, fixed * (steps // 4 + 1), ctx
            ),
            sync,
        )
        n_model = batch * 4 * (steps // 4 + 1)

        # --- whole step: workers augment, pin, copy; simulate_batch on the device; same step
        ds = _Pool(pool, batch * steps, build_train_transform(size=size, lowlight=False, seed=0))
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=batch,
            shuffle=True,
            num_workers=workers,
            collate_fn=collate_matting,
            pin_memory=cuda,
            drop_last=True,
            worker_init_fn=worker_init_fn,
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
        )
        ctx = _context(model, device, amp, lowlight="device")
        gen = torch.Generator(device=device).manual_seed(1)
        train_one_epoch(model, model, loader, ctx, gen)  # warm-up epoch: starts the workers
        t_e2e, m = _timed(
            lambda model=model, ctx=ctx, loader=loader, gen=gen: train_one_epoch(
                model, model, loader, ctx, gen
            ),
            sync,
        )
        n_e2e = batch * len(loader)
        ips_model, ips_e2e = n_model / t_model, n_e2e / t_e2e
        rows.append(
            [
                enc,
                f"{size}x{size}",
                batch,
                amp.name,
                workers,
                round(ips_model, 1),
                round(ips_e2e, 1),
                f"{100 * ips_e2e / ips_model:.0f}%",
                f"{100 * m['data_wait_s'] / max(m['time_s'], 1e-9):.1f}%",
            ]
        )
        if cuda:
            torch.cuda.empty_cache()
    print_table(
        f"Training throughput, images/s ({note})",
        [
            "encoder",
            "size",
            "batch",
            "amp",
            "workers",
            "model-only",
            "whole step",
            "whole/model",
            "waiting for data",
        ],
        rows,
    )


if __name__ == "__main__":
    main()

"""CV-UNet throughput per encoder preset: forward and training step, fp32 vs bf16 autocast + channels-last.

On a CUDA GPU: 512×512 inputs, batch 8, cudnn autotuning on. On CPU: 256×256, batch 1, fp32 only (the table
says so) — CPUs without native bf16 matrix units run bf16 convolutions through a slow reference path, which
would measure nothing useful; set ``LOWLIGHT_BENCH_CPU_BF16=1`` to time it anyway. Also prints parameters per
part and forward GFLOPs at the benchmark size. Random init throughout (weights do not change the speed).

Run: ``python -m benchmarks models`` (``LOWLIGHT_BENCH_PRESETS=test_convnext,mobilenetv2_100`` to choose).
"""

from __future__ import annotations

import os

import torch

from benchmarks._common import print_table, timeit

DEFAULT_PRESETS = ["test_convnext", "mobilenetv2_100", "convnext_tiny", "swin_tiny_patch4_window7_224"]


def _presets() -> list[str]:
    env = os.environ.get("LOWLIGHT_BENCH_PRESETS", "").strip()
    return [p.strip() for p in env.split(",") if p.strip()] or DEFAULT_PRESETS


def _throughput(model, x, *, train: bool, bf16: bool, device: torch.device, repeat: int) -> float:
    """Images per second for one forward (no grad) or one training step (forward, backward, AdamW step)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    target = torch.rand(x.shape[0], 1, *x.shape[-2:], device=device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5) if train else None

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def step():
        if train:
            with autocast():
                alpha = model(x)
            loss = torch.nn.functional.l1_loss(alpha, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad(), autocast():
                model(x)

    model.train(train)
    seconds = timeit(step, repeat=repeat, warmup=2 if device.type == "cuda" else 1, sync=sync)
    return x.shape[0] / seconds


def main() -> None:
    from lowlight_matting.models import build_model, count_flops, count_parameters

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    size, batch, repeat = (512, 8, 10) if cuda else (256, 1, 3)
    cpu_bf16 = os.environ.get("LOWLIGHT_BENCH_CPU_BF16", "") == "1"
    modes = [("fp32", False, False)]
    if cuda or cpu_bf16:
        modes.append(("bf16+channels_last", True, True))
    if cuda:
        torch.backends.cudnn.benchmark = True

    param_rows, speed_rows = [], []
    for name in _presets():
        torch.manual_seed(0)
        model = build_model(name, llie="zero_dce_pp").to(device)
        flops = count_flops(model, torch.rand(1, 3, size, size, device=device)) / 1e9
        param_rows.append(
            [
                name,
                f"{count_parameters(model.llie):,}",
                f"{count_parameters(model.encoder) / 1e6:.2f} M",
                f"{count_parameters(model.decoder) / 1e6:.2f} M",
                f"{count_parameters(model.head):,}",
                f"{count_parameters(model) / 1e6:.2f} M",
                round(flops, 2),
            ]
        )
        for label, bf16, channels_last in modes:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model = model.to(memory_format=fmt)
            x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
            fwd = _throughput(model, x, train=False, bf16=bf16, device=device, repeat=repeat)
            trn = _throughput(model, x, train=True, bf16=bf16, device=device, repeat=repeat)
            mem = ""
            if cuda:
                mem = f"{torch.cuda.max_memory_allocated() / 2**30:.1f}"
                torch.cuda.reset_peak_memory_stats()
            speed_rows.append([name, label, round(fwd, 2), round(trn, 2), mem or "-"])
        del model
        if cuda:
            torch.cuda.empty_cache()

    where = f"{device.type.upper()}, {size}x{size}, batch {batch}"
    if not cuda:
        where += " (CPU run: smaller size than the 512x512 GPU setting; bf16 skipped, see module docstring)"
    print_table(
        f"CV-UNet parameters (with Zero-DCE++ front end) and forward GFLOPs at {size}x{size}",
        ["encoder", "LLIE", "encoder", "decoder", "head", "total", "GFLOPs"],
        param_rows,
    )
    print_table(
        f"CV-UNet throughput, images/s ({where})",
        ["encoder", "mode", "forward img/s", "train step img/s", "peak GiB"],
        speed_rows,
    )


if __name__ == "__main__":
    main()

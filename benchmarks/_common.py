"""Shared helpers for the benchmark scripts: a description of the hardware and a plain-text table."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence


def hardware() -> str:
    """One line naming the CPU (model, cores, threads torch uses) and the GPU when there is one."""
    from lowlight_matting.device import cpu_model

    parts = [f"CPU: {cpu_model()}, {os.cpu_count()} cores"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        if torch.cuda.is_available():
            parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
        else:
            parts.append("no GPU")
    except ImportError:
        pass
    return "; ".join(parts)


def timeit(
    fn: Callable[[], object], repeat: int = 5, warmup: int = 1, sync: Callable[[], None] | None = None
) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Print (and return) a Markdown table preceded by its title and the hardware line."""

    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [
        f"### {title}",
        "",
        f"Hardware: {hardware()}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text

"""Seeding helpers: every random function in the package takes a seed or a generator; these tie them together.

DataLoader workers: each worker gets ``torch.initial_seed()`` = base_seed + worker_id from PyTorch. A NumPy
``Generator`` or an albumentations ``Compose`` held by a Dataset is *copied* into every worker with the same
state, so without re-seeding all workers draw the same "random" stream. :func:`worker_init_fn` re-seeds Python,
NumPy's global state and any object in the dataset that has a ``reseed(seed)`` method.

:func:`capture_rng_state` / :func:`restore_rng_state` save and restore every global stream (Python, NumPy,
torch CPU and CUDA) in a form a ``weights_only`` checkpoint can hold, for exact resume.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global state and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_seed(worker_id: int | None = None) -> int:
    """The 32-bit seed of the current DataLoader worker (distinct per worker and per epoch)."""
    info = torch.utils.data.get_worker_info()
    if info is not None:
        return int(info.seed % 2**32)
    return int(torch.initial_seed() % 2**32)


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: give each worker its own random streams.

    Seeds ``random``, NumPy's global RNG and calls ``dataset.reseed(seed)`` on the worker's copy of the
    dataset (and on the datasets it wraps, via ``.dataset``) where such a method exists.
    """
    seed = worker_seed(worker_id)
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    reseed_chain(info.dataset if info is not None else None, seed)


def reseed_chain(dataset: Any, seed: int) -> None:
    """Call ``reseed(seed)`` on ``dataset`` and down its ``.dataset`` chain (wrappers around wrappers)."""
    seen: set[int] = set()
    ds = dataset
    while ds is not None and id(ds) not in seen:
        seen.add(id(ds))
        fn = getattr(ds, "reseed", None)
        if callable(fn):
            fn(seed)
        ds = getattr(ds, "dataset", None)


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (a fresh nondeterministic one when None)."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU, CUDA) RNG states as tensors and plain lists (``weights_only``-safe)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [int(version), [int(v) for v in internal], gauss],
        "numpy": [
            str(name),
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state(
            (
                name,
                np.asarray(keys, dtype=np.int64).astype(np.uint32),
                int(pos),
                int(has_gauss),
                float(cached),
            )
        )
    if "torch" in state:
        torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8).cpu() for s in cuda])

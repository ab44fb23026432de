"""The data of a training run: datasets from a config, seeded loaders, per-epoch streams.

Reproducibility: every epoch reseeds its own streams from ``(seed, epoch, rank)`` -- the sampler's shuffle,
the DataLoader worker seeds (each worker reseeds its dataset chain, see
:func:`lowlight_matting.seeding.worker_init_fn`), the on-device simulator and the batch flips.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lowlight_matting.data import (
    FolderMattingDataset,
    LowLightPairs,
    SyntheticMattingDataset,
    TensorMattingDataset,
    collate_matting,
)
from lowlight_matting.seeding import worker_init_fn
from lowlight_matting.train.config import ConfigError, TrainConfig
from lowlight_matting.train.distributed import DistInfo

__all__ = [
    "build_datasets",
    "build_loader",
    "epoch_seed",
    "shard_for_rank",
    "simulator_ranges",
]


def epoch_seed(seed: int, epoch: int, rank: int = 0, salt: int = 0) -> int:
    """A 63-bit seed for one stream (``salt``) of one epoch of one rank, from NumPy's ``SeedSequence``."""
    return int(
        np.random.SeedSequence([int(seed) % 2**63, epoch, rank, salt]).generate_state(1, dtype=np.uint64)[0]
        >> 1
    )


class _Resized(Dataset):
    """Resize ``image``/``alpha`` (and ``fg``/``bg``) of every item to ``size`` x ``size`` (no augmentation)."""

    def __init__(self, dataset: Any, size: int) -> None:
        self.dataset, self.size = dataset, int(size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import cv2

        item = dict(self.dataset[i])
        s = self.size
        for k in ("image", "fg", "bg", "normal", "alpha"):
            v = item.get(k)
            if v is not None and v.shape[:2] != (s, s):
                item[k] = cv2.resize(
                    v, (s, s), interpolation=cv2.INTER_AREA if v.shape[0] > s else cv2.INTER_LINEAR
                )
        return item


def simulator_ranges(sim_cfg: dict[str, Any]) -> dict[str, Any]:
    """``data.simulator`` -> keyword ranges for the simulators (``preset`` expanded, lists made tuples)."""
    from lowlight_matting.simulate import check_ranges, preset_ranges

    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(sim_cfg or {}).items()}
    name = cfg.pop("preset", None)
    try:
        ranges = preset_ranges(name, **cfg) if name is not None else cfg
        check_ranges(ranges)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"data.simulator: {str(e).splitlines()[0]}") from None
    return ranges


def build_datasets(cfg: TrainConfig) -> tuple[Any, Any]:
    """The training and validation datasets a config describes (items as in :mod:`lowlight_matting.data`).

    Training: synthetic (drawn once into memory with ``data.in_memory``) or folder data; with
    ``data.augment="full"`` the augmentation of :func:`lowlight_matting.augment.build_train_transform`
    (photometric low-light part off: darkening is the simulator's job; ``"flip"`` is applied to whole
    batches by the training loop); with ``data.lowlight="dataset"`` wrapped in
    :class:`~lowlight_matting.data.LowLightPairs`. Validation: normal-light items at ``data.size`` (the
    engine darkens them deterministically).
    """
    d = cfg.data
    data_seed = cfg.seed if d.seed is None else d.seed
    if d.source == "synthetic":
        train_base = SyntheticMattingDataset(d.length, size=d.size, seed=data_seed, **d.synthetic)
        val = (
            SyntheticMattingDataset(d.val_length, size=d.size, seed=data_seed + 7919, **d.synthetic)
            if d.val_length
            else None
        )
        if d.in_memory:
            keys = ("image", "alpha", "fg", "bg") if cfg.loss.composition > 0 else ("image", "alpha")
            kw = {"workers": d.num_workers, "progress": cfg.logging.progress}
            train_base = TensorMattingDataset.from_dataset(train_base, keys, desc="training data", **kw)
            if val is not None:
                val = TensorMattingDataset.from_dataset(val, keys, desc="validation data", **kw)
    else:
        full = FolderMattingDataset(d.root, layout=d.layout)
        if d.val_root:
            train_base, val = full, FolderMattingDataset(d.val_root, layout=d.layout)
        else:
            n = len(full)
            n_val = min(max(1, round(n * d.val_fraction)), n - 1) if d.val_fraction > 0 and n > 1 else 0
            perm = np.random.default_rng(data_seed).permutation(n).tolist()
            train_base = torch.utils.data.Subset(full, perm[n_val:])
            val = torch.utils.data.Subset(full, perm[:n_val]) if n_val else None
        if d.val_length and val is not None and len(val) > d.val_length:
            val = torch.utils.data.Subset(val, list(range(d.val_length)))
        val = _Resized(val, d.size) if val is not None else None
    if d.augment == "full":
        from lowlight_matting.augment import AugmentedDataset, build_train_transform

        train = AugmentedDataset(
            train_base, build_train_transform(size=d.size, lowlight=False, seed=cfg.seed)
        )
    elif d.in_memory:
        train = train_base
    else:
        train = _Resized(train_base, d.size)
    if d.lowlight == "dataset":
        from lowlight_matting.simulate import LowLightSimulator

        sim = LowLightSimulator(seed=cfg.seed, **simulator_ranges(d.simulator))
        train = LowLightPairs(train, simulator=sim, seed=cfg.seed, p_lowlight=d.p_lowlight)
    return train, val


def build_loader(
    dataset: Any,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    info: DistInfo | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool | None = None,
) -> DataLoader:
    """A seeded DataLoader: a ``DistributedSampler`` under DDP, else a ``RandomSampler`` on its own generator
    (reseed it per epoch with ``loader.generator.manual_seed``); workers reseeded by ``worker_init_fn``.

    Shuffled loaders drop the last incomplete batch (BatchNorm dislikes a batch of 1, and DDP ranks must
    take the same number of steps).
    """
    info = info or DistInfo()
    gen = torch.Generator().manual_seed(int(seed))
    drop_last = shuffle if drop_last is None else drop_last
    if info.distributed and shuffle:
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed, drop_last=True
        )
    elif shuffle:
        sampler = torch.utils.data.RandomSampler(dataset, generator=gen)
    else:
        sampler = torch.utils.data.SequentialSampler(dataset)
    if shuffle and len(dataset) // (info.world_size if info.distributed else 1) < batch_size and drop_last:
        raise ConfigError(
            f"data: {len(dataset)} training samples give no full batch of {batch_size} per process; "
            "lower data.batch_size or add data"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_matting,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=worker_init_fn,
        generator=gen,
        persistent_workers=False,
    )


def shard_for_rank(dataset: Any, info: DistInfo) -> Any:
    """Every ``world_size``-th item starting at ``rank`` (no padding, unlike ``DistributedSampler``)."""
    if not info.distributed or dataset is None:
        return dataset
    return torch.utils.data.Subset(dataset, list(range(info.rank, len(dataset), info.world_size)))

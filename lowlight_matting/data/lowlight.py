"""Turn any matting dataset into (low-light image, normal image, alpha) training triples.

Two ways to run the simulator of :mod:`lowlight_matting.simulate`:

* ``defer=False`` (default): here, on the CPU, in the DataLoader workers, with
  :class:`~lowlight_matting.simulate.LowLightSimulator`.
* ``defer=True``: items carry the normal image only (``image`` = ``normal``) plus a ``lowlight`` flag;
  the training loop darkens the flagged images of a batch on the GPU with
  :func:`~lowlight_matting.simulate.simulate_batch`, which is much faster than per-image NumPy.

Both draw their parameters from the one law of :mod:`lowlight_matting.simulate.params` and apply the same
steps (JPEG included), so with the same ranges the two modes give the same distribution of low-light images
(not the same draws).

Seeding: item ``i`` of epoch ``e`` draws everything from ``np.random.SeedSequence([seed, e, i])`` (the
simulator is re-seeded per item), so the result does not depend on the number of DataLoader workers or on
which worker loads the item, and no two workers repeat each other's noise. Call :meth:`LowLightPairs.set_epoch`
before each epoch to get fresh degradations.

Example:
    >>> from lowlight_matting.data import SyntheticMattingDataset
    >>> pairs = LowLightPairs(SyntheticMattingDataset(2, size=32), seed=0)
    >>> item = pairs[0]
    >>> sorted(item), bool(item["image"].mean() < item["normal"].mean())
    (['alpha', 'bg', 'fg', 'image', 'lowlight', 'normal'], True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class LowLightPairs:
    """Wrap ``dataset`` so that ``item["image"]`` is a simulated low-light photo and ``item["normal"]`` the
    original; ``alpha`` (and ``fg``/``bg`` when present) pass through unchanged.

    Args:
        dataset: any indexable dataset whose items have ``image`` uint8 (H, W, 3) and ``alpha``.
        simulator: a :class:`~lowlight_matting.simulate.LowLightSimulator` (default: one with the default
            ranges), or any object with ``reseed(seed)`` and ``__call__(image) -> uint8``, or a function
            ``f(image, rng=np.random.Generator) -> uint8`` such as
            :func:`~lowlight_matting.simulate.simulate_low_light`.
        seed: base seed of the per-item streams.
        p_lowlight: share of items that are darkened; the others keep ``image == normal`` (so the model also
            sees well-lit photos). ``item["lowlight"]`` says which.
        defer: leave the simulation to the training loop (see the module docstring).
    """

    def __init__(
        self,
        dataset,
        simulator: Any | None = None,
        seed: int = 0,
        p_lowlight: float = 1.0,
        defer: bool = False,
    ):
        if not 0.0 <= float(p_lowlight) <= 1.0:
            raise ValueError(f"LowLightPairs: p_lowlight must be in [0, 1], got {p_lowlight}")
        self.dataset = dataset
        self.seed = int(seed)
        self.p_lowlight = float(p_lowlight)
        self.defer = bool(defer)
        self.epoch = 0
        if simulator is None and not self.defer:
            from lowlight_matting.simulate import LowLightSimulator  # lazy: keeps `import data` light

            simulator = LowLightSimulator()
        if simulator is not None and not callable(simulator):
            raise TypeError(f"LowLightPairs: simulator must be callable, got {type(simulator).__name__}")
        self.simulator = simulator

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Use the streams of ``epoch`` (and pass it on to the wrapped dataset when it has ``set_epoch``)."""
        self.epoch = int(epoch)
        inner: Callable | None = getattr(self.dataset, "set_epoch", None)
        if callable(inner):
            inner(epoch)

    def reseed(self, seed: int) -> None:
        """No-op by design: items depend on (seed, epoch, index) only, never on the worker that loads them."""

    def item_rng(self, index: int) -> np.random.Generator:
        """The generator item ``index`` of the current epoch uses."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(index)]))

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        if "image" not in item:
            raise KeyError(f"LowLightPairs: items of {type(self.dataset).__name__} have no 'image' key")
        normal = np.asarray(item["image"])
        rng = self.item_rng(index if index >= 0 else index + len(self))
        dark = bool(rng.random() < self.p_lowlight)
        item["normal"] = normal
        item["lowlight"] = dark
        if dark and not self.defer:
            sim_seed = int(rng.integers(0, 2**63 - 1))
            reseed = getattr(self.simulator, "reseed", None)
            if callable(reseed):
                reseed(sim_seed)
                item["image"] = self.simulator(normal)
            else:
                item["image"] = self.simulator(normal, rng=np.random.default_rng(sim_seed))
        else:
            item["image"] = normal
        return item

    def __repr__(self) -> str:
        mode = "defer=True" if self.defer else f"simulator={self.simulator!r}"
        return f"LowLightPairs({self.dataset!r}, {mode}, seed={self.seed}, p_lowlight={self.p_lowlight})"

"""The small matting samples committed in ``data_samples/`` (made by this project's generator; see its
README for provenance, licence and checksums), used by the notebooks and the quick demo.

Example:
    >>> items = load_samples("test")  # doctest: +SKIP
    >>> sorted(items[0])  # doctest: +SKIP
    ['alpha', 'image', 'name']
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "LOWLIGHT_SAMPLES"


def samples_root() -> Path:
    """The ``data_samples/`` folder: ``$LOWLIGHT_SAMPLES`` if set, else the one next to the package (source
    checkout or editable install), else ``./data_samples``."""
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "data_samples", Path.cwd() / "data_samples"]
    for p in candidates:
        if (p / "README.md").is_file():
            return p
    raise FileNotFoundError(
        f"data_samples/ not found (looked in {', '.join(str(p) for p in candidates)}); "
        f"set {ENV_VAR} to the folder, or run from a checkout of the repository"
    )


def load_samples(split: str = "test", n: int | None = None) -> list[dict]:
    """Read a split of ``data_samples/`` as a list of items: ``image`` uint8 (H, W, 3), ``alpha`` float32
    (H, W) in [0, 1] and ``name`` (file stem); ``n`` keeps the first ``n``."""
    from lowlight_matting.data.folder import FolderMattingDataset

    root = samples_root() / split
    if not root.is_dir():
        splits = sorted(p.name for p in samples_root().iterdir() if p.is_dir())
        raise FileNotFoundError(f"{root}: no split {split!r} in data_samples (splits: {splits})")
    ds = FolderMattingDataset(root, layout="image_alpha")
    count = len(ds) if n is None else min(int(n), len(ds))
    return [{**ds[i], "name": ds.names[i]} for i in range(count)]

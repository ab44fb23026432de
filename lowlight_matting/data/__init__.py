"""Matting data that works offline: procedural generator, dataset loaders, low-light pairs, samples.

A procedural generator, loaders for real datasets on disk, low-light training pairs, batching, and the
committed samples:

* :class:`SyntheticMattingDataset` — procedural foregrounds with hair, fur, holes, semi-transparency and
  motion blur on real photographs / procedural textures (:mod:`~lowlight_matting.data.synthetic`).
* :class:`FolderMattingDataset` — ``image/ + alpha/`` or ``fg/ + alpha/ + bg/`` folders.
* :class:`LowLightPairs` — adds a simulated low-light ``image`` and keeps the ``normal`` one.
* :class:`TensorMattingDataset` — samples held in memory as uint8 tensors; :func:`random_hflip` — the joint
  left-right flip of a batch (:mod:`~lowlight_matting.data.memory`).
* :func:`collate_matting` — items to float32 tensors.
* :func:`load_samples`, :func:`samples_root` — the committed ``data_samples/``.
"""

from lowlight_matting.data.backgrounds import PHOTOS, fractal_noise, random_background
from lowlight_matting.data.collate import collate_matting
from lowlight_matting.data.folder import FolderMattingDataset, MattingDataError, folder_tree
from lowlight_matting.data.lowlight import LowLightPairs
from lowlight_matting.data.memory import TensorMattingDataset, random_hflip
from lowlight_matting.data.samples import load_samples, samples_root
from lowlight_matting.data.stats import alpha_statistics, detail_window
from lowlight_matting.data.synthetic import SyntheticConfig, SyntheticMattingDataset, generate_sample

__all__ = [
    "PHOTOS",
    "FolderMattingDataset",
    "folder_tree",
    "LowLightPairs",
    "MattingDataError",
    "SyntheticConfig",
    "SyntheticMattingDataset",
    "TensorMattingDataset",
    "alpha_statistics",
    "collate_matting",
    "detail_window",
    "fractal_noise",
    "generate_sample",
    "load_samples",
    "random_background",
    "random_hflip",
    "samples_root",
]

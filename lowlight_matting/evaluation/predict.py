"""What an evaluation runs on: test sets, trimaps, models loaded from any shipped format, and their alphas.

- **test sets** — :func:`make_test_sets`: normal light and the SAME images through the low-light simulator
  with a fixed seed, or a folder from disk (e.g. real low-light photos with mattes).
- **trimaps** — none (whole image), ``"auto"`` (:func:`~lowlight_matting.metrics.make_trimap` of the ground
  truth with :func:`auto_trimap_kernel`), the items' own, or a folder of trimap images
  (:func:`trimap_lookup`).
- **models** — :func:`load_models` takes what ``lowlight-matting matte`` takes: a training checkpoint
  (``.pt``), exported weights (``.safetensors``), an exported ONNX graph (``.onnx``), a shipped model name
  (``cvunet-base``, ``cvunet-lowlight``) or a model already in memory.
- **predictions** — :func:`predict_alphas`: float32 (H, W) alphas at the images' own size.

An ONNX graph runs on the CPU through :func:`lowlight_matting.deploy.load_matter` (onnxruntime), with a
working size that never resizes the image (it is only reflect-padded to the model's stride, as the graph
itself does); the same model as a ``.pt`` gives the same alphas up to float rounding.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowlight_matting.metrics import make_trimap

__all__ = [
    "MODEL_SUFFIXES",
    "TrimapSpec",
    "auto_trimap_kernel",
    "make_test_sets",
    "item_names",
    "trimap_lookup",
    "unique_names",
    "is_model_path",
    "load_models",
    "predict_alphas",
    "batches",
]

MODEL_SUFFIXES = (".pt", ".pth", ".safetensors", ".onnx")
"""File types :func:`load_models` reads; any other source without a path separator is a shipped model name."""

_NO_RESIZE = 1 << 16
"""Working-size long side given to an ONNX :class:`~lowlight_matting.deploy.Matter`: larger than any test
image, so ``Matter.working_size`` is the image's own size."""

TrimapSpec = None | str | os.PathLike | Callable[[Mapping[str, Any]], Any]


# ------------------------------------------------------------------------------------------------ data
def auto_trimap_kernel(height: int, width: int | None = None) -> int:
    """Odd structuring-element size used by ``trimap="auto"``: 2·max(1, min(H, W) // 48) + 1 pixels
    (3 px at 64², 11 px at 256², 21 px at 512²), so the unknown band scales with the image."""
    side = min(int(height), int(width if width is not None else height))
    return 2 * max(1, side // 48) + 1


class _Subset:
    """The first ``n`` items of a dataset (keeps ``names`` and the ``.dataset`` chain for lookups)."""

    def __init__(self, dataset, n: int):
        self.dataset = dataset
        self.n = min(int(n), len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= int(i) < self.n:
            raise IndexError(f"index {i} out of range for {self.n} items")
        return self.dataset[int(i)]

    @property
    def names(self) -> list[str]:
        return item_names(self.dataset)[: self.n]


def make_test_sets(
    data: str | os.PathLike = "synthetic",
    lowlight: bool = False,
    n: int | None = 16,
    size: int = 256,
    seed: int = 0,
    normal: bool = True,
    simulator: Any | None = None,
    layout: str = "auto",
) -> dict[str, Any]:
    """Test sets by name.

    Args:
        data: ``"synthetic"`` (:class:`~lowlight_matting.data.SyntheticMattingDataset` of ``n`` images of
            ``size``², dataset seed ``seed``), ``"samples"`` (the committed ``data_samples/test``, first ``n``),
            or a folder (:class:`~lowlight_matting.data.FolderMattingDataset`, first ``n`` when given).
        lowlight: add ``"lowlight"``: the same images through a
            :class:`~lowlight_matting.simulate.LowLightSimulator` (or ``simulator``) with a fixed seed, via
            :class:`~lowlight_matting.data.LowLightPairs` (every image darkened; ``item["normal"]`` kept).
        normal: keep the undarkened set (named ``"normal"``, or after the folder for data from disk).
        seed: seeds the synthetic data and the simulation; the same seed gives the same test sets.
        layout: for a folder, ``"auto"``, ``"image_alpha"`` or ``"fg_alpha_bg"`` (see
            :class:`~lowlight_matting.data.FolderMattingDataset`; AM-2k's ``train/`` needs ``"image_alpha"``
            to be read as photos rather than foregrounds over new backgrounds).

    Returns:
        ``{name: dataset}``; each dataset has ``len`` and items with ``image`` uint8 (H, W, 3) and ``alpha``.
    """
    from lowlight_matting.data import (
        FolderMattingDataset,
        LowLightPairs,
        SyntheticMattingDataset,
        load_samples,
    )

    key = str(data)
    if key == "synthetic":
        base: Any = SyntheticMattingDataset(16 if n is None else int(n), size=size, seed=seed)
        base_name = "normal"
    elif key == "samples":
        base = load_samples("test", n=n)
        base_name = "normal"
    else:
        root = Path(data)
        if not root.is_dir():
            raise FileNotFoundError(f"--data {root}: not 'synthetic', 'samples' or an existing folder")
        base = FolderMattingDataset(root, layout=layout)
        if n is not None:
            base = _Subset(base, n)
        base_name = root.name or "data"
    if len(base) == 0:
        raise ValueError(f"test data {key!r} holds no images")
    sets: dict[str, Any] = {}
    if normal:
        sets[base_name] = base
    if lowlight:
        if simulator is None:
            from lowlight_matting.simulate import LowLightSimulator

            simulator = LowLightSimulator(seed=seed)
        sets["lowlight"] = LowLightPairs(base, simulator=simulator, seed=seed)
    if not sets:
        raise ValueError("make_test_sets: nothing to evaluate (normal=False and lowlight=False)")
    return sets


def item_names(dataset) -> list[str]:
    """Per-index names: ``dataset.names`` (or of a wrapped ``.dataset``), item ``name`` keys, else indices."""
    d = dataset
    for _ in range(8):
        names = getattr(d, "names", None)
        if names is not None and not callable(names) and len(names) >= len(dataset):
            return [str(x) for x in list(names)[: len(dataset)]]
        if isinstance(d, list | tuple) and all(isinstance(it, Mapping) and "name" in it for it in d):
            return [str(it["name"]) for it in d[: len(dataset)]]
        if not hasattr(d, "dataset"):
            break
        d = d.dataset
    return [f"{i:04d}" for i in range(len(dataset))]


def batches(dataset, batch_size: int) -> Iterable[list[tuple[int, Mapping[str, Any]]]]:
    """Consecutive ``(index, item)`` pairs grouped by image size, at most ``batch_size`` per group."""
    group: list[tuple[int, Mapping[str, Any]]] = []
    for i in range(len(dataset)):
        item = dataset[i]
        if group and (len(group) >= batch_size or np.shape(item["image"]) != np.shape(group[0][1]["image"])):
            yield group
            group = []
        group.append((i, item))
    if group:
        yield group


# --------------------------------------------------------------------------------------------- trimaps
def trimap_lookup(spec: TrimapSpec) -> Callable[[Mapping[str, Any], str], np.ndarray | None]:
    """Turn the ``trimap`` option into ``f(item, name) -> trimap or None``.

    ``spec``: None / ``"none"`` (whole image), ``"auto"`` (from the ground truth, :func:`auto_trimap_kernel`),
    ``"item"`` (``item["trimap"]``), a folder of trimap images named like the items, or ``f(item)``.
    """
    if spec is None or (isinstance(spec, str) and spec in ("none", "")):
        return lambda item, name: None
    if isinstance(spec, str) and spec == "auto":

        def auto(item, name):
            a = np.asarray(item["alpha"])
            return make_trimap(a, kernel_size=auto_trimap_kernel(*a.shape[:2]))

        return auto
    if isinstance(spec, str) and spec == "item":

        def from_item(item, name):
            if "trimap" not in item:
                raise KeyError(f"trimap='item': item {name!r} has no 'trimap' key")
            return np.asarray(item["trimap"])

        return from_item
    if callable(spec):
        return lambda item, name: spec(item)
    folder = Path(spec)
    if not folder.is_dir():
        raise FileNotFoundError(f"trimap: {folder} is not 'auto', 'none', 'item' or an existing folder")
    from lowlight_matting.io import list_images, read_raw

    files = {p.stem: p for p in list_images([folder])}

    def from_folder(item, name):
        path = files.get(Path(name).name) or files.get(Path(name).stem)
        if path is None:
            raise FileNotFoundError(f"trimap: no file for image {name!r} in {folder}")
        t = read_raw(path)
        if t.dtype != np.uint8:
            t = np.round(t / 257.0).astype(np.uint8)
        return t if t.ndim == 2 else t[:, :, 0]

    return from_folder


# ----------------------------------------------------------------------------------------------- models
def unique_names(labels: Sequence[str]) -> list[str]:
    """``labels`` with repeats numbered: ``["a", "a", "b"] → ["a", "a_2", "b"]``."""
    names: list[str] = []
    for label in labels:
        name, k = label, 2
        while name in names:
            name, k = f"{label}_{k}", k + 1
        names.append(name)
    return names


def is_model_path(source: str | os.PathLike) -> bool:
    """Whether ``source`` names a file (a model suffix of :data:`MODEL_SUFFIXES`, a path separator, or an
    existing file) rather than a shipped model name such as ``cvunet-base``."""
    s = str(source)
    return Path(s).suffix.lower() in MODEL_SUFFIXES or "/" in s or os.sep in s or Path(s).is_file()


def _load_one(source: Any, name: str, device: Any):
    import torch

    if isinstance(source, torch.nn.Module):
        return source.to(device).eval()
    if hasattr(source, "predict_batch"):  # a deploy.Matter, e.g. from an earlier load_models
        return source
    if not isinstance(source, Mapping) and Path(str(source)).suffix.lower() == ".onnx":
        from lowlight_matting.deploy import load_matter

        return load_matter(
            source, device="cpu", long_side=_NO_RESIZE, precision="fp32", foreground="none", name=name
        )
    from lowlight_matting.weights import load_model

    return load_model(source, map_location="cpu").to(device).eval()


def load_models(sources: Mapping[str, Any] | Sequence[Any], device: Any = None) -> dict[str, Any]:
    """``{name: model}`` ready to predict: ``nn.Module`` s in eval mode on ``device``, and for ``.onnx`` files
    a :class:`~lowlight_matting.deploy.Matter` running onnxruntime on the CPU at the image's own size.

    ``sources``: paths (``.pt`` training checkpoints, ``.safetensors`` exported weights, ``.onnx`` graphs),
    shipped model names, or models already loaded (``nn.Module`` s, ``Matter`` s). A mapping keeps its
    names; a list is named after the files (``runs/a/baseline.pt`` → ``baseline``, made unique). Nothing in
    a checkpoint or weights file can run code (weights-only loading).
    """
    from lowlight_matting.device import resolve_device

    dev = resolve_device(device)
    if isinstance(sources, Mapping):
        items = [(str(k), v) for k, v in sources.items()]
    else:
        seq = list(sources)
        labels = [
            Path(str(p)).stem or "model" if isinstance(p, str | os.PathLike) else f"model{i}"
            for i, p in enumerate(seq)
        ]
        items = list(zip(unique_names(labels), seq, strict=True))
    if not items:
        raise ValueError("load_models: no models given")
    return {name: _load_one(src, name, dev) for name, src in items}


def predict_alphas(model, images: Sequence[np.ndarray], device: Any = None) -> list[np.ndarray]:
    """Alpha mattes (float32 (H, W) in [0, 1]) of ``model`` for uint8 (H, W, 3) ``images`` of one size.

    ``model``: an ``nn.Module`` (float (B, 3, H, W) in [0, 1] → alpha (B, 1, H, W) or ``{"alpha": ...}``),
    run on ``device`` (default: where its parameters are), or a :class:`~lowlight_matting.deploy.Matter`
    (from :func:`load_models` for ``.onnx``), whose ``predict_batch`` is used as it is.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        if not hasattr(model, "predict_batch"):
            raise TypeError(f"model: expected an nn.Module or a deploy.Matter, got {type(model).__name__}")
        return model.predict_batch(list(images), batch_size=max(1, len(images)))
    if device is not None:
        from lowlight_matting.device import resolve_device

        dev = resolve_device(device)
    else:
        dev = next(model.parameters()).device
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).to(dev)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    with torch.inference_mode():
        out = model(x)
        if isinstance(out, Mapping):
            out = out["alpha"]
        out = out.float().clamp(0, 1)[:, 0].cpu().numpy()
    return list(out)

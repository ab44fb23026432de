"""Real matting datasets on disk, in the two common layouts.

``image_alpha``: a photo folder and a matte folder whose files share a stem (P3M-10k ``blurred_image/`` +
``mask/``, its P3M-500-NP ``original_image/`` + ``mask/``, AM-2k / AIM-500 ``original/`` + ``mask/``,
PPM-100 ``image/`` + ``matte/``).

``fg_alpha_bg``: foregrounds + mattes sharing a stem, composited on the fly over a background drawn from
a pool (Composition-1k ``fg/`` + ``alpha/`` + ``bg/``, Xu et al., "Deep Image Matting", 2017;
Distinctions-646 ``FG/`` + ``GT/``, Qiao et al., CVPR 2020). Without a ``bg/`` folder the built-in
backgrounds of :mod:`lowlight_matting.data.backgrounds` are used. The composite is made in linear light
(:func:`lowlight_matting.color.composite`).

Folders are found by name (:data:`IMAGE_DIRS`, :data:`ALPHA_DIRS`, :data:`FG_DIRS`, :data:`BG_DIRS`, the
first existing name in each list wins; others, such as ``trimap/`` or ``facemask/``, are ignored). With
``layout="auto"`` a foreground folder decides: AM-2k's ``train/`` holds ``fg/`` beside ``original/``, so it
is read as ``fg_alpha_bg`` unless ``layout="image_alpha"`` is asked for. :func:`folder_tree` prints a
dataset folder as a tree.

Files are read with :mod:`lowlight_matting.io`: PNG, JPEG, WebP, BMP, TIFF; 8- or 16-bit; grey, RGB or
RGBA; EXIF orientation honoured. Every problem names the file: unsupported type, empty file, a photo
without its matte (or a matte without its photo), two files with one stem, corrupt data, image and matte of
different sizes. By default the first problem raises; with ``skip_bad=True`` every pair is checked when the
dataset is built, bad ones are left out, listed in ``ds.skipped`` and summarised in a warning.

Example:
    >>> ds = FolderMattingDataset("data_samples/test")  # doctest: +SKIP
    >>> item = ds[0]; item["image"].shape, item["alpha"].dtype  # doctest: +SKIP
    ((384, 384, 3), dtype('float32'))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from lowlight_matting.color import composite
from lowlight_matting.io import IMAGE_SUFFIXES, ImageReadError, read_alpha, read_image

IMAGE_DIRS = ("image", "images", "img", "original", "blurred_image", "merged", "composite", "original_image")
ALPHA_DIRS = ("alpha", "alphas", "matte", "mattes", "mask", "masks", "GT")
FG_DIRS = ("fg", "foreground", "foregrounds", "FG")
BG_DIRS = ("bg", "background", "backgrounds")
LAYOUTS = ("auto", "image_alpha", "fg_alpha_bg")
_IGNORED = {"thumbs.db", "desktop.ini", "readme.md", "readme.txt", "license", "license.txt"}


class MattingDataError(ValueError):
    """A matting dataset on disk cannot be used as it is; the message names the file(s) and the problem."""


def _find_dir(root: Path, explicit: str | os.PathLike | None, candidates: tuple[str, ...]) -> Path | None:
    if explicit is not None:
        p = Path(explicit)
        p = p if p.is_absolute() else root / p
        if not p.is_dir():
            raise MattingDataError(f"{p}: folder not found")
        return p
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return None


def _scan(
    folder: Path, recursive: bool, problems: list[tuple[Path, str]]
) -> tuple[dict[str, Path], set[str]]:
    """Map stem (relative path without suffix) -> file, and the set of stems that several files share.

    Unsupported, empty and ambiguous (same stem) files go to ``problems``."""
    found: dict[str, list[Path]] = {}
    it = folder.rglob("*") if recursive else folder.iterdir()
    for p in sorted(it):
        if p.is_dir() or p.name.startswith(".") or p.name.lower() in _IGNORED:
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(
                (p, f"unsupported file type {p.suffix!r} (expected one of {', '.join(IMAGE_SUFFIXES)})")
            )
            continue
        try:
            if p.stat().st_size == 0:
                problems.append((p, "file is empty"))
                continue
        except OSError as e:
            problems.append((p, f"cannot read file ({e})"))
            continue
        found.setdefault(p.relative_to(folder).with_suffix("").as_posix(), []).append(p)
    ambiguous = {k for k, ps in found.items() if len(ps) > 1}
    for k in sorted(ambiguous):
        names = ", ".join(q.name for q in found[k])
        problems.extend((q, f"two files with the stem {k!r} ({names}); keep one") for q in found[k])
    return {k: ps[0] for k, ps in found.items() if k not in ambiguous}, ambiguous


class FolderMattingDataset:
    """A matting dataset in a folder: see the module docstring for the layouts and the error handling.

    Args:
        root: dataset folder (e.g. ``P3M-10k/train`` or ``Composition-1k/train``).
        layout: ``"auto"`` (``fg_alpha_bg`` when a foreground folder exists, else ``image_alpha``),
            ``"image_alpha"`` or ``"fg_alpha_bg"``.
        image_dir, alpha_dir, fg_dir, bg_dir: folder names (relative to ``root``) when they are not one of
            :data:`IMAGE_DIRS`, :data:`ALPHA_DIRS`, :data:`FG_DIRS`, :data:`BG_DIRS`.
        recursive: look into subfolders too (stems then include the subfolder).
        skip_bad: check every file now and leave bad pairs out (``ds.skipped``, a warning) instead of raising.
        seed: for the background choice and crop in ``fg_alpha_bg`` (sample ``i`` of epoch ``e`` uses
            ``np.random.default_rng([seed, e, i])``; see :meth:`set_epoch`).
        transform: optional ``t(image=, alpha=) -> dict``; its output replaces image and alpha (fg/bg are
            then dropped).

    Items: dict with ``image`` uint8 (H, W, 3), ``alpha`` float32 (H, W) in [0, 1], and in ``fg_alpha_bg``
    also ``fg`` and ``bg`` uint8 (H, W, 3).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        layout: str = "auto",
        *,
        image_dir: str | os.PathLike | None = None,
        alpha_dir: str | os.PathLike | None = None,
        fg_dir: str | os.PathLike | None = None,
        bg_dir: str | os.PathLike | None = None,
        recursive: bool = False,
        skip_bad: bool = False,
        seed: int = 0,
        transform: Callable | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MattingDataError(f"{self.root}: dataset folder not found")
        if layout not in LAYOUTS:
            raise ValueError(f"FolderMattingDataset: layout must be one of {LAYOUTS}, got {layout!r}")
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform
        self.skip_bad = bool(skip_bad)
        self.skipped: list[tuple[Path, str]] = []

        alpha_path = _find_dir(self.root, alpha_dir, ALPHA_DIRS)
        fg_path = _find_dir(self.root, fg_dir, FG_DIRS) if layout != "image_alpha" else None
        if layout == "auto":
            layout = "fg_alpha_bg" if fg_path is not None else "image_alpha"
        self.layout = layout
        if layout == "fg_alpha_bg":
            main_path, main_kind = fg_path, "foreground"
            self.bg_dir = _find_dir(self.root, bg_dir, BG_DIRS)
        else:
            main_path, main_kind = _find_dir(self.root, image_dir, IMAGE_DIRS), "image"
            self.bg_dir = None
        if main_path is None or alpha_path is None:
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            want = FG_DIRS if layout == "fg_alpha_bg" else IMAGE_DIRS
            raise MattingDataError(
                f"{self.root}: no {main_kind} folder ({'/'.join(want)}) and alpha folder "
                f"({'/'.join(ALPHA_DIRS)}) for layout {layout!r}; subfolders found: {found or 'none'}"
            )
        self.main_dir, self.alpha_dir = main_path, alpha_path

        problems: list[tuple[Path, str]] = []
        mains, main_dups = _scan(main_path, recursive, problems)
        alphas, alpha_dups = _scan(alpha_path, recursive, problems)
        for key, p in mains.items():
            if key not in alphas and key not in alpha_dups:
                problems.append((p, f"no matching alpha matte {key}.* in {alpha_path}"))
            elif key in alpha_dups:
                problems.append((p, f"its alpha matte {key}.* is ambiguous (two files) in {alpha_path}"))
        for key, p in alphas.items():
            if key in main_dups:
                problems.append((p, f"its {main_kind} {key}.* is ambiguous (two files) in {main_path}"))
            elif key not in mains:
                problems.append((p, f"alpha matte without a matching {main_kind} {key}.* in {main_path}"))
        self.keys = [k for k in sorted(mains) if k in alphas]
        self._pairs = {k: (mains[k], alphas[k]) for k in self.keys}
        self.backgrounds: list[Path] = []
        if self.bg_dir is not None:
            self.backgrounds = sorted(_scan(self.bg_dir, recursive, problems)[0].values())

        if self.skip_bad:
            bad = {p for p, _ in problems}
            for key in list(self.keys):
                for p, why in self._check_pair(*self._pairs[key]):
                    problems.append((p, why))
                    bad.add(p)
            for p in list(self.backgrounds):
                try:
                    read_image(p)
                except ImageReadError as e:
                    problems.append((p, str(e).removeprefix(f"{p}: ")))
                    bad.add(p)
            self.keys = [k for k in self.keys if not (set(self._pairs[k]) & bad)]
            self.backgrounds = [p for p in self.backgrounds if p not in bad]
            self.skipped = problems
            if problems:
                warnings.warn(self.report(), stacklevel=2)
        elif problems:
            raise MattingDataError(self._format(problems, "problem(s) in the dataset"))
        if not self.keys:
            raise MattingDataError(f"{self.root}: no usable {main_kind}/alpha pairs")

    # ---------------------------------------------------------------------------------------------- checks
    @staticmethod
    def _format(problems: list[tuple[Path, str]], what: str, limit: int = 20) -> str:
        lines = [f"{p}: {why}" for p, why in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"... and {len(problems) - limit} more")
        return f"{len(problems)} {what}:\n  " + "\n  ".join(lines)

    def report(self) -> str:
        """A readable list of the files left out (empty string when none were)."""
        if not self.skipped:
            return ""
        return self._format(self.skipped, f"file(s) skipped by FolderMattingDataset({str(self.root)!r})")

    @staticmethod
    def _mismatch(main: Path, alpha_path: Path, image_hw, alpha_hw) -> str:
        return (
            f"alpha size {alpha_hw[1]}x{alpha_hw[0]} does not match {main} ({image_hw[1]}x{image_hw[0]}; "
            "width x height after EXIF orientation)"
        )

    def _read_pair(self, main: Path, alpha_path: Path) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(main)
        alpha = read_alpha(alpha_path)
        if image.shape[:2] != alpha.shape:
            raise MattingDataError(
                f"{alpha_path}: {self._mismatch(main, alpha_path, image.shape, alpha.shape)}"
            )
        return image, alpha

    @classmethod
    def _check_pair(cls, main: Path, alpha_path: Path) -> list[tuple[Path, str]]:
        out, shapes = [], {}
        for p, reader in ((main, read_image), (alpha_path, read_alpha)):
            try:
                shapes[p] = reader(p).shape[:2]
            except ImageReadError as e:
                out.append((p, str(e).removeprefix(f"{p}: ")))
        if not out and shapes[main] != shapes[alpha_path]:
            out.append((alpha_path, cls._mismatch(main, alpha_path, shapes[main], shapes[alpha_path])))
        return out

    # ------------------------------------------------------------------------------------------- dataset
    def __len__(self) -> int:
        return len(self.keys)

    @property
    def names(self) -> list[str]:
        """The stems of the samples, in index order."""
        return list(self.keys)

    def set_epoch(self, epoch: int) -> None:
        """Draw new backgrounds (``fg_alpha_bg``) for another epoch; call before creating the iterator."""
        self.epoch = int(epoch)

    def reseed(self, seed: int) -> None:
        """No-op: items depend only on (seed, epoch, index), so DataLoader workers never repeat each other."""

    def _background(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        if not self.backgrounds:
            from lowlight_matting.data.backgrounds import random_background

            return random_background(rng, shape)
        bg = read_image(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        # scale to cover the foreground, then a random crop (as in Composition-1k's compositing)
        s = max(h / bg.shape[0], w / bg.shape[1]) * rng.uniform(1.0, 1.25)
        nh, nw = max(h, int(np.ceil(bg.shape[0] * s))), max(w, int(np.ceil(bg.shape[1] * s)))
        bg = cv2.resize(bg, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        y, x = int(rng.integers(0, nh - h + 1)), int(rng.integers(0, nw - w + 1))
        out = bg[y : y + h, x : x + w]
        return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"FolderMattingDataset: index {index} out of range for {len(self)} samples")
        main, alpha_path = self._pairs[self.keys[index]]
        image, alpha = self._read_pair(main, alpha_path)
        item: dict[str, np.ndarray] = {"image": image, "alpha": alpha}
        if self.layout == "fg_alpha_bg":
            rng = np.random.default_rng([self.seed, self.epoch, index])
            bg = self._background(rng, alpha.shape)
            item = {"image": composite(image, bg, alpha), "alpha": alpha, "fg": image, "bg": bg}
        if self.transform is not None:
            out = self.transform(image=item["image"], alpha=item["alpha"])
            item = {"image": out["image"], "alpha": out["alpha"]}
        return item

    def __repr__(self) -> str:
        return (
            f"FolderMattingDataset({str(self.root)!r}, layout={self.layout!r}, n={len(self)}"
            + (f", skipped={len(self.skipped)}" if self.skipped else "")
            + ")"
        )


def folder_tree(root: str | os.PathLike, max_files: int = 2) -> str:
    """A dataset folder as a text tree: every sub-folder (with its number of files), the first ``max_files``
    files of each folder in sorted order and how many more there are. Hidden files are left out.

    Example, for a folder ``toy`` holding ``image/a.png``, ``image/b.png`` and ``image/c.png``::

        toy/
        └── image/  (3 files)
            ├── a.png
            ├── b.png
            └── ... 1 more
    """

    def visible(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))

    def walk(folder: Path, indent: str) -> list[str]:
        entries = visible(folder)
        dirs = [p for p in entries if p.is_dir()]
        files = [p.name for p in entries if not p.is_dir()]
        shown: list[tuple[str, Path | None]] = [(f"{d.name}/", d) for d in dirs]
        shown += [(name, None) for name in files[:max_files]]
        if len(files) > max_files:
            shown.append((f"... {len(files) - max_files} more", None))
        out = []
        for i, (label, sub) in enumerate(shown):
            last = i == len(shown) - 1
            if sub is not None:
                n = sum(1 for p in visible(sub) if not p.is_dir())
                label += f"  ({n} file{'s' if n != 1 else ''})" if n else ""
            out.append(f"{indent}{'└── ' if last else '├── '}{label}")
            if sub is not None:
                out += walk(sub, indent + ("    " if last else "│   "))
        return out

    root = Path(root)
    return "\n".join([f"{root.name}/", *walk(root, "")])

"""Reading and writing images safely: any common format and bit depth in, uint8 RGB / float alpha out.

Every failure raises :class:`ImageReadError` naming the file and the problem, never a bare OpenCV trace.
Supported: PNG, JPEG, WebP, BMP (and TIFF), 8- or 16-bit, grey / RGB / RGBA; EXIF orientation is honoured.
Writers never overwrite an existing file unless asked, and write atomically (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from cv2.utils import logging as _cv_log

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An image file could not be used; the message names the file and what is wrong."""


def _exif_orientation(path: Path) -> int:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 to an (H, W[, C]) array."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = np.swapaxes(a, 0, 1)
    elif orientation == 6:
        a = np.rot90(a, k=-1)
    elif orientation == 7:
        a = np.rot90(np.swapaxes(a, 0, 1), k=2)
    elif orientation == 8:
        a = np.rot90(a, k=1)
    return np.ascontiguousarray(a)


def read_raw(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` unchanged (depth and channels kept, OpenCV's BGR(A) order) with EXIF orientation applied."""
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{p}: file not found")
    if p.is_dir():
        raise ImageReadError(f"{p}: is a folder, not an image file")
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageReadError(
            f"{p}: unsupported file type {p.suffix!r} (expected one of {', '.join(IMAGE_SUFFIXES)})"
        )
    try:
        buf = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{p}: cannot read file ({e})") from e
    if buf.size == 0:
        raise ImageReadError(f"{p}: file is empty")
    # Silence OpenCV's own log lines for broken data: the error below names the file instead.
    level = _cv_log.getLogLevel()
    _cv_log.setLogLevel(_cv_log.LOG_LEVEL_SILENT)
    try:
        a = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    finally:
        _cv_log.setLogLevel(level)
    if a is None:
        raise ImageReadError(f"{p}: not a readable image (corrupt or truncated {p.suffix} data)")
    if a.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{p}: unsupported sample type {a.dtype} (expected 8- or 16-bit)")
    return _apply_orientation(a, _exif_orientation(p))


def _to_unit_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3). Grey is repeated to 3 channels; an alpha channel is dropped;
    16-bit is rounded to 8-bit."""
    a = read_raw(path)
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float32) / 257.0).astype(np.uint8)
    if a.ndim == 2:
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.shape[2] != 3:
        raise ImageReadError(f"{path}: unsupported channel count {a.shape[2]}")
    return np.ascontiguousarray(a[:, :, ::-1])


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read an alpha matte as float32 (H, W) in [0, 1].

    A grey file is the matte; an RGBA file gives its alpha channel; an RGB file must be grey in all three
    channels (its first channel is used), otherwise it is refused as not being a matte.
    """
    a = read_raw(path)
    if a.ndim == 3:
        if a.shape[2] == 4:
            a = a[:, :, 3]
        elif a.shape[2] == 3:
            if not (np.array_equal(a[:, :, 0], a[:, :, 1]) and np.array_equal(a[:, :, 1], a[:, :, 2])):
                raise ImageReadError(f"{path}: alpha matte is a colour image (expected grey)")
            a = a[:, :, 0]
        else:
            raise ImageReadError(f"{path}: unsupported channel count {a.shape[2]} for an alpha matte")
    return np.ascontiguousarray(_to_unit_float(a))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike,
    data: bytes | str | Callable[[str], None],
    *,
    overwrite: bool = True,
) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then a rename over.

    The one atomic writer of the package (images, checkpoints, weights, CSV, JSON, Markdown): an interrupted
    write never leaves a truncated file behind, and a reader never sees a half-written one. ``data``: bytes,
    text (written as UTF-8, newlines untouched) or a callable that writes the file given the temporary
    path (``torch.save``, ``safetensors.torch.save_file``). The file gets the permissions a plain ``open``
    would give it (``0o666`` minus the umask; ``tempfile.mkstemp`` alone makes it ``0600``).
    ``overwrite=False`` refuses to replace an existing file (:class:`FileExistsError`).
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: exists already (pass overwrite=True / --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        if not overwrite and path.exists():  # appeared while we wrote
            raise FileExistsError(f"{path}: exists already (pass overwrite=True / --overwrite to replace it)")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_image(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False) -> Path:
    """Write uint8 grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4) to ``path`` (format from its suffix).

    Float input in [0, 1] is scaled to uint8. Refuses to replace an existing file unless ``overwrite``.
    """
    p = Path(path)
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(np.round(np.asarray(a, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, [2, 1, 0, 3]]
    elif a.ndim != 2:
        raise ValueError(f"write_image: expected (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    ok, enc = cv2.imencode(p.suffix.lower() or ".png", np.ascontiguousarray(a))
    if not ok:
        raise ValueError(f"{p}: cannot encode an image with suffix {p.suffix!r}")
    atomic_write(p, enc.tobytes(), overwrite=overwrite)
    return p


def list_images(inputs: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """Expand files, folders (optionally recursive) and glob patterns into a sorted list of image paths.

    Files given explicitly are kept whatever their suffix (so an unsupported one is reported, not silently
    dropped); files found inside folders are kept only with an image suffix.
    """
    import glob

    out: list[Path] = []
    for item in inputs:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            out.extend(sorted(q for q in it if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES))
        elif p.exists():
            out.append(p)
        elif any(ch in s for ch in "*?["):
            out.extend(sorted(Path(m) for m in glob.glob(s, recursive=recursive) if Path(m).is_file()))
        else:
            out.append(p)  # reported as "file not found" by the reader
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def to_jsonable(x):
    """``x`` with NumPy/torch scalars and arrays as plain Python values and non-finite floats as ``None``
    (JSON has no NaN); dict keys become strings."""
    import math

    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):  # numpy arrays/scalars, torch tensors
        return to_jsonable(x.tolist())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` (through :func:`to_jsonable`) as indented UTF-8 JSON, atomically."""
    import json

    return atomic_write(path, json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")

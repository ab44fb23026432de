"""Reading and writing images safely: any common format and bit depth in, uint8 RGB / float alpha out.

Every failure raises :class:`ImageReadError` naming the file and the problem, never a bare OpenCV trace.
Supported: PNG, JPEG, WebP, BMP (and TIFF), 8- or 16-bit, grey / RGB / RGBA; EXIF orientation is honoured.
Writers never overwrite an existing file unless asked, and write atomically (temp file + rename).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from cv2.utils import logging as _cv_log

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


DEFAULT_MAX_PIXELS = 100_000_000
"""Largest image (width x height, read from the file's header before decoding) the readers accept: 100 MP,
about 1.2 GB as float32 RGB. A 32 KB PNG can claim 12000 x 12000 pixels; decoding it without looking would
allocate whatever the header says."""


class ImageReadError(ValueError):
    """An image file could not be used; the message names the file and what is wrong."""


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as a regular file, or None when it can.

    Never opens the file (a FIFO named ``x.png`` would block the reader forever): ``os.stat`` only. The
    answers: ``"file not found"``, ``"symlink loop"`` (or a path too deep), ``"is a folder, not a file"``,
    ``"not a regular file (a FIFO, socket or device)"``, ``"cannot access (<reason>)"``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symlink (its target does not exist)" if os.path.islink(path) else "file not found"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop (the link points back to itself)"
        return f"cannot access ({e.strerror or type(e).__name__})"
    except ValueError as e:  # embedded NUL byte in the name
        return f"not a valid path ({e})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, socket or device)"
    return None


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


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__


_PIL_LIMIT_LOCK = threading.Lock()


def _pil_header(p: Path) -> tuple[int, int, int]:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning, TIFF/EXIF warnings: decided by the caller
        with Image.open(p) as im:
            width, height = (int(v) for v in im.size)
            try:
                orientation = int(im.getexif().get(0x0112, 1) or 1)
            except Exception:  # a broken EXIF block is not a reason to refuse the pixels
                orientation = 1
    return width, height, orientation


def read_header(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int, int]:
    """``(width, height, exif_orientation)`` of an image file, from its header alone (nothing is decoded).

    Uses Pillow's lazy ``Image.open``, which parses only the header (OpenCV has no header-only reader in
    Python). Refuses images over ``max_pixels`` (None: no limit) with :class:`ImageReadError` naming the
    file. Pillow's own decompression-bomb guard refuses headers over ``2 * Image.MAX_IMAGE_PIXELS`` (179 M)
    before we see the size: below the default limit that is the same answer (its pixel count is reported);
    when ``max_pixels`` is larger, the guard is lifted for this one header read (under a lock), since the
    size is checked here.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    pil_limit = Image.MAX_IMAGE_PIXELS
    try:
        if pil_limit is not None and (max_pixels is None or max_pixels > 2 * pil_limit):
            with _PIL_LIMIT_LOCK:
                Image.MAX_IMAGE_PIXELS = None
                try:
                    width, height, orientation = _pil_header(p)
                finally:
                    Image.MAX_IMAGE_PIXELS = pil_limit
        else:
            width, height, orientation = _pil_header(p)
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        shown = f"{int(m.group(1)):,} pixels" if m else "over Pillow's limit"
        raise ImageReadError(f"{p}: image too large ({shown}; limit {max_pixels:,}, see --max-pixels)") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(f"{p}: not a readable image (unrecognised or corrupt {p.suffix} header)") from e
    except Exception as e:  # truncated header, bad chunk, unsupported variant ...
        raise ImageReadError(f"{p}: not a readable image ({type(e).__name__}: {_first_line(e)})") from e
    if width < 1 or height < 1:
        raise ImageReadError(f"{p}: empty image ({width} x {height} pixels)")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"{p}: image too large ({width} x {height} = {width * height:,} pixels; limit {max_pixels:,}, "
            "see --max-pixels)"
        )
    if orientation not in range(1, 9):
        orientation = 1
    return width, height, orientation


def read_raw(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` unchanged (depth and channels kept, OpenCV's BGR(A) order) with EXIF orientation applied.

    Before anything is decoded: the path must be a regular file (:func:`file_problem`), have an image
    suffix, and declare at most ``max_pixels`` pixels in its header (:func:`read_header`). Every failure is
    an :class:`ImageReadError` naming the file.
    """
    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        raise ImageReadError(f"{p}: {problem}")
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageReadError(
            f"{p}: unsupported file type {p.suffix!r} (expected one of {', '.join(IMAGE_SUFFIXES)})"
        )
    if p.stat().st_size == 0:
        raise ImageReadError(f"{p}: file is empty")
    _, _, orientation = read_header(p, max_pixels)
    try:
        buf = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{p}: cannot read file ({e.strerror or type(e).__name__})") from e
    # Silence OpenCV's own log lines for broken data: the error below names the file instead.
    level = _cv_log.getLogLevel()
    _cv_log.setLogLevel(_cv_log.LOG_LEVEL_SILENT)
    try:
        a = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # e.g. a header past OpenCV's own size limit: "(-215:Assertion failed) ..."
        raise ImageReadError(f"{p}: not a readable image (OpenCV refused it: {_first_line(e)})") from e
    finally:
        _cv_log.setLogLevel(level)
    if a is None:
        raise ImageReadError(f"{p}: not a readable image (corrupt or truncated {p.suffix} data)")
    if a.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{p}: unsupported sample type {a.dtype} (expected 8- or 16-bit)")
    if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
        raise ImageReadError(f"{p}: unsupported channel count {a.shape[2]} (expected 1, 3 or 4)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return _apply_orientation(a, orientation)


def _to_unit_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)


def read_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3). Grey is repeated to 3 channels; an alpha channel is dropped;
    16-bit is rounded to 8-bit. Images over ``max_pixels`` are refused before decoding (see :func:`read_raw`)."""
    a = read_raw(path, max_pixels)
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float32) / 257.0).astype(np.uint8)
    if a.ndim == 2:
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.shape[2] != 3:
        raise ImageReadError(f"{path}: unsupported channel count {a.shape[2]}")
    return np.ascontiguousarray(a[:, :, ::-1])


def read_alpha(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an alpha matte as float32 (H, W) in [0, 1].

    A grey file is the matte; an RGBA file gives its alpha channel; an RGB file must be grey in all three
    channels (its first channel is used), otherwise it is refused as not being a matte.
    """
    a = read_raw(path, max_pixels)
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
    if path.is_dir():  # os.replace would fail after the whole write; say so first, in one line
        raise IsADirectoryError(f"{path}: is a folder; refusing to write a file in its place")
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


def _walk_folder(folder: Path, recursive: bool, notes: list[str]) -> list[Path]:
    """Image files in ``folder`` (and, when ``recursive``, its real sub-folders), with a note per item skipped.

    Symlinked sub-folders are not followed (they can loop, or lead outside the folder the user named);
    symlinked files are read like files. Symlink loops, broken links with an image suffix, and FIFOs /
    sockets / devices with an image suffix are skipped with a note each, never silently.
    """
    found: list[Path] = []
    pending = [folder]
    unsearched = 0
    while pending:
        d = pending.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            notes.append(f"skipped folder {d}: cannot list it ({e.strerror or type(e).__name__})")
            continue
        for entry in entries:
            path = Path(entry.path)
            is_image = path.suffix.lower() in IMAGE_SUFFIXES
            try:
                if entry.is_symlink():
                    problem = file_problem(path)
                    if problem is not None and problem.startswith("is a folder"):
                        if recursive:
                            notes.append(
                                f"skipped {path}: symlinked folder (not followed: it could loop or lead outside {folder})"
                            )
                        else:
                            unsearched += 1
                    elif problem is not None and (is_image or problem.startswith("symlink loop")):
                        notes.append(f"skipped {path}: {problem}")
                    elif problem is None and is_image:
                        found.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    if recursive:
                        pending.append(path)
                    else:
                        unsearched += 1
                elif entry.is_file(follow_symlinks=False):
                    if is_image:
                        found.append(path)
                elif is_image:
                    notes.append(f"skipped {path}: not a regular file (a FIFO, socket or device)")
            except OSError as e:
                notes.append(f"skipped {path}: {e.strerror or type(e).__name__}")
    if unsearched:
        notes.append(f"{folder}: {unsearched} sub-folder(s) not searched (pass --recursive to include them)")
    return sorted(found)


def scan_images(inputs: Iterable[str | os.PathLike], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Expand files, folders (optionally recursive) and glob patterns into ``(image paths, notes)``.

    Files given explicitly (or matched by a glob) are kept whatever their suffix or kind, so the reader
    reports an unsupported, missing, looping or non-regular one by name instead of it vanishing; files found
    inside folders are kept only with an image suffix (see :func:`_walk_folder` for what is skipped there,
    each with a note). Sorted per input, duplicates removed.
    """
    import glob

    out: list[Path] = []
    notes: list[str] = []
    for item in inputs:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            out.extend(_walk_folder(p, recursive, notes))
        elif os.path.lexists(p):
            out.append(p)  # a file, or a FIFO / loop / broken link: the reader names the problem
        elif any(ch in s for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(s, recursive=recursive))
            for m in matches:
                if m.is_dir():
                    notes.append(f"skipped {m}: a folder matched by {s!r} (name the folder itself to use it)")
                else:
                    out.append(m)
            if not matches:
                notes.append(f"{s}: no file matches this pattern")
        else:
            out.append(p)  # reported as "file not found" by the reader
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique, notes


def list_images(inputs: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """The image paths of :func:`scan_images` (without its notes on skipped items)."""
    return scan_images(inputs, recursive)[0]


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

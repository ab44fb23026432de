"""Shipping a trained model: ONNX graphs with dynamic batch/height/width, and a small safe weights file.

**ONNX.** :func:`export_onnx` writes a graph with input ``image`` (B, 3, H, W) float32 RGB in [0, 1] and output
``alpha`` (B, 1, H, W) in [0, 1], where B, H and W are all dynamic. torch 2.14's :func:`torch.onnx.export`
uses the ``torch.export`` based exporter by default (``dynamo=True``); it handles timm encoders (ConvNeXt,
MobileNetV2 tested) with ``torch.export.Dim.DYNAMIC`` dimensions. Two traps, both handled here:

1. **Shape branches are frozen at export time.** :class:`~lowlight_matting.models.CVUNet` pads its input to a
   multiple of the encoder stride with ``if ph or pw: F.pad(...)``. Traced on a 64x96 example (no padding
   needed) the exported graph silently contains *no* padding, and at 77x45 it returns wrong numbers (we
   measured errors of 0.29 in alpha). The graph is therefore exported around :class:`PaddedModel`, which
   always pads (reflect, amounts computed symbolically, zero when already aligned) and crops, so the inner
   model only ever sees stride-aligned sizes. This is exactly what :class:`~lowlight_matting.deploy.Matter`
   does before calling the network, so the ONNX graph, ``Matter`` and ``model(x)`` for aligned sizes agree.
   Reflect padding needs the pad to be smaller than the side, so the graph takes H, W >= stride / 2 + 1
   (17 px for stride 32; :func:`min_onnx_side`, stored as ``min_side`` in the metadata); ``Matter`` pads
   small photos itself (OpenCV's reflection works at any size) and takes any size.
2. **Export cost.** The dynamo exporter spends 10-90 s on a 2-core CPU in symbolic shape reasoning, even for
   the tiny test model; the legacy TorchScript exporter (``dynamo=False``, deprecated since torch 2.9) takes
   about a second and handles the padding wrapper too. Both are available (``legacy=True``); if the dynamo
   exporter fails, :func:`export_onnx` says so and falls back to the legacy one unless ``fallback=False``.

The stride, the model config and the format name are stored in the ONNX ``metadata_props``, so
``load_matter("model.onnx")`` can run it with onnxruntime.

**Weights.** :func:`save_weights` writes the model's tensors to a ``.safetensors`` file (a flat table of
tensors: nothing in it can execute code, unlike a pickle) and puts ``model_config`` (JSON) and the format
name :data:`WEIGHTS_FORMAT` in its metadata header; :func:`lowlight_matting.weights.load_model` is
:func:`lowlight_matting.weights.load_model` (the config is validated, the model built with random init, then
the weights loaded). ``dtype="float16"``/``"bfloat16"`` halves the file; loading casts back to float32.

**Loading an ONNX graph** (:func:`load_onnx_session`) checks the file first: a regular file, a readable
protobuf, no external-data references (a graph must not make the runtime open other files), a ``stride``
in the metadata between 1 and :data:`MAX_STRIDE`; every failure is one :class:`ExportError` line naming the
file. Writers go through :func:`lowlight_matting.io.atomic_write` (temp file + rename, the umask's mode).

Example:
    >>> import tempfile, os
    >>> from lowlight_matting.models import build_model
    >>> m = build_model("test_convnext")
    >>> path = save_weights(m, os.path.join(tempfile.mkdtemp(), "m.safetensors"))
    >>> from lowlight_matting.weights import load_model
    >>> load_model(path).config == m.config
    True
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lowlight_matting.io import atomic_write, file_problem
from lowlight_matting.weights import WEIGHTS_FORMAT, is_weights_file

ONNX_FORMAT = "lowlight-matting-onnx/1"
MAX_STRIDE = 256
"""Largest input stride an ONNX graph's metadata may ask for (the course's encoders have 32)."""
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ExportError(RuntimeError, ValueError):
    """Export or loading of an exported model failed; the message names the file and the reason.

    A ``ValueError`` too: a bad file given on the command line is bad input."""


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


def _check_target(p: Path, overwrite: bool) -> None:
    """Refuse an output path that is a folder, or an existing file without ``overwrite``."""
    if p.is_dir():
        raise ExportError(f"{p}: is a folder; give a file name")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p}: exists already (pass overwrite=True / --overwrite to replace it)")


def min_onnx_side(stride: int) -> int:
    """Smallest H or W an exported graph takes: ``stride // 2 + 1``.

    A side h is reflect-padded by ``(-h) mod stride``, and reflection needs the pad to be smaller than the
    side. For h < stride the pad is ``stride - h``, smaller than h only when h > stride / 2; for h >= stride
    the pad is below the stride, hence below h.

    Example:
        >>> min_onnx_side(32)
        17
    """
    return int(stride) // 2 + 1


def save_weights(
    model: torch.nn.Module,
    path: str | os.PathLike,
    dtype: str = "float32",
    overwrite: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model``'s weights and config to a ``.safetensors`` file (atomic; refuses to overwrite).

    Loading (:func:`lowlight_matting.weights.load_model`) casts half-precision
    storage back to float32.

    Args:
        model: a model from :func:`lowlight_matting.models.build_model` (it needs ``model.config``).
        path: output file.
        dtype: ``"float32"`` (default), ``"float16"`` or ``"bfloat16"`` for floating-point tensors.
        overwrite: replace an existing file.
        metadata: extra string entries for the header (e.g. training run, metrics).
    """
    from safetensors.torch import save_file

    config = getattr(model, "config", None)
    if not config:
        raise ExportError("save_weights: the model has no .config (build it with models.build_model)")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    p = Path(path)
    _check_target(p, overwrite)
    cast = _DTYPES[dtype]
    tensors = {
        k: (v.detach().to("cpu", cast) if v.is_floating_point() else v.detach().cpu()).contiguous().clone()
        for k, v in model.state_dict().items()
    }
    meta = {"format": WEIGHTS_FORMAT, "model_config": json.dumps(config), "dtype": dtype}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return atomic_write(p, lambda tmp: save_file(tensors, tmp, metadata=meta), overwrite=overwrite)


def read_weights_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata header of a weights file (format, model_config as JSON text, dtype, ...)."""
    from safetensors import safe_open

    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        raise ExportError(f"{p}: weights {problem}")
    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:
        raise ExportError(f"{p}: not a readable safetensors file ({_first_line(e)})") from e


# ----------------------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------------------


class PaddedModel(torch.nn.Module):
    """``model`` with its input always reflect-padded to a multiple of ``stride`` and the output cropped back.

    Unconditional padding (zero amounts when aligned) keeps the exported graph valid for every size: no Python
    branch on the shape is frozen at export time. ``forward(x)`` → alpha (B, 1, H, W) like the model.
    """

    def __init__(self, model: torch.nn.Module, stride: int):
        super().__init__()
        self.model = model
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph = (self.stride - h % self.stride) % self.stride
        pw = (self.stride - w % self.stride) % self.stride
        y = self.model(F.pad(x, (0, pw, 0, ph), mode="reflect"))
        if isinstance(y, dict):
            y = y["alpha"]
        return y[:, :, :h, :w]


def _quiet():
    """Silence the exporters' progress prints and warnings (they go to stdout/stderr by default)."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def export_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike,
    example_size: tuple[int, int] = (64, 96),
    opset: int | None = None,
    legacy: bool = False,
    fallback: bool = True,
    overwrite: bool = False,
    verbose: bool = False,
) -> Path:
    """Export ``model`` to ONNX with dynamic batch, height and width (see the module docstring).

    Args:
        model: a CV-UNet (its ``stride`` gives the padding multiple).
        path: output ``.onnx`` file (weights inside the file, not in a side ``.data`` file).
        example_size: (H, W) of the example input used for tracing (batch 2, so the batch stays dynamic).
        opset: ONNX opset (default: the exporter's; 17 for the legacy exporter).
        legacy: use the TorchScript exporter (fast, deprecated) instead of the dynamo one.
        fallback: if the dynamo exporter fails, retry with the legacy one (with a warning).
        overwrite: replace an existing file.
        verbose: let the exporter print its progress.

    Returns:
        the path written. Metadata ``format``, ``stride``, ``min_side``, ``model_config`` and ``exporter``
        are stored.
    """
    p = Path(path)
    _check_target(p, overwrite)
    stride = int(model.stride)
    if min(example_size) < min_onnx_side(stride):
        raise ValueError(
            f"example_size {example_size}: sides must be >= {min_onnx_side(stride)} for stride {stride}"
        )
    model = model.eval().cpu()
    wrapped = PaddedModel(model, stride).eval()
    x = torch.rand(2, 3, *example_size, generator=torch.Generator().manual_seed(0))
    used = ["legacy" if legacy else "dynamo"]

    def write(tmp: str) -> None:
        ctx = contextlib.nullcontext() if verbose else _quiet()
        with ctx, torch.no_grad():
            if not legacy:
                try:
                    _export_dynamo(wrapped, x, Path(tmp), opset, verbose)
                except Exception as e:
                    if not fallback:
                        raise ExportError(f"{p}: dynamo ONNX export failed ({_first_line(e)})") from e
                    warnings.warn(
                        f"dynamo ONNX export failed ({type(e).__name__}); using the legacy TorchScript exporter",
                        stacklevel=3,
                    )
                    used[0] = "legacy"
            if used[0] == "legacy":
                _export_legacy(wrapped, x, Path(tmp), opset, verbose)
        _write_metadata(
            Path(tmp),
            {
                "format": ONNX_FORMAT,
                "stride": str(stride),
                "min_side": str(min_onnx_side(stride)),
                "model_config": json.dumps(getattr(model, "config", {}) or {}),
                "exporter": used[0],
            },
        )

    return atomic_write(p, write, overwrite=overwrite)


def _export_dynamo(
    wrapped: torch.nn.Module, x: torch.Tensor, path: Path, opset: int | None, verbose: bool
) -> None:
    dyn = torch.export.Dim.DYNAMIC
    program = torch.onnx.export(
        wrapped,
        (x,),
        None,
        dynamo=True,
        input_names=["image"],
        output_names=["alpha"],
        dynamic_shapes={"x": {0: dyn, 2: dyn, 3: dyn}},
        opset_version=opset,
        external_data=False,
        verbose=verbose,
    )
    program.save(str(path), external_data=False)


def _export_legacy(
    wrapped: torch.nn.Module, x: torch.Tensor, path: Path, opset: int | None, verbose: bool
) -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        wrapped,
        (x,),
        str(path),
        dynamo=False,
        input_names=["image"],
        output_names=["alpha"],
        dynamic_axes={"image": axes, "alpha": axes},
        opset_version=opset or 17,
        verbose=verbose,
    )


def _write_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    existing = {m.key: m for m in proto.metadata_props}
    for k, v in meta.items():
        entry = existing.get(k) or proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))


def _tensors_of(graph) -> list:
    """Every TensorProto of a graph: initializers and node attributes, subgraphs included."""
    out = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                out.append(attr.t)
            out.extend(attr.tensors)
            if attr.HasField("g"):
                out.extend(_tensors_of(attr.g))
            for g in attr.graphs:
                out.extend(_tensors_of(g))
    return out


def _read_onnx(path: str | os.PathLike):
    """``(bytes, ModelProto)`` of an ONNX file, checked: a regular file, a readable protobuf, no tensor
    stored in an external file. :class:`ExportError` naming the file otherwise."""
    import onnx

    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        raise ExportError(f"{p}: ONNX {problem}")
    data = p.read_bytes()
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise ExportError(f"{p}: not a readable ONNX file ({_first_line(e)})") from e
    if not proto.graph.node and not proto.graph.output:
        raise ExportError(f"{p}: not a readable ONNX file (no graph)")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in _tensors_of(proto.graph)):
        raise ExportError(
            f"{p}: the graph keeps tensors in external files; refusing (export with the weights inside)"
        )
    return data, proto


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (``stride``, ``model_config``, ``format`` ...)."""
    _, proto = _read_onnx(path)
    return {m.key: m.value for m in proto.metadata_props}


def onnx_stride(meta: dict[str, str], path: str | os.PathLike = "onnx") -> int:
    """The ``stride`` entry of an ONNX graph's metadata (32 when absent), checked to be an integer in
    [1, :data:`MAX_STRIDE`]: it decides how far photos are padded, so a file must not choose it freely."""
    raw = meta.get("stride", "32")
    try:
        stride = int(raw)
    except (TypeError, ValueError):
        stride = 0
    if not 1 <= stride <= MAX_STRIDE:
        raise ExportError(f"{path}: metadata stride {raw!r:.40} is not an integer in [1, {MAX_STRIDE}]")
    return stride


def load_onnx_session(path: str | os.PathLike, providers: Sequence[str] | None = None):
    """An onnxruntime ``InferenceSession`` for ``path`` and its metadata; CPU unless ``providers`` given.

    The file is checked first (:func:`_read_onnx`, :func:`onnx_stride`); the session is built from the bytes
    read, so the runtime opens no other file. Every failure is one :class:`ExportError` line naming the file.
    """
    p = Path(path)
    data, proto = _read_onnx(p)
    meta = {m.key: m.value for m in proto.metadata_props}
    onnx_stride(meta, p)
    weights = {t.name for t in proto.graph.initializer}
    if not [i for i in proto.graph.input if i.name not in weights] or not proto.graph.output:
        raise ExportError(f"{p}: the graph has no image input or no alpha output")
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a dev dependency
        raise ExportError("onnxruntime is not installed (pip install onnxruntime)") from e
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as e:  # InvalidGraph, InvalidProtobuf, NotImplemented, Fail ...
        raise ExportError(f"{p}: onnxruntime cannot load this graph ({_first_line(e)})") from e
    return session, meta


def compare_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike,
    sizes: Sequence[tuple[int, int, int]] = ((1, 64, 96), (2, 77, 45)),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run the ONNX graph with onnxruntime and the PyTorch model on random inputs of each (B, H, W) in
    ``sizes``; returns one dict per size with ``max_abs_diff``, ``mean_abs_diff`` and both run times (s).

    The PyTorch reference is ``PaddedModel(model)`` (identical to ``model(x)`` for stride-aligned sizes).
    """
    session, meta = load_onnx_session(path)
    ref = PaddedModel(model.eval().cpu(), onnx_stride(meta, path)).eval()
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b, h, w in sizes:
        x = torch.rand(b, 3, h, w, generator=g)
        t0 = time.perf_counter()
        with torch.no_grad():
            y_t = ref(x).numpy()
        t1 = time.perf_counter()
        (y_o,) = session.run(["alpha"], {"image": x.numpy()})
        t2 = time.perf_counter()
        if y_o.shape != y_t.shape:
            raise ExportError(
                f"{path}: ONNX output shape {y_o.shape} != PyTorch {y_t.shape} for input {tuple(x.shape)}"
            )
        d = np.abs(y_o.astype(np.float64) - y_t)
        rows.append(
            {
                "input": (b, 3, h, w),
                "max_abs_diff": float(d.max()),
                "mean_abs_diff": float(d.mean()),
                "torch_s": t1 - t0,
                "onnxruntime_s": t2 - t1,
            }
        )
    return rows


__all__ = [
    "MAX_STRIDE",
    "ONNX_FORMAT",
    "WEIGHTS_FORMAT",
    "ExportError",
    "PaddedModel",
    "compare_onnx",
    "export_onnx",
    "is_weights_file",
    "load_onnx_session",
    "min_onnx_side",
    "onnx_metadata",
    "onnx_stride",
    "read_weights_metadata",
    "save_weights",
]

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
   (Reflect padding needs H, W >= stride / 2 + 1; ``Matter`` feeds aligned sizes and never hits it.)
2. **Export cost.** The dynamo exporter spends 10-90 s on a 2-core CPU in symbolic shape reasoning, even for
   the tiny test model; the legacy TorchScript exporter (``dynamo=False``, deprecated since torch 2.9) takes
   about a second and handles the padding wrapper too. Both are available (``legacy=True``); if the dynamo
   exporter fails, :func:`export_onnx` says so and falls back to the legacy one unless ``fallback=False``.

The stride, the model config and the format name are stored in the ONNX ``metadata_props``, so
``load_matter("model.onnx")`` can run it with onnxruntime.

**Weights.** :func:`save_weights` writes the model's tensors to a ``.safetensors`` file (a flat table of
tensors: nothing in it can execute code, unlike a pickle) and puts ``model_config`` (JSON) and the format
name :data:`WEIGHTS_FORMAT` in its metadata header; :func:`load_weights` rebuilds the model from it with
``models.build_model(**model_config)``. ``dtype="float16"``/``"bfloat16"`` halves the file; loading casts
back to float32.

Example:
    >>> import tempfile, os
    >>> from lowlight_matting.models import build_model
    >>> m = build_model("test_convnext")
    >>> path = save_weights(m, os.path.join(tempfile.mkdtemp(), "m.safetensors"))
    >>> load_weights(path).config == m.config
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

WEIGHTS_FORMAT = "lowlight-matting-weights/1"
ONNX_FORMAT = "lowlight-matting-onnx/1"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ExportError(RuntimeError):
    """Export or loading of an exported model failed; the message names the file and the reason."""


# ----------------------------------------------------------------------------------------------------------
# safetensors weights
# ----------------------------------------------------------------------------------------------------------


def is_weights_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a safetensors file (by suffix, or by its header: 8-byte length then ``{``)."""
    p = Path(path)
    if p.suffix.lower() == ".safetensors":
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def save_weights(
    model: torch.nn.Module,
    path: str | os.PathLike,
    dtype: str = "float32",
    overwrite: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model``'s weights and config to a ``.safetensors`` file (atomic; refuses to overwrite).

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
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p}: exists already (pass overwrite=True / --overwrite to replace it)")
    cast = _DTYPES[dtype]
    tensors = {
        k: (v.detach().to("cpu", cast) if v.is_floating_point() else v.detach().cpu()).contiguous().clone()
        for k, v in model.state_dict().items()
    }
    meta = {"format": WEIGHTS_FORMAT, "model_config": json.dumps(config), "dtype": dtype}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def read_weights_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata header of a weights file (format, model_config as JSON text, dtype, ...)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"{p}: weights file not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:
        raise ExportError(f"{p}: not a readable safetensors file ({type(e).__name__}: {e})") from e


def load_weights(path: str | os.PathLike, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild the model saved by :func:`save_weights` (eval mode, float32)."""
    from safetensors.torch import load_file

    from lowlight_matting.models import build_model

    p = Path(path)
    meta = read_weights_metadata(p)
    if meta.get("format") != WEIGHTS_FORMAT or "model_config" not in meta:
        raise ExportError(
            f"{p}: not a lowlight-matting weights file (format {meta.get('format')!r}; expected {WEIGHTS_FORMAT!r} "
            "with a model_config entry). A plain state dict can be loaded into a model built by hand."
        )
    config = dict(json.loads(meta["model_config"]))
    config["pretrained"] = None
    model = build_model(**config)
    state = load_file(str(p), device=str(map_location))
    try:
        model.load_state_dict(state)  # copies (and casts) into the float32 parameters
    except RuntimeError as e:
        raise ExportError(f"{p}: weights do not fit the model it describes ({e})") from e
    return model.eval()


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
        model: a CV-UNet (its ``stride`` / ``encoder.reductions`` give the padding multiple).
        path: output ``.onnx`` file (weights inside the file, not in a side ``.data`` file).
        example_size: (H, W) of the example input used for tracing (batch 2, so the batch stays dynamic).
        opset: ONNX opset (default: the exporter's; 17 for the legacy exporter).
        legacy: use the TorchScript exporter (fast, deprecated) instead of the dynamo one.
        fallback: if the dynamo exporter fails, retry with the legacy one (with a warning).
        overwrite: replace an existing file.
        verbose: let the exporter print its progress.

    Returns:
        the path written. Metadata ``format``, ``stride``, ``model_config`` and ``exporter`` are stored.
    """
    from lowlight_matting.deploy import model_stride

    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p}: exists already (pass overwrite=True / --overwrite to replace it)")
    stride = model_stride(model)
    model = model.eval().cpu()
    wrapped = PaddedModel(model, stride).eval()
    x = torch.rand(2, 3, *example_size, generator=torch.Generator().manual_seed(0))
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    exporter = "legacy" if legacy else "dynamo"
    ctx = contextlib.nullcontext() if verbose else _quiet()
    try:
        with ctx, torch.no_grad():
            if not legacy:
                try:
                    _export_dynamo(wrapped, x, tmp, opset, verbose)
                except Exception as e:
                    if not fallback:
                        raise ExportError(f"{p}: dynamo ONNX export failed ({type(e).__name__}: {e})") from e
                    warnings.warn(
                        f"dynamo ONNX export failed ({type(e).__name__}); using the legacy TorchScript exporter",
                        stacklevel=2,
                    )
                    exporter = "legacy"
            if exporter == "legacy":
                _export_legacy(wrapped, x, tmp, opset, verbose)
        _write_metadata(
            tmp,
            {
                "format": ONNX_FORMAT,
                "stride": str(stride),
                "model_config": json.dumps(getattr(model, "config", {}) or {}),
                "exporter": exporter,
            },
        )
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


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


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (``stride``, ``model_config``, ``format`` ...)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {m.key: m.value for m in proto.metadata_props}


def load_onnx_session(path: str | os.PathLike, providers: Sequence[str] | None = None):
    """An onnxruntime ``InferenceSession`` for ``path`` and its metadata; CPU unless ``providers`` given."""
    p = Path(path)
    if not p.is_file():
        raise ExportError(f"{p}: ONNX file not found")
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a dev dependency
        raise ExportError("onnxruntime is not installed (pip install onnxruntime)") from e
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(p), opts, providers=list(providers or ["CPUExecutionProvider"]))
    return session, onnx_metadata(p)


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
    from lowlight_matting.deploy import model_stride

    session, meta = load_onnx_session(path)
    ref = PaddedModel(model.eval().cpu(), int(meta.get("stride", model_stride(model)))).eval()
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
    "ONNX_FORMAT",
    "WEIGHTS_FORMAT",
    "ExportError",
    "PaddedModel",
    "compare_onnx",
    "export_onnx",
    "is_weights_file",
    "load_onnx_session",
    "load_weights",
    "onnx_metadata",
    "read_weights_metadata",
    "save_weights",
]

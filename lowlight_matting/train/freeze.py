"""Freezing parts of a CV-UNet for staged fine-tuning: gradients off AND normalisation statistics fixed.

Setting ``requires_grad=False`` stops the weights of a part from changing, but not its BatchNorm running
mean/variance: those are updated by every forward pass in training mode, so a "frozen" encoder still drifts
towards the statistics of the new (dark) data -- and then no longer matches the weights that were trained on
the old ones. :func:`apply_freeze` therefore also keeps the normalisation layers of frozen parts in eval
mode: their ``train`` method is replaced (on the instance) by one that always selects eval mode, so it
holds whatever calls ``model.train()`` (the training loop, DDP, ``torch.compile`` wrappers).

Specs name parts of a :class:`~lowlight_matting.models.CVUNet`:

=========================  ======================================================
``"llie"``                 the low-light enhancement module (ignored when absent)
``"encoder"``              the whole encoder
``"encoder.stages[:3]"``   the first three encoder stages (any Python slice/index)
``"decoder"``              the decoder
``"head"``                 the output head
``"all_but_head"``         everything except the head (the article's stage 1)
``"all_but_llie"``         everything except the LLIE (its pre-training)
``"norm_stats"``           only the running statistics of every normalisation layer; their weights and
                           biases keep training (mmcv's ``norm_eval``)
=========================  ======================================================

``"norm_stats"`` is for fine-tuning on a mixture the base never saw: batches of 16 with half of them darkened
move every BatchNorm's running mean/variance away from the normal-light statistics the base was trained with,
and the model then matters normal-light photos worse. Holding them (and letting the affine weights adapt)
is the usual cure for small-batch fine-tuning (e.g. mmdetection's ``norm_eval=True``, Detectron2's
``FrozenBatchNorm2d``).

Example:
    >>> from torch import nn
    >>> m = nn.Module(); m.llie = None
    >>> m.encoder = nn.Module(); m.encoder.stages = nn.ModuleList([nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)])
    >>> m.decoder = nn.Conv2d(4, 4, 1); m.head = nn.Conv2d(4, 1, 1)
    >>> summary = apply_freeze(m, ["encoder.stages[:1]", "decoder"])
    >>> summary["frozen"], summary["trainable"]
    (36, 13)
"""

from __future__ import annotations

import re
import types
import weakref
from collections.abc import Iterable, Sequence

from torch import nn

__all__ = [
    "PARTS",
    "apply_freeze",
    "frozen_modules",
    "parameter_counts",
    "parse_spec",
    "trainable_parameters",
]

PARTS = ("llie", "encoder", "decoder", "head")
_SPEC = re.compile(
    r"^(llie|encoder|decoder|head|all_but_head|all_but_llie|norm_stats)(?:\.stages\[(-?\d*)(?::(-?\d*))?\])?$"
)

# model -> the normalisation layers held in eval mode (weak: nothing is kept alive)
_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def parse_spec(spec: str) -> tuple[str, slice | int | None]:
    """``"encoder.stages[:3]"`` -> ``("encoder", slice(None, 3))``; ``"head"`` -> ``("head", None)``.

    Raises ``ValueError`` with the accepted forms for anything else.
    """
    if not isinstance(spec, str):
        raise ValueError(f"freeze spec must be a string, got {spec!r}")
    m = _SPEC.match(spec.replace(" ", ""))
    if not m:
        raise ValueError(
            f"unknown freeze spec {spec!r}; use one of llie, encoder, encoder.stages[:k], encoder.stages[i], "
            "decoder, head, all_but_head, all_but_llie, norm_stats"
        )
    part, start, stop = m.group(1), m.group(2), m.group(3)
    if start is None:
        return part, None
    if part != "encoder":
        raise ValueError(f"freeze spec {spec!r}: only the encoder has stages")
    if stop is None and ":" not in spec:
        if start in ("", "-"):
            raise ValueError(f"freeze spec {spec!r}: empty stage index")
        return part, int(start)
    to_int = lambda s: int(s) if s not in (None, "", "-") else None  # noqa: E731
    return part, slice(to_int(start), to_int(stop))


def _resolve(model: nn.Module, spec: str) -> list[nn.Module]:
    part, index = parse_spec(spec)
    if part == "norm_stats":
        return []  # no parameters: apply_freeze holds the statistics
    if part.startswith("all_but_"):
        keep = part.removeprefix("all_but_")
        if keep == "llie" and getattr(model, "llie", None) is None:
            raise ValueError(f"freeze spec {spec!r}: the model has no LLIE to keep trainable")
        names = [n for n in PARTS if n != keep]
        return [m for name in names if (m := getattr(model, name, None)) is not None]
    module = getattr(model, part, None)
    if module is None:
        if part == "llie":
            return []  # a model without LLIE has nothing to freeze there
        raise ValueError(f"freeze spec {spec!r}: the model has no {part!r} part")
    if index is None:
        return [module]
    stages = getattr(module, "stages", None)
    if stages is None:
        raise ValueError(f"freeze spec {spec!r}: model.encoder has no 'stages' list")
    try:
        picked = stages[index]
    except IndexError:
        raise ValueError(f"freeze spec {spec!r}: the encoder has only {len(stages)} stages") from None
    return list(picked) if isinstance(index, slice) else [picked]


def _stay_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """Replaces ``train`` on a frozen normalisation layer: whatever ``mode`` is asked, stay in eval mode."""
    return nn.Module.train(self, False)


def _release(model: nn.Module) -> None:
    state = _STATE.pop(model, None)
    if state:
        for module in state["norms"]:
            if "train" in module.__dict__:
                del module.__dict__["train"]


def apply_freeze(model: nn.Module, specs: Iterable[str]) -> dict[str, int]:
    """Freeze exactly the parts named by ``specs`` (everything else becomes trainable again).

    Frozen parts: ``requires_grad=False`` on their parameters, and their normalisation layers with running
    statistics (BatchNorm, SyncBatchNorm, InstanceNorm with ``track_running_stats``) held in eval mode even
    after ``model.train()``; ``"norm_stats"`` holds every such layer of the model (parameters untouched).
    Calling it again (next stage) first undoes the previous freeze.

    Returns ``{"frozen": n, "trainable": n}`` parameter counts (elements, not tensors).
    """
    specs = list(specs)
    modules = [m for spec in specs for m in _resolve(model, spec)]
    _release(model)
    model.requires_grad_(True)
    for module in modules:
        module.requires_grad_(False)
    held = [model] if any(parse_spec(s)[0] == "norm_stats" for s in specs) else modules
    norms: dict[int, nn.Module] = {}
    for module in held:
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._NormBase) and sub.track_running_stats:
                sub.__dict__["train"] = types.MethodType(_stay_eval, sub)  # found before nn.Module.train
                sub.eval()
                norms[id(sub)] = sub
    _STATE[model] = {"norms": list(norms.values()), "specs": specs}
    return {"frozen": _count(model, False), "trainable": _count(model, True)}


def frozen_modules(model: nn.Module) -> list[nn.Module]:
    """The normalisation layers :func:`apply_freeze` holds in eval mode for ``model``."""
    return list(_STATE.get(model, {}).get("norms", []))


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters with ``requires_grad`` (what the optimizer should hold), in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def _count(model: nn.Module, trainable: bool) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad == trainable)


def parameter_counts(model: nn.Module, parts: Sequence[str] = PARTS) -> dict[str, dict[str, int]]:
    """Per part: ``{"trainable": n, "frozen": n}`` parameter elements (parts missing from the model skipped),
    plus ``"total"``."""
    out: dict[str, dict[str, int]] = {}
    for name in parts:
        module = getattr(model, name, None)
        if module is None:
            continue
        ps = list(module.parameters())
        out[name] = {
            "trainable": sum(p.numel() for p in ps if p.requires_grad),
            "frozen": sum(p.numel() for p in ps if not p.requires_grad),
        }
    out["total"] = {"trainable": _count(model, True), "frozen": _count(model, False)}
    return out

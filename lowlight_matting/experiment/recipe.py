"""The demo's ingredients: which base model, which fine-tune config, and the ablation's variants of it.

Every fine-tune of the demo is a :class:`~lowlight_matting.train.TrainConfig` from the one preset registry
(:data:`lowlight_matting.train.PRESETS`), run by :func:`lowlight_matting.train.train` -- the same function
``lowlight-matting train --config`` calls, so each run folder's ``config.yaml`` reruns it from the command
line. The ablation removes one ingredient at a time by editing that config (:func:`apply_ingredients`).

Example:
    >>> cfg = finetune_config("quick", seed=0, out_dir="/tmp/demo/runs")
    >>> cfg.model.init_checkpoint, [s.name for s in cfg.stages]
    ('cvunet-base', ['llie', 'head', 'partial', 'full'])
    >>> noll = apply_ingredients(cfg, Ingredients(llie=False))
    >>> noll.model.llie, [s.name for s in noll.stages]
    (None, ['head', 'partial', 'full'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lowlight_matting.train import StageConfig, TrainConfig, preset

__all__ = [
    "ABLATIONS",
    "DEMOS",
    "Demo",
    "Ingredients",
    "apply_ingredients",
    "base_config",
    "finetune_config",
]


@dataclass(frozen=True)
class Demo:
    """One size of the experiment: where its base model comes from and which fine-tune it runs.

    ``base``: a shipped model name (``cvunet-base``: evaluated as it is) or a preset name of the registry
    (trained first, from scratch). ``finetune``: a preset name. ``n_test``: images per test set.
    """

    base: str
    finetune: str
    n_test: int = 200


DEMOS: dict[str, Demo] = {
    "quick": Demo(base="cvunet-base", finetune="demo_quick"),
    "gpu": Demo(base="cvunet-base", finetune="demo_gpu"),
    "full": Demo(base="cvunet-base", finetune="demo_full"),
    "scratch": Demo(base="scratch_base", finetune="scratch_lowlight"),
    "fast": Demo(base="fast_base", finetune="fast_lowlight", n_test=4),
}
"""The demo's sizes (``lowlight-matting demo --preset NAME``; ``--from-scratch`` runs ``scratch``). The names
on the right are entries of :data:`lowlight_matting.train.PRESETS` or shipped models."""


@dataclass(frozen=True)
class Ingredients:
    """What the fine-tune uses; the ablation turns one off at a time."""

    lowlight_data: bool = True  # darkened samples in the matting stages (False: normal light only)
    llie: bool = True  # a Zero-DCE++ front end
    llie_pretrain: bool = True  # the LLIE's pre-training stage (False: it starts as the identity)
    dynamic: bool = True  # brightness-dependent edge weight
    ssim_edge: bool = True  # SSIM + Sobel edge terms (False: MSE only)
    staged: bool = True  # three matting stages (False: one stage, everything trainable, same steps)
    mixed: bool = True  # normal-light samples mixed in (False: every sample darkened)
    norm_stats: bool = True  # BatchNorm statistics held at the base's (False: updated, as in the article)
    distill: bool = True  # normal-light samples also learn the base's prediction (False: as in the article)


ABLATIONS: tuple[tuple[str, Ingredients], ...] = (
    ("full recipe", Ingredients()),
    ("no LLIE", Ingredients(llie=False)),
    ("LLIE not pre-trained", Ingredients(llie_pretrain=False)),
    ("no dynamic weight", Ingredients(dynamic=False)),
    ("no SSIM/edge terms (MSE only)", Ingredients(ssim_edge=False)),
    ("single stage instead of three", Ingredients(staged=False)),
    ("low-light data only (no normal mix)", Ingredients(mixed=False)),
    ("BatchNorm statistics updated (as in the article)", Ingredients(norm_stats=False)),
    ("no distillation on normal light (as in the article)", Ingredients(distill=False)),
    ("control: same steps, normal light only", Ingredients(lowlight_data=False)),
)
"""The ablation's variants: the full recipe, each ingredient removed in turn, and a longer-training control."""


def _demo(name: str) -> Demo:
    if name not in DEMOS:
        raise ValueError(f"preset: unknown demo preset {name!r}; choose one of {', '.join(DEMOS)}")
    return DEMOS[name]


def base_config(name: str, *, seed: int, out_dir: str) -> TrainConfig | None:
    """The config that trains the base model of demo ``name`` (None when the base is a shipped model)."""
    demo = _demo(name)
    if demo.base.startswith("cvunet-"):
        return None
    return preset(demo.base, [f"seed={seed}", f"out_dir={out_dir}", "name=base"])


def finetune_config(
    name: str, *, seed: int, out_dir: str, base: str | None = None, device: str = "auto"
) -> TrainConfig:
    """The fine-tune of demo ``name`` starting from ``base`` (default: the demo's own base), as a config."""
    demo = _demo(name)
    cfg = preset(demo.finetune, [f"seed={seed}", f"out_dir={out_dir}", "name=finetune", f"device={device}"])
    cfg.model.init_checkpoint = base or (demo.base if demo.base.startswith("cvunet-") else None)
    return cfg


def apply_ingredients(cfg: TrainConfig, ing: Ingredients) -> TrainConfig:
    """A copy of the fine-tune ``cfg`` with the ingredients ``ing`` switched off."""
    out = TrainConfig.from_dict(cfg.to_dict())
    stages = list(out.stages)
    matting = [s for s in stages if s.objective == "matting"]
    if not ing.llie or not ing.llie_pretrain:
        stages = [s for s in stages if s.objective != "llie"]
    if not ing.llie:
        out.model.llie = None
        for s in stages:
            s.freeze_llie_after = None
    if not ing.staged:
        total = sum(s.steps for s in matting) if all(s.steps is not None for s in matting) else None
        one = StageConfig(
            name="single",
            lr=matting[0].lr,
            freeze=[f for f in matting[-1].freeze if f == "norm_stats"],
            steps=total,
            epochs=sum(s.epochs for s in matting),
            freeze_llie_after=matting[-1].freeze_llie_after if out.model.llie else None,
        )
        stages = [s for s in stages if s.objective != "matting"] + [one]
    if not ing.norm_stats:
        for s in stages:
            s.freeze = [f for f in s.freeze if f != "norm_stats"]
    out.stages = stages
    if not ing.ssim_edge:
        out.loss = dataclasses.replace(out.loss, ssim=0.0, edge=0.0, dynamic=False)
    elif not ing.dynamic:
        out.loss.dynamic = False
    if not ing.distill:
        out.loss.distill = 0.0
    if not ing.lowlight_data:
        out.data.p_lowlight = 0.0
    elif not ing.mixed:
        out.data.p_lowlight = 1.0
    return out.validate()

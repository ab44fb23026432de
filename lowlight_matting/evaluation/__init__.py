"""Evaluate matting models as the field does, and report it in the article's shape.

The article's only evidence is one table (MSE 0.032 → 0.018, SAD 48.7 → 31.4, Gradient 28.5 → 19.3,
Connectivity 35.2 → 24.1 on "LL-Matte-Test, N = 200") and a visual comparison it could not show. This package
produces both from real runs, with the metric conventions written next to the numbers. One module per job:

- :mod:`.predict` — test sets (:func:`make_test_sets`: normal light and the same images through the low-light
  simulator, or a folder), trimaps, models from any shipped format (:func:`load_models`: ``.pt``,
  ``.safetensors``, ``.onnx``, shipped names) and their alphas (:func:`predict_alphas`);
- :mod:`.stats` — :func:`summarize`, :func:`relative_change`, :func:`bootstrap_relative_change`,
  :func:`brightness_bins` (the dark bins are those below ``color.DARK_THRESHOLD``),
  :func:`switch_by_brightness` (two models as the brightness switch deploys them), :func:`hardest`;
- :mod:`.report` — the one formatter (:func:`format_metric`, :func:`format_change`, :func:`metrics_table`),
  :func:`comparison_table`, :func:`brightness_table`, :func:`conventions`, ``summary.md``, the per-image CSV;
- :mod:`.plots` — :func:`plot_hardest` (input / truth / alphas / errors, zoomed on hair),
  :func:`plot_brightness`;
- :mod:`.run` — :func:`evaluate_models` (per-image records) and :func:`evaluate_checkpoints` (everything,
  what ``lowlight-matting evaluate`` runs).

Metrics are those of :mod:`lowlight_matting.metrics` (Deep Image Matting reference definitions; SAD/Grad/Conn
÷ 1000, MSE raw, shown ×10³ only when ``mse_scale=1000`` and then labelled), over the whole image (trimap-free
convention: ``trimap=None``) or the unknown region of a trimap (Composition-1k convention: ``trimap="auto"``).

Example:
    >>> from lowlight_matting.models import build_model
    >>> from lowlight_matting.evaluation import make_test_sets, evaluate_checkpoints
    >>> sets = make_test_sets("synthetic", lowlight=True, n=2, size=64, seed=0)  # doctest: +SKIP
    >>> models = {"baseline": build_model("test_convnext"), "other": build_model("test_convnext")}  # doctest: +SKIP
    >>> res = evaluate_checkpoints(models, sets, out_dir="/tmp/eval", progress=False)  # doctest: +SKIP
    >>> print(res["tables"]["lowlight"])  # doctest: +SKIP
"""

from lowlight_matting.evaluation.plots import (
    plot_brightness,
    plot_hardest,
    zoom_box,
)
from lowlight_matting.evaluation.predict import (
    MODEL_SUFFIXES,
    TrimapSpec,
    auto_trimap_kernel,
    batches,
    is_model_path,
    item_names,
    load_models,
    make_test_sets,
    predict_alphas,
    trimap_lookup,
    unique_names,
)
from lowlight_matting.evaluation.report import (
    ARTICLE,
    ARTICLE_TABLE,
    CSV_FIELDS,
    METRIC_TITLES,
    brightness_table,
    comparison_table,
    conventions,
    format_change,
    format_metric,
    metric_title,
    metrics_table,
    read_csv,
    write_csv,
    write_report,
)
from lowlight_matting.evaluation.run import (
    OUTPUT_FILES,
    evaluate_checkpoints,
    evaluate_model,
    evaluate_models,
)
from lowlight_matting.evaluation.stats import (
    BRIGHTNESS_EDGES,
    METRICS,
    bin_by_brightness,
    bin_label,
    bootstrap_relative_change,
    brightness_bins,
    hardest,
    is_dark_bin,
    relative_change,
    relative_changes,
    summarize,
    switch_by_brightness,
)

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
    "METRICS",
    "BRIGHTNESS_EDGES",
    "summarize",
    "relative_change",
    "relative_changes",
    "bootstrap_relative_change",
    "bin_label",
    "is_dark_bin",
    "bin_by_brightness",
    "brightness_bins",
    "switch_by_brightness",
    "hardest",
    "METRIC_TITLES",
    "ARTICLE",
    "ARTICLE_TABLE",
    "CSV_FIELDS",
    "format_change",
    "format_metric",
    "metric_title",
    "metrics_table",
    "comparison_table",
    "brightness_table",
    "conventions",
    "write_csv",
    "read_csv",
    "write_report",
    "zoom_box",
    "plot_hardest",
    "plot_brightness",
    "OUTPUT_FILES",
    "evaluate_models",
    "evaluate_model",
    "evaluate_checkpoints",
]

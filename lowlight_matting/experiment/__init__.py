"""The main job: the article's experiment end to end (``lowlight-matting demo``, ``make demo``).

:mod:`.recipe` (which base, which fine-tune config, the ablation's variants), :mod:`.run` (orchestration),
:mod:`.analysis` (what a run's numbers show: verdict, intervals, headroom, the switched pair, the
weight line), :mod:`.report` (tables, Markdown), :mod:`.seeds` (several seeds) and
:mod:`.figures` (PNGs).
"""

from lowlight_matting.experiment.analysis import (
    NORMAL_TOLERANCE,
    confidence_intervals,
    headroom,
    switched,
    tradeoff_rows,
    verdict,
)
from lowlight_matting.experiment.figures import plot_comparison_grid, plot_loss_curves
from lowlight_matting.experiment.recipe import (
    ABLATIONS,
    DEMOS,
    Demo,
    Ingredients,
    apply_ingredients,
    base_config,
    finetune_config,
)
from lowlight_matting.experiment.report import ARTICLE, METRIC_TITLES, METRICS, render_ablation, render_report
from lowlight_matting.experiment.run import (
    MARKER,
    TEST_SEED,
    TEST_SIM_SEED,
    TestSets,
    evaluate_on,
    make_test_sets,
    run_ablation,
    run_experiment,
    run_seeds,
    weight_tradeoff,
)
from lowlight_matting.experiment.seeds import format_mean_sd, render_seeds, summarize_seeds, write_seeds

__all__ = [
    "ABLATIONS",
    "ARTICLE",
    "DEMOS",
    "MARKER",
    "METRICS",
    "METRIC_TITLES",
    "NORMAL_TOLERANCE",
    "TEST_SEED",
    "TEST_SIM_SEED",
    "Demo",
    "Ingredients",
    "TestSets",
    "apply_ingredients",
    "base_config",
    "confidence_intervals",
    "evaluate_on",
    "finetune_config",
    "format_mean_sd",
    "headroom",
    "make_test_sets",
    "plot_comparison_grid",
    "plot_loss_curves",
    "render_ablation",
    "render_report",
    "render_seeds",
    "run_ablation",
    "run_experiment",
    "run_seeds",
    "summarize_seeds",
    "switched",
    "tradeoff_rows",
    "verdict",
    "weight_tradeoff",
    "write_seeds",
]

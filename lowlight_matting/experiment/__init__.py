"""The main job: the article's experiment end to end (``lowlight-matting demo``).

:mod:`.run` orchestrates (data, evaluation, fine-tune, ablation, seeds); :mod:`.report` renders the results.
"""

from lowlight_matting.experiment.report import *  # noqa: F403
from lowlight_matting.experiment.run import *  # noqa: F403

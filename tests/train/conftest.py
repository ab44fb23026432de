"""Shared set-up of the training tests: one torch thread per test (see ``_one_thread``)."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread per training test module (module scope covers module-scoped runs), restored after.

    The runs here are tiny (32 px, batch 4): a second intra-op thread buys nothing, and on a busy 2-core
    machine two spinning OpenMP threads made a 4-step run 20x slower than one thread.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

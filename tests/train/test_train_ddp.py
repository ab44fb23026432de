"""DistributedDataParallel on CPU: 2 processes with the gloo backend train the tiny model; weights agree."""

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    sys.path.insert(0, HERE)
    from trainkit import STAGES, tiny_config

    from lowlight_matting.train import build_model_for, train

    cfg = tiny_config(Path(out_dir), "ddp", STAGES, base="fast_lowlight", **{"data.batch_size": 2})
    cfg.stages[1].epochs = 1
    torch.manual_seed(100 + rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = build_model_for(cfg)
    before = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    run = train(cfg, model=model)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    buffers = torch.cat([b.detach().flatten().float() for b in model.buffers()] or [torch.zeros(1)])
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(
        {"before": before, "after": after, "buffers": buffers, "state": state, "run": str(run)},
        Path(out_dir) / f"rank{rank}.pt",
    )


@pytest.mark.slow
def test_two_process_gloo_ddp_trains_and_ranks_agree(tmp_path):
    """2 gloo ranks from different inits end identical and trained; rank 0 alone writes the run."""
    world = 2
    mp.start_processes(
        _worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True, start_method="spawn"
    )
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert not torch.equal(r0["before"], r1["before"])  # they started apart ...
    assert torch.equal(r0["after"], r1["after"])  # ... and DDP kept them in lockstep
    assert torch.equal(r0["buffers"], r1["buffers"])
    assert not torch.equal(r0["after"], r0["before"])  # and they trained
    run = Path(r0["run"])
    assert (run / "last.pt").is_file() and (run / "metrics.csv").is_file()  # written by rank 0 only, once
    from lowlight_matting.checkpoint import load_checkpoint
    from lowlight_matting.train import load_history

    ck = load_checkpoint(run / "last.pt")
    assert ck["config"]["data"]["batch_size"] == 2
    assert all(
        torch.equal(ck["model"][k], v) for k, v in r0["state"].items()
    )  # last.pt = the trained weights
    rows = load_history(run)
    assert [(r["epoch"], r["stage_name"]) for r in rows] == [(1, "head"), (2, "all")]
    # 8 samples over 2 ranks at batch 2: 2 steps per rank and pass, so 4 steps in the 2 passes
    assert ck["step"] == 4 and ck["scheduler"]["last_epoch"] == 2

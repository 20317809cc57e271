"""Block swap (loader ``block_swap``): same video, and swapped DiT blocks go back to the offload device.

On this CPU-only machine compute and offload device are both the CPU, so the offload device is
given as ``cpu:0`` (a distinct ``torch.device`` naming the same memory) and every ``.to`` of the
blocks is recorded: a swapped pair must go to the compute device before it runs and back to the
offload device after, every forward; the other blocks are moved only by ``on_device``.
"""

from __future__ import annotations

import pytest
import torch
from motionsuite.models.opensora import OpenSoraVAE, STDiT3, STDiT3Config
from motionsuite.pipelines.opensora import generate
from opensora_tiny import DIT, SPATIAL, TEMPORAL
from parity_utils import random_state_dict

OFFLOAD = torch.device("cpu", 0)


def _model(block_swap: int) -> generate.OpenSoraModel:
    torch.manual_seed(0)
    dit = STDiT3(STDiT3Config.from_dict({**DIT, "depth": 3}))
    dit.load_state_dict(random_state_dict(dit, 7, gain=0.5))
    vae = OpenSoraVAE(SPATIAL, TEMPORAL)
    return generate.OpenSoraModel(dit, vae, height=32, width=32, num_frames=17, block_swap=block_swap)


def test_block_swap_gives_the_same_video_and_offloads_swapped_blocks(monkeypatch):
    y, mask = torch.randn(1, 300, 32), torch.zeros(1, 300, dtype=torch.long)
    mask[:, :7] = 1
    ref = generate.generate(_model(0), (y, mask), seed=4, steps=2)["samples"]

    monkeypatch.setattr(generate, "get_offload_device", lambda: OFFLOAD)
    model = _model(2)
    dit = model.dit
    blocks = [*dit.spatial_blocks, *dit.temporal_blocks]
    moves: dict[int, list[torch.device]] = {i: [] for i in range(len(blocks))}
    for i, block in enumerate(blocks):
        real_to = block.to

        def recording_to(*args, _i=i, _to=real_to, **kwargs):
            moves[_i].append(torch.device(args[0]))
            return _to(*args, **kwargs)

        block.to = recording_to
    out = generate.generate(model, (y, mask), seed=4, steps=2)["samples"]
    assert torch.equal(out, ref)

    swapped = {0, 1, 3, 4}  # spatial 0, 1 and temporal 0, 1
    for i, seen in moves.items():
        if i in swapped:
            assert seen == [torch.device("cpu"), OFFLOAD] * 2, (i, seen)  # 2 steps, one CFG forward each
        else:
            assert OFFLOAD not in seen, (i, seen)
    assert dit.swap_blocks == 2 and dit.offload_device == OFFLOAD


def test_swapped_blocks_return_even_when_a_block_fails(monkeypatch):
    dit = _model(1).dit
    dit.swap_blocks, dit.offload_device = 1, OFFLOAD
    moved = []
    real_to = dit.temporal_blocks[0].to
    dit.temporal_blocks[0].to = lambda device: moved.append(torch.device(device)) or real_to(device)

    def boom(*_):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(dit.spatial_blocks[0], "forward", boom)
    x, t, y = torch.randn(1, 4, 2, 4, 4), torch.tensor([10.0]), torch.randn(1, 300, 32)
    with pytest.raises(RuntimeError, match="out of memory"):
        dit(x, t, y)
    assert moved == [torch.device("cpu"), OFFLOAD]

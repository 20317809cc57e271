"""DisPose / MimicMotion networks (state-dict compatible with the released checkpoints)."""

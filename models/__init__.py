"""Network definitions, one network per file, state-dict compatible with the released checkpoints."""

"""DisCo inference: reference encoding, pose drawing, ControlNet-guided DDIM sampling, decoding."""

"""Motion-supervised co-part segmentation (Siarohin et al. 2020) networks and the BiSeNet face parser."""

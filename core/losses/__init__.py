"""Losses: contrastive (NT-Xent, PeCLR), pose, sphere-model fitting energies, consistency."""

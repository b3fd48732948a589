"""Synthetic hands: pose and shape sampler, renderer, dataset writer."""

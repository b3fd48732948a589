"""Biomechanical constraints (METHODS §3): local joint frames and angles, differentiable
constraint losses, ``violations`` and ``correct_pose``."""

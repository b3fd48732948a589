"""Geometry: cameras and crops, 2.5D <-> 3D lifting, Procrustes alignment, rotations."""

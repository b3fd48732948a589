"""Data: dataset readers, sessions, frame sources and the synthetic hand generator."""

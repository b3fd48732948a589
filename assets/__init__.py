"""Data the product ships: the hand model, the default checkpoint, the demo recording."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent

__all__ = ["ASSETS_DIR"]

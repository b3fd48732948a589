"""Data: dataset readers, sessions, frame sources and the synthetic hand generator.

Every reader is a streaming torch ``Dataset`` of dict samples (contract in
:mod:`handpose.core.data.sample`); sessions are the recording format of the app (DESIGN.md).
"""

from .base import HandDataset
from .errors import DataError, SessionWriteError
from .folder import ImageFolderDataset
from .freihand import FreiHANDDataset
from .handcrop import crop_sample
from .rgbd import RGBDFolderDataset
from .rhd import RHDDataset
from .sample import collate, make_sample
from .session import Label, SessionInfo
from .session_reader import SessionDataset, SessionReader
from .session_writer import SessionWriter
from .video import VideoDataset

__all__ = [
    "DataError",
    "SessionWriteError",
    "HandDataset",
    "FreiHANDDataset",
    "RHDDataset",
    "ImageFolderDataset",
    "VideoDataset",
    "RGBDFolderDataset",
    "SessionWriter",
    "SessionReader",
    "SessionDataset",
    "SessionInfo",
    "Label",
    "collate",
    "make_sample",
    "crop_sample",
]

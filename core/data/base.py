"""The common base of the dataset readers: streaming, optional hand crops, skipping bad samples.

A reader indexes its files at construction (paths and labels only, never images) and
decodes one sample in :meth:`HandDataset.load`. :meth:`HandDataset.__getitem__` adds two
behaviours every reader shares:

* ``crop_size=N``: the sample becomes an N x N hand-centred crop
  (:func:`~handpose.core.data.handcrop.crop_sample`: from keypoints when labelled, else from
  the box, else the centre square), so samples of different image sizes batch together.
* ``skip_bad=True``: a sample whose files turn out bad at read time (missing/corrupt image,
  bad depth) is replaced by the next good one (index + 1, + 2, ... wrapping around), counted
  in ``self.skipped`` with ONE warning. Bad labels found at construction are dropped from the
  index and counted the same way. With ``skip_bad=False`` (default) the first bad sample
  raises :class:`~handpose.core.data.errors.DataError` naming the file (and line/entry).
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from .errors import DataError, SkipLog
from .handcrop import DEFAULT_CROP_MARGIN, crop_sample

__all__ = ["HandDataset"]


class HandDataset(Dataset[dict[str, Any]]):
    """Base of the readers: a map-style torch Dataset of contract samples (see ``sample.py``).

    Args:
        crop_size: None (full images) or the side N (pixels, >= 8) of the square crops.
        crop_margin: crop side / tight hand extent (> 0); see :mod:`handcrop`.
        skip_bad: skip (and count) bad samples instead of raising :class:`DataError`.
        max_consecutive_bad: with ``skip_bad``, give up (raise) after this many bad samples
            in a row, so a dataset whose every file is broken fails loudly.

    Subclasses set ``source`` (the ``source`` key of their samples) and implement
    ``__len__`` and :meth:`load`.

    ``crop_upright`` (attribute, default False): crops of labelled samples are turned so the
    hand points up, as the tracker crops at run time (set it after construction).
    ``crop_mirror_left`` (attribute, default False): crops of left hands (``handedness`` 0) are
    mirrored into right hands (``crop_sample(mirror=True)``), as the tracker shows a left hand
    to the network (``HandPoseEstimator(mirror_left=True)``).
    """

    source = "dataset"
    crop_upright = False
    crop_mirror_left = False

    def __init__(
        self,
        *,
        crop_size: int | None = None,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        skip_bad: bool = False,
        max_consecutive_bad: int = 64,
    ) -> None:
        if crop_size is not None and (not isinstance(crop_size, int) or crop_size < 8):
            raise ValueError(f"crop_size must be None or an int >= 8 pixels; got {crop_size!r}")
        if not crop_margin > 0:
            raise ValueError(f"crop_margin must be > 0; got {crop_margin!r}")
        if max_consecutive_bad < 1:
            raise ValueError(f"max_consecutive_bad must be >= 1; got {max_consecutive_bad}")
        self.crop_size = crop_size
        self.crop_margin = float(crop_margin)
        self.skip_bad = bool(skip_bad)
        self.max_consecutive_bad = int(max_consecutive_bad)
        self.skipped = SkipLog(type(self).__name__)

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> dict[str, Any]:
        """Decode sample ``index`` (0 <= index < len) at full resolution, without cropping.

        Raises:
            DataError: a file of this sample is missing or bad.
        """
        raise NotImplementedError

    def crop_margin_for(self, sample: dict[str, Any]) -> float:
        """The crop margin for one sample (readers may override, e.g. tight crop images)."""
        return self.crop_margin

    def _bad(self, err: DataError, index: int | None = None) -> None:
        """Raise ``err``, or record it when ``skip_bad`` (readers call this at construction)."""
        if not self.skip_bad:
            raise err
        self.skipped.add(err, index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not isinstance(index, int):
            index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of {n}")
        last: DataError | None = None
        for k in range(min(n, self.max_consecutive_bad)):
            j = (index + k) % n
            if self.skip_bad and j in self.skipped.indices:
                continue  # known bad in this process: do not decode it again
            try:
                sample = self.load(j)
            except DataError as e:
                if not self.skip_bad:
                    raise
                self.skipped.add(e, j)
                last = e
                continue
            if self.crop_size is not None:
                mirror = self.crop_mirror_left and int(sample.get("handedness", -1)) == 0
                sample = crop_sample(sample, self.crop_size, self.crop_margin_for(sample),
                                     upright=self.crop_upright, mirror=mirror)
            return sample
        if last is None:
            raise DataError(type(self).__name__, f"every sample from index {index} on is "
                            f"known to be bad (skip_bad=True)")
        raise DataError(
            last.path,
            f"{min(n, self.max_consecutive_bad)} consecutive bad samples from index {index} "
            f"(skip_bad=True); last: {last.reason}",
            line=last.line,
            entry=last.entry,
        )

"""Reader of the FreiHAND file layout (FreiHAND itself, ``real_eval_hgc``, our synthetic sets).

Layout under ``root`` (``split`` = "training" or "evaluation")::

    <split>/rgb/%08d.jpg          images; version v of sample i is image i + v * N
    <split>_xyz.json              N x 21 x 3 joints, metres, camera frame, FreiHAND order
    <split>_K.json                N x 3 x 3 intrinsics (pixels)
    <split>_scale.json            N reference bone lengths (middle MCP -> PIP), metres; optional
    <split>/mask/%08d.jpg|png     hand masks of sample i (all versions); optional
    <split>/depth/%08d.png        synthetic extension: uint16 depth in millimetres; optional
    extrinsics.json               synthetic extension: N x (3|4) x 4 world -> camera, or one
                                  matrix for all; optional
    (``mask/`` and ``depth/`` directly under ``root`` are accepted too)

The official training set has N = 32,560 labels and 4N images: the versions "gs" (green
screen), "hom", "sample", "auto" (background-replaced variants). A folder holding exactly N
images has the "gs" version only. FreiHAND hands are right hands (``handedness`` 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import HandDataset
from .errors import DataError
from .handcrop import DEFAULT_CROP_MARGIN
from .imageio import read_depth_png, read_gray, read_rgb
from .jsonio import array_entries, load_json
from .sample import make_sample

__all__ = ["FREIHAND_VERSIONS", "FreiHANDDataset"]

FREIHAND_VERSIONS = ("gs", "hom", "sample", "auto")


class FreiHANDDataset(HandDataset):
    """FreiHAND-layout dataset, streaming images from disk.

    Args:
        root: the folder holding ``<split>_xyz.json`` and ``<split>/rgb/``.
        versions: which image versions to serve (subset of :data:`FREIHAND_VERSIONS`); the
            dataset has ``len(versions) * N`` samples, version-major.
        split: file prefix, "training" (default) or "evaluation".
        load_depth, load_mask: read ``depth/`` and ``mask/`` when present.
        handedness: handedness code of every sample (1 right for FreiHAND). A per-sample
            ``<split>_handedness.json`` (0 left / 1 right, written by ``handpose-data synth``)
            overrides it.
        crop_size, crop_margin, skip_bad: see :class:`HandDataset`.

    Raises:
        DataError: a label file missing/truncated/invalid, label lengths that disagree, an
            entry of the wrong shape (with ``skip_bad`` the last two drop the samples).
        ValueError: unknown or unavailable ``versions``.
    """

    source = "freihand"

    def __init__(
        self,
        root: str | os.PathLike[str],
        versions: tuple[str, ...] | list[str] = ("gs",),
        *,
        split: str = "training",
        load_depth: bool = True,
        load_mask: bool = True,
        handedness: int = 1,
        crop_size: int | None = None,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(crop_size=crop_size, crop_margin=crop_margin, skip_bad=skip_bad)
        self.root = Path(root)
        if isinstance(versions, str):
            versions = (versions,)
        bad = [v for v in versions if v not in FREIHAND_VERSIONS]
        if bad or not versions:
            raise ValueError(f"versions must be a non-empty subset of {FREIHAND_VERSIONS}; "
                             f"got {tuple(versions)}")
        self.handedness = int(handedness)
        self.rgb_dir = self.root / split / "rgb"
        if not self.rgb_dir.is_dir():
            raise DataError(self.rgb_dir, "image folder not found (expected <root>/"
                            f"{split}/rgb/ of the FreiHAND layout)")

        ok = self._load_labels(split)
        n = len(self.xyz)
        self.num_labels = n
        self.available = tuple(
            v for k, v in enumerate(FREIHAND_VERSIONS) if (self.rgb_dir / f"{k * n:08d}.jpg")
            .exists()
        )
        missing = [v for v in versions if v not in self.available]
        if missing:
            raise ValueError(f"versions {missing} not in {self.rgb_dir} (it holds "
                             f"{self.available or 'none'} for {n} labels)")
        self.versions = tuple(versions)
        self._version_ids = np.array([FREIHAND_VERSIONS.index(v) for v in self.versions])
        self._ids = np.flatnonzero(ok)  # label indices that parsed
        self.mask_dir = self._side_dir(split, "mask") if load_mask else None
        self.depth_dir = self._side_dir(split, "depth") if load_depth else None

    def _side_dir(self, split: str, name: str) -> Path | None:
        for d in (self.root / split / name, self.root / name):
            if d.is_dir():
                return d
        return None

    def _load_labels(self, split: str) -> np.ndarray:
        """Parse the label files; returns ``ok`` (N,) bool of usable label entries."""
        def bad(err: DataError, i: int) -> None:
            self._bad(err)

        paths = {k: self.root / f"{split}_{k}.json" for k in ("xyz", "K", "scale")}
        xyz_path, k_path, s_path = paths["xyz"], paths["K"], paths["scale"]
        self.xyz, ok = array_entries(xyz_path, load_json(xyz_path), (21, 3), bad)
        self.K, ok_k = array_entries(k_path, load_json(k_path), (3, 3), bad)
        arrays = [(xyz_path, ok), (k_path, ok_k)]
        self.scale: np.ndarray | None = None
        if s_path.exists():
            self.scale, ok_s = array_entries(s_path, load_json(s_path), (), bad)
            arrays.append((s_path, ok_s))
        ext_path = self.root / "extrinsics.json"
        self.extrinsics: np.ndarray | None = None
        if ext_path.exists():
            self.extrinsics = self._load_extrinsics(ext_path, len(self.xyz), bad)
            if len(self.extrinsics) > 1:
                arrays.append((ext_path, np.ones(len(self.extrinsics), bool)))
        n = min(len(o) for _, o in arrays)
        longest = max(arrays, key=lambda a: len(a[1]))
        short = [(path, o) for path, o in arrays if len(o) != len(longest[1])]
        if short:
            self._bad(DataError(short[0][0], f"has {len(short[0][1])} entries but "
                                f"{longest[0].name} has {len(longest[1])}: the label files "
                                f"disagree; only the first {n} samples are usable"))
            self.skipped.count += len(longest[1]) - n - 1  # one per dropped sample
        okall = np.ones(n, bool)
        for _, o in arrays:
            okall &= o[:n]
        self.xyz, self.K = self.xyz[:n], self.K[:n]
        self.hand_codes: np.ndarray | None = None
        h_path = self.root / f"{split}_handedness.json"
        if h_path.exists():
            codes = np.asarray(load_json(h_path))
            if codes.shape != (len(longest[1]),) or not np.isin(codes, (0, 1)).all():
                raise DataError(h_path, f"must list one 0 (left) / 1 (right) per sample "
                                f"({len(longest[1])}); got shape {codes.shape}")
            self.hand_codes = codes[:n].astype(np.int64)
        if self.scale is not None:
            self.scale = self.scale[:n]
        # Checked once, vectorised: hands in front of the camera, K with bottom row (0, 0, 1)
        # and non-zero focal lengths; then the 2D labels are the projections.
        z_ok = (self.xyz[..., 2] > 0).all(1)
        k_ok = (np.abs(self.K[:, 2] - np.array([0, 0, 1], np.float32)).max(1) < 1e-6) & (
            np.abs(np.linalg.det(self.K[:, :2, :2].astype(np.float64))) > 1e-12)
        for i in np.flatnonzero(okall & ~z_ok):
            self._bad(DataError(xyz_path, "joints behind the camera (Z <= 0)", entry=int(i)))
        for i in np.flatnonzero(okall & z_ok & ~k_ok):
            self._bad(DataError(k_path, "not an intrinsic matrix (bottom row must be 0 0 1, "
                                "focal lengths non-zero)", entry=int(i)))
        okall &= z_ok & k_ok
        cam = np.einsum("nij,nkj->nki", self.K.astype(np.float64), self.xyz.astype(np.float64))
        z = np.where(okall[:, None], cam[..., 2], 1.0)
        self.uv = (cam[..., :2] / z[..., None]).astype(np.float32)
        return okall

    def _load_extrinsics(self, path: Path, n: int, bad: Any) -> np.ndarray:
        data = load_json(path)
        arr = np.asarray(data, dtype=object)
        tail = (4, 4) if (arr.ndim >= 2 and arr.shape[-2:] == (4, 4)) else (3, 4)
        if arr.ndim == 2:  # one matrix for every sample
            data = [data]
        ext, ok = array_entries(path, data, tail, bad)
        if tail == (3, 4):
            bottom = np.broadcast_to(np.array([0, 0, 0, 1], np.float32), (len(ext), 1, 4))
            ext = np.concatenate([ext, bottom], 1)
        return ext

    def __len__(self) -> int:
        return len(self._ids) * len(self.versions)

    def load(self, index: int) -> dict[str, Any]:
        n_ok = len(self._ids)
        version = int(self._version_ids[index // n_ok])
        i = int(self._ids[index % n_ok])
        path = self.rgb_dir / f"{i + version * self.num_labels:08d}.jpg"
        rgb = read_rgb(path)
        h, w = rgb.shape[:2]
        K = self.K[i]
        mask = depth = None
        if self.mask_dir is not None:
            mpath = self.mask_dir / f"{i:08d}.png"
            if not mpath.exists():
                mpath = mpath.with_suffix(".jpg")
            mask = (read_gray(mpath) > 127).astype(np.uint8)
            if mask.shape != (h, w):
                raise DataError(mpath, f"mask is {mask.shape[::-1]} but the image is {(w, h)}")
        if self.depth_dir is not None:
            dpath = self.depth_dir / f"{i:08d}.png"
            depth = read_depth_png(dpath)
            if depth.shape != (h, w):
                raise DataError(dpath, f"depth is {depth.shape[::-1]} but the image is {(w, h)}")
        extr = None
        if self.extrinsics is not None:
            extr = self.extrinsics[i if len(self.extrinsics) > 1 else 0]
        return make_sample(
            rgb, index=index, source=self.source, K=K,
            handedness=self.handedness if self.hand_codes is None else int(self.hand_codes[i]),
            joints3d=self.xyz[i], uv=self.uv[i],
            scale=None if self.scale is None else float(self.scale[i]),
            depth=depth, mask=mask, extrinsics=extr, path=str(path),
        )

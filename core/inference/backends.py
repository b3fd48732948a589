"""Network runners of the pipeline: one batch of uint8 hand crops in, a :class:`Pose25D` out.

Two backends share the :class:`PoseBackend` contract:

* :class:`OnnxBackend` (the default on a CPU): ONNX Runtime on the ``.onnx`` export of a
  checkpoint. :func:`cached_onnx` exports a checkpoint once (with
  :func:`handpose.core.export.export_onnx`) into a cache folder, keyed by the SHA-256 of the
  checkpoint file, so later runs start at once and a changed checkpoint is re-exported.
* :class:`TorchBackend`: the PyTorch model itself; on CUDA with automatic mixed precision
  (float16) and ``channels_last`` memory, on the CPU in float32.

Both normalise the crops the way the checkpoint says (``normalization`` of its metadata).
:func:`load_backend` picks and builds one from a checkpoint path.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..export import DEFAULT_OPSET, OnnxPoseNet, export_onnx
from ..models.normalization import check_normalization
from ..safe_load import CheckpointError
from ..skeleton import NUM_JOINTS
from ..types import Pose25D

__all__ = [
    "PoseBackend",
    "OnnxBackend",
    "TorchBackend",
    "load_backend",
    "cached_onnx",
    "default_cache_dir",
    "resolve_device",
    "check_crops",
]

#: Environment variable naming the cache folder of ONNX exports.
CACHE_ENV = "HANDPOSE_CACHE_DIR"


class PoseBackend(Protocol):
    """What the estimator needs from a network runner.

    Attributes:
        input_size: S, the side of the square crops in pixels.
        name: a short description ("onnxruntime cpu", "torch cuda amp", ...).
    """

    input_size: int
    name: str

    def run(self, crops: np.ndarray) -> Pose25D:
        """(B, S, S, 3) uint8 RGB crops -> Pose25D of numpy arrays: uv (B, 21, 2) crop pixels,
        z_rel (B, 21), confidence (B, 21) in [0, 1]."""
        ...


def check_crops(crops: Any, size: int) -> np.ndarray:
    """Validate a batch of crops: (B, S, S, 3) uint8 with B >= 1; returns it C-contiguous."""
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8:
        raise ValueError(f"crops must be a uint8 numpy array (B, {size}, {size}, 3); got "
                         f"{type(crops).__name__} {getattr(crops, 'dtype', '')}")
    if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.shape[0] < 1:
        raise ValueError(f"crops must have shape (B, {size}, {size}, 3) with B >= 1; got "
                         f"{crops.shape}")
    return np.ascontiguousarray(crops)


def _norm_affine(normalization: Any) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with normalised = uint8 * a + b per channel, each (1, 3, 1, 1) float32."""
    n = check_normalization(normalization)
    mean = np.asarray(n["mean"], np.float32)
    std = np.asarray(n["std"], np.float32)
    a = (1.0 / (255.0 * std)).reshape(1, 3, 1, 1).astype(np.float32)
    b = (-mean / std).reshape(1, 3, 1, 1).astype(np.float32)
    return a, b


def _pack(uv: np.ndarray, z_rel: np.ndarray, confidence: np.ndarray | None) -> Pose25D:
    b = uv.shape[0]
    conf = np.ones((b, NUM_JOINTS), np.float32) if confidence is None else confidence
    return Pose25D(uv=np.asarray(uv, np.float64), z_rel=np.asarray(z_rel, np.float64),
                   confidence=np.clip(np.asarray(conf, np.float64), 0.0, 1.0))


class OnnxBackend:
    """ONNX Runtime (CPU) on an exported PoseNet.

    Args:
        onnx_path: a file written by :func:`handpose.core.export.export_onnx`.
        threads: intra-op threads (None: ONNX Runtime's default, all cores).
    """

    def __init__(self, onnx_path: str | PathLike[str], threads: int | None = None) -> None:
        self.session = OnnxPoseNet(onnx_path, intra_op_threads=threads, inter_op_threads=1)
        self.input_size = int(self.session.input_size)
        self._a, self._b = _norm_affine(self.session.normalization)
        self.name = "onnxruntime cpu"
        self.path = Path(onnx_path)

    def run(self, crops: np.ndarray) -> Pose25D:
        """See :class:`PoseBackend`."""
        x = check_crops(crops, self.input_size).transpose(0, 3, 1, 2).astype(np.float32)
        x = x * self._a + self._b
        out = self.session(x)
        return _pack(out["uv"], out["z_rel"], out.get("confidence"))


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto" -> CUDA when available, else CPU; other names are checked to exist."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available here; "
                         "use device='cpu' or 'auto'")
    return dev


class TorchBackend:
    """The PyTorch model: CUDA + AMP (float16 autocast) + channels_last on a GPU, float32 on
    the CPU.

    Args:
        model: a PoseNet (its ``forward`` returns {"uv", "z_rel", "confidence", ...}).
        input_size: S pixels.
        normalization: ``{"mean", "std"}`` of the checkpoint.
        device: "auto", "cpu", "cuda", ...
        amp: autocast to float16 on CUDA (ignored on the CPU).
        threads: torch intra-op threads on the CPU (None: leave torch's setting).
    """

    def __init__(self, model: nn.Module, input_size: int, normalization: Any,
                 device: str | torch.device = "auto", amp: bool = True,
                 threads: int | None = None) -> None:
        if not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size must be a positive int (pixels); got {input_size!r}")
        self.device = resolve_device(device)
        self.input_size = input_size
        self.amp = bool(amp) and self.device.type == "cuda"
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(int(threads))
        a, b = _norm_affine(normalization)
        self._a = torch.from_numpy(a).to(self.device)
        self._b = torch.from_numpy(b).to(self.device)
        self.name = f"torch {self.device.type}" + (" amp" if self.amp else "")

    @torch.no_grad()
    def run(self, crops: np.ndarray) -> Pose25D:
        """See :class:`PoseBackend`."""
        x = torch.from_numpy(check_crops(crops, self.input_size)).to(self.device)
        x = x.permute(0, 3, 1, 2).float() * self._a + self._b
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = self.model(x)
        conf = out.get("confidence")
        return _pack(out["uv"].float().cpu().numpy(), out["z_rel"].float().cpu().numpy(),
                     None if conf is None else conf.float().cpu().numpy())


def default_cache_dir() -> Path:
    """``$HANDPOSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/handpose`` (``~/.cache/handpose``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "handpose"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_onnx(checkpoint: str | PathLike[str], cache_dir: str | PathLike[str] | None = None,
                opset: int = DEFAULT_OPSET) -> Path:
    """The ONNX export of a checkpoint, exported on first use and cached.

    The file is ``<cache_dir>/onnx/<sha256 of the checkpoint>-op<opset>.onnx``; a changed
    checkpoint has another hash and is exported again. An unwritable cache folder falls back
    to the system's temporary folder.

    Args:
        checkpoint: a handpose checkpoint (``.pt``).
        cache_dir: folder of the cache (default :func:`default_cache_dir`).
        opset: ONNX opset of the export.

    Returns:
        path of the ``.onnx`` file.

    Raises:
        CheckpointError: the checkpoint is missing or cannot be loaded.
    """
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise CheckpointError(f"checkpoint {ckpt}: file not found (check the path)")
    name = f"{_sha256(ckpt)}-op{opset}.onnx"
    roots = [Path(cache_dir) if cache_dir is not None else default_cache_dir(),
             Path(tempfile.gettempdir()) / "handpose-cache"]
    for root in roots:
        target = root / "onnx" / name
        if target.is_file():
            return target
    model, meta = load_checkpoint(ckpt)
    last: OSError | None = None
    for root in roots:
        target = root / "onnx" / name
        try:
            return export_onnx(model, target, meta.input_size, opset, meta.normalization,
                               meta.arch)
        except OSError as e:  # unwritable cache folder: try the next one
            last = e
    raise CheckpointError(f"cannot write the ONNX export of {ckpt} to {roots[0]} or "
                          f"{roots[1]}: {last}")


def load_backend(checkpoint: str | PathLike[str], backend: str = "auto",
                 device: str | torch.device = "auto", threads: int | None = None,
                 cache_dir: str | PathLike[str] | None = None) -> PoseBackend:
    """Build the network runner of a checkpoint.

    Args:
        checkpoint: a handpose checkpoint file (``.pt``) or an exported ``.onnx``.
        backend: "onnx", "torch" or "auto" (torch on CUDA, ONNX Runtime on the CPU).
        device: "auto", "cpu", "cuda[:N]" (the ONNX backend runs on the CPU only; with
            ``backend="onnx"``, "auto" means the CPU).
        threads: CPU threads of the network (None: the runtime's default).
        cache_dir: cache of ONNX exports (see :func:`cached_onnx`).

    Raises:
        ValueError: unknown backend, or ONNX on a CUDA device.
        CheckpointError: a missing, corrupt or incompatible checkpoint.
    """
    if backend not in ("auto", "onnx", "torch"):
        raise ValueError(f"backend must be 'auto', 'onnx' or 'torch'; got {backend!r}")
    dev = resolve_device("cpu" if backend == "onnx" and str(device) == "auto" else device)
    path = Path(checkpoint)
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise ValueError(f"backend='torch' needs a PyTorch checkpoint; {path} is ONNX")
        return OnnxBackend(path, threads)
    if backend == "auto":
        backend = "torch" if dev.type == "cuda" else "onnx"
    if backend == "onnx":
        if dev.type != "cpu":
            raise ValueError(f"the ONNX backend runs on the CPU; got device {str(dev)!r} "
                             "(use backend='torch' on a GPU)")
        return OnnxBackend(cached_onnx(path, cache_dir), threads)
    model, meta = load_checkpoint(path, device="cpu")
    return TorchBackend(model, meta.input_size, meta.normalization, dev, threads=threads)

"""Network runners of the pipeline: one batch of uint8 hand crops in, a :class:`Pose25D` out.

Two backends share the :class:`PoseBackend` contract:

* :class:`OnnxBackend` (the default on a CPU): ONNX Runtime on the ``.onnx`` export of a
  checkpoint. :func:`cached_onnx` exports a checkpoint once (with
  :func:`handpose.core.export.export_onnx`) into a cache folder, keyed by the SHA-256 of the
  checkpoint file, so later runs start at once and a changed checkpoint is re-exported.
  Precision (``precision=`` of :func:`load_backend`): "fp32"; "int8", a statically quantized
  model (:func:`handpose.core.export.quantize_onnx`), about twice as fast on CPUs with VNNI;
  "auto", the int8 file shipped next to the checkpoint (``default.int8.onnx`` beside
  ``default.pt``, :func:`int8_path_for`) when its recorded ``source_sha256`` is this
  checkpoint's, else fp32. :func:`cached_int8` finds or makes the int8 model.
* :class:`TorchBackend`: the PyTorch model itself; on CUDA with automatic mixed precision
  (float16) and ``channels_last`` memory, on the CPU in float32.

Both normalise the crops the way the checkpoint says (``normalization`` of its metadata).
:func:`load_backend` picks and builds one from a checkpoint path.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..export import DEFAULT_OPSET, OnnxPoseNet, export_onnx, file_sha256, quantize_onnx
from ..models.normalization import check_normalization
from ..safe_load import CheckpointError
from ..skeleton import NUM_JOINTS
from ..types import Pose25D

__all__ = [
    "PoseBackend",
    "OnnxBackend",
    "TorchBackend",
    "load_backend",
    "PRECISIONS",
    "cached_onnx",
    "cached_int8",
    "int8_path_for",
    "check_int8_file",
    "default_cache_dir",
    "resolve_device",
    "check_crops",
]

#: Environment variable naming the cache folder of ONNX exports.
CACHE_ENV = "HANDPOSE_CACHE_DIR"
#: The ``precision`` choices of :func:`load_backend`.
PRECISIONS = ("auto", "fp32", "int8")
#: How to make an int8 model (named in errors).
MAKE_INT8 = ("handpose-train export checkpoint=DIR/NAME.pt int8=true calib.root=LABELLED "
             "(writes DIR/NAME.int8.onnx; LABELLED: hand frames with 2D labels in FreiHAND "
             "layout, e.g. a handpose-data synth folder)")


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
        self.precision = self.session.precision
        self.name = "onnxruntime cpu" + (" int8" if self.precision == "int8" else "")
        self.path = Path(onnx_path)

    def run(self, crops: np.ndarray) -> Pose25D:
        """See :class:`PoseBackend`."""
        x = check_crops(crops, self.input_size).transpose(0, 3, 1, 2).astype(np.float32)
        x *= self._a  # in place: the same float32 operations as x * a + b, fewer copies
        x += self._b
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


def _cache_roots(cache_dir: str | PathLike[str] | None) -> list[Path]:
    return [Path(cache_dir) if cache_dir is not None else default_cache_dir(),
            Path(tempfile.gettempdir()) / "handpose-cache"]


def cached_onnx(checkpoint: str | PathLike[str], cache_dir: str | PathLike[str] | None = None,
                opset: int = DEFAULT_OPSET, sha256: str | None = None) -> Path:
    """The ONNX export of a checkpoint, exported on first use and cached.

    The file is ``<cache_dir>/onnx/<sha256 of the checkpoint>-op<opset>.onnx``; a changed
    checkpoint has another hash and is exported again. An unwritable cache folder falls back
    to the system's temporary folder.

    Args:
        checkpoint: a handpose checkpoint (``.pt``).
        cache_dir: folder of the cache (default :func:`default_cache_dir`).
        opset: ONNX opset of the export.
        sha256: the checkpoint's SHA-256 when already known (else computed).

    Returns:
        path of the ``.onnx`` file.

    Raises:
        CheckpointError: the checkpoint is missing or cannot be loaded.
    """
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise CheckpointError(f"checkpoint {ckpt}: file not found (check the path)")
    sha = sha256 or file_sha256(ckpt)
    name = f"{sha}-op{opset}.onnx"
    roots = _cache_roots(cache_dir)
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
                               meta.arch, source_sha256=sha)
        except OSError as e:  # unwritable cache folder: try the next one
            last = e
    raise CheckpointError(f"cannot write the ONNX export of {ckpt} to {roots[0]} or "
                          f"{roots[1]}: {last}")


def int8_path_for(checkpoint: str | PathLike[str]) -> Path:
    """Where a checkpoint's shipped int8 model lives: ``<dir>/<stem>.int8.onnx``."""
    p = Path(checkpoint)
    return p.with_name(f"{p.stem}.int8.onnx")


def check_int8_file(path: str | PathLike[str], sha256: str) -> str | None:
    """Why the int8 model ``path`` cannot stand in for the checkpoint of hash ``sha256``
    (a sentence), or None when it can: it exists, loads, is int8 and records that hash."""
    p = Path(path)
    if not p.is_file():
        return f"{p} does not exist"
    try:
        sess = OnnxPoseNet(p, intra_op_threads=1)
    except CheckpointError as e:
        return str(e)
    return _int8_mismatch(sess, sha256)


def _int8_mismatch(sess: OnnxPoseNet, sha256: str) -> str | None:
    """:func:`check_int8_file` on an open session (no second load of the file)."""
    if sess.precision != "int8":
        return f"{sess.path} is not an int8 model (precision {sess.precision!r})"
    if sess.source_sha256 != sha256:
        return (f"{sess.path} was made from another checkpoint (source_sha256 "
                f"{str(sess.source_sha256)[:12]}..., the checkpoint's is {sha256[:12]}...)")
    return None


def cached_int8(checkpoint: str | PathLike[str], calibration: Any = None,
                cache_dir: str | PathLike[str] | None = None, opset: int = DEFAULT_OPSET,
                sha256: str | None = None) -> Path:
    """The int8 model of a checkpoint: shipped next to it, cached, or quantized now.

    In this order: :func:`int8_path_for` when :func:`check_int8_file` accepts it; the cache
    (``<cache_dir>/onnx/<sha256>-op<opset>.int8.onnx``, made by an earlier call); else the
    fp32 export (:func:`cached_onnx`) is quantized with ``calibration`` and cached. The cache
    is keyed by the checkpoint only: delete the file to calibrate again.

    Args:
        checkpoint: a handpose checkpoint (``.pt``).
        calibration: hand crops for :func:`~handpose.core.export.quantize_onnx` (a Dataset of
            ``{"rgb": (3, S, S) uint8}`` samples or an iterable of normalised (B, 3, S, S)
            float32 batches); needed only when no int8 model exists yet.
        cache_dir: folder of the cache (default :func:`default_cache_dir`).

    Raises:
        CheckpointError: no int8 model exists and no calibration crops were given (the
            message says how to make one), or the checkpoint cannot be loaded.
    """
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise CheckpointError(f"checkpoint {ckpt}: file not found (check the path)")
    sha = sha256 or file_sha256(ckpt)
    shipped = int8_path_for(ckpt)
    why = check_int8_file(shipped, sha)
    if why is None:
        return shipped
    if shipped.exists():
        warnings.warn(f"not using {shipped}: {why}", stacklevel=2)
    name = f"{sha}-op{opset}.int8.onnx"
    roots = _cache_roots(cache_dir)
    for root in roots:
        if check_int8_file(root / "onnx" / name, sha) is None:
            return root / "onnx" / name
    if calibration is None:
        raise CheckpointError(
            f"precision='int8' needs an int8 model of {ckpt}, and there is none: no valid "
            f"{shipped.name} next to it and none cached. Pass calibration=<hand crops> "
            f"(HandPoseEstimator(..., calibration=dataset)) to quantize it once, or make one "
            f"with: {MAKE_INT8}")
    fp32 = cached_onnx(ckpt, cache_dir, opset, sha)
    last: OSError | None = None
    for root in roots:
        try:
            return quantize_onnx(fp32, root / "onnx" / name, calibration, checkpoint=None)
        except OSError as e:  # unwritable cache folder: try the next one
            last = e
    raise CheckpointError(f"cannot write the int8 model of {ckpt} to {roots[0]} or "
                          f"{roots[1]}: {last}")


def load_backend(checkpoint: str | PathLike[str], backend: str = "auto",
                 device: str | torch.device = "auto", threads: int | None = None,
                 cache_dir: str | PathLike[str] | None = None, precision: str = "auto",
                 calibration: Any = None) -> PoseBackend:
    """Build the network runner of a checkpoint.

    Args:
        checkpoint: a handpose checkpoint file (``.pt``) or an exported ``.onnx``.
        backend: "onnx", "torch" or "auto" (torch on CUDA, ONNX Runtime on the CPU; ONNX
            Runtime whenever ``precision="int8"``).
        device: "auto", "cpu", "cuda[:N]" (the ONNX backend runs on the CPU only; with
            ``backend="onnx"``, "auto" means the CPU).
        threads: CPU threads of the network (None: the runtime's default).
        cache_dir: cache of ONNX exports (see :func:`cached_onnx`).
        precision: "auto" (ONNX: the shipped int8 model when it matches the checkpoint, see
            the module docstring, else fp32; torch: AMP on CUDA), "fp32" (no int8, no AMP) or
            "int8" (ONNX Runtime, :func:`cached_int8`). With an ``.onnx`` file the file's own
            precision must agree ("auto" takes it as it is).
        calibration: crops to quantize with when ``precision="int8"`` finds no int8 model.

    Raises:
        ValueError: unknown backend or precision, ONNX (or int8) on a CUDA device, an ``.onnx``
            file of the other precision.
        CheckpointError: a missing, corrupt or incompatible checkpoint; int8 requested with
            no int8 model and no calibration crops.
    """
    if backend not in ("auto", "onnx", "torch"):
        raise ValueError(f"backend must be 'auto', 'onnx' or 'torch'; got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if precision == "int8":
        if backend == "torch":
            raise ValueError("precision='int8' runs with ONNX Runtime on the CPU: use "
                             "backend='onnx' (or 'auto')")
        backend = "onnx"
    dev = resolve_device("cpu" if backend == "onnx" and str(device) == "auto" else device)
    path = Path(checkpoint)
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise ValueError(f"backend='torch' needs a PyTorch checkpoint; {path} is ONNX")
        onnx_backend = OnnxBackend(path, threads)
        if precision != "auto" and onnx_backend.precision != precision:
            raise ValueError(f"precision={precision!r} was requested but {path} is "
                             f"{onnx_backend.precision}")
        return onnx_backend
    if backend == "auto":
        backend = "torch" if dev.type == "cuda" else "onnx"
    if backend == "onnx":
        if dev.type != "cpu":
            raise ValueError(f"the ONNX backend runs on the CPU; got device {str(dev)!r} "
                             "(use backend='torch' on a GPU)")
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path}: file not found (check the path)")
        sha = file_sha256(path)
        if precision == "int8":
            return OnnxBackend(cached_int8(path, calibration, cache_dir, sha256=sha), threads)
        shipped = int8_path_for(path)
        if precision == "auto" and shipped.exists():
            try:  # the session that will run, checked once (start-up loads the file once)
                candidate = OnnxBackend(shipped, threads)
                why = _int8_mismatch(candidate.session, sha)
            except CheckpointError as e:
                why = str(e)
            if why is None:
                return candidate
            warnings.warn(f"not using the int8 model: {why}; running float32", stacklevel=2)
        return OnnxBackend(cached_onnx(path, cache_dir, sha256=sha), threads)
    model, meta = load_checkpoint(path, device="cpu")
    return TorchBackend(model, meta.input_size, meta.normalization, dev, threads=threads,
                        amp=precision != "fp32")

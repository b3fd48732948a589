"""ONNX export of a PoseNet, its int8 quantization, and an ONNX Runtime (CPU) session.

The graph has one input ``images`` (B, 3, S, S) float32, normalised as the network expects,
with a dynamic batch axis, and the outputs ``uv`` (B, 21, 2) crop pixels, ``z_rel`` (B, 21)
and ``confidence`` (B, 21) (:data:`~handpose.core.models.POSE_OUTPUTS`). The model's
``input_size``, ``normalization``, ``arch`` and ``joint_order`` are stored as ONNX metadata
(JSON strings), so an ``.onnx`` file is self-describing for :class:`OnnxPoseNet`; so are
``precision`` ("fp32" or "int8") and ``source_sha256``, the SHA-256 of the checkpoint file the
model was made from (when known), which lets a runtime refuse an int8 file made from another
checkpoint.

int8 (:func:`quantize_onnx`): ONNX Runtime static quantization in the QDQ format, weights int8
per output channel (symmetric), activations uint8 (asymmetric) with ranges calibrated on hand
crops. Only the convolutions (and the encoder's residual additions and max pooling) are
quantized; the pose head after the pooled features (Gemm, coordinate arithmetic, softplus)
stays float32, so the outputs carry no 8-bit rounding of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .models.normalization import IMAGENET_NORMALIZATION, check_normalization
from .models.posenet import POSE_OUTPUTS
from .models.registry import get_arch
from .safe_load import CheckpointError, sniff_file_type
from .types import Pose25D

__all__ = [
    "ONNX_INPUT",
    "DEFAULT_OPSET",
    "CALIBRATION_METHODS",
    "export_onnx",
    "export_checkpoint",
    "quantize_onnx",
    "file_sha256",
    "OnnxPoseNet",
]

ONNX_INPUT = "images"
#: ONNX opset of exports (supported by the pinned onnxruntime).
DEFAULT_OPSET = 17
#: Calibration methods of :func:`quantize_onnx` (ONNX Runtime's names, lower case).
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
#: Node types quantized to int8 (the compute; everything else stays float32).
_QUANT_OPS = ("Conv", "ConvTranspose", "Add", "MaxPool")
#: Node types of the pose head that are quantized anyway (the heatmap head's deconvolutions).
_HEAD_QUANT_OPS = ("Conv", "ConvTranspose")


def file_sha256(path: str | PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _PoseOutputs(nn.Module):
    """Dict outputs -> the fixed tuple (uv, z_rel, confidence) an ONNX graph needs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model(images)
        return out["uv"], out["z_rel"], out["confidence"]


def export_onnx(model: nn.Module, path: str | PathLike[str], input_size: int,
                opset: int = DEFAULT_OPSET, normalization: Mapping[str, Any] =
                IMAGENET_NORMALIZATION, arch: Mapping[str, Any] | None = None,
                dynamic_batch: bool = True, source_sha256: str | None = None) -> Path:
    """Export a PoseNet to ONNX (written atomically).

    Args:
        model: a :class:`~handpose.core.models.PoseNet` (any head); exported in eval mode,
            its train/eval flags are restored afterwards.
        path: the ``.onnx`` file to write.
        input_size: S, side of the square input in pixels.
        opset: ONNX opset version.
        normalization: stored as metadata for the session's users.
        arch: ``{"name", "kwargs"}`` metadata (default: ``get_arch(model)`` if available).
        dynamic_batch: a dynamic batch axis (else batch 1 is fixed).
        source_sha256: SHA-256 of the checkpoint file the model comes from (metadata
            ``source_sha256``), None when there is none.

    Returns:
        the path written.
    """
    if not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"input_size must be an int >= 32 pixels; got {input_size!r}")
    norm = check_normalization(normalization)
    if arch is None:
        try:
            arch = get_arch(model)
        except ValueError:
            arch = {}
    flags = {name: m.training for name, m in model.named_modules()}
    wrapper = _PoseOutputs(model).eval()
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    param = next(model.parameters())
    dummy = torch.zeros(1, 3, input_size, input_size, dtype=param.dtype, device=param.device)
    axes = {n: {0: "batch"} for n in (ONNX_INPUT, *POSE_OUTPUTS)} if dynamic_batch else None
    try:
        # The legacy TorchScript exporter: the torch.export-based one needs onnxscript, which
        # handpose does not depend on. Its tracer warnings are about our input-shape checks,
        # which are constant for a fixed input size.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(wrapper, (dummy,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=[ONNX_INPUT], output_names=list(POSE_OUTPUTS),
                              dynamic_axes=axes, do_constant_folding=True)
        import onnx

        proto = onnx.load(str(tmp))
        meta = {"input_size": input_size, "normalization": {k: list(v) for k, v in norm.items()},
                "arch": dict(arch), "joint_order": "handpose", "producer": "handpose",
                "precision": "fp32"}
        if source_sha256 is not None:
            meta["source_sha256"] = str(source_sha256)
        _set_metadata(proto, meta)
        onnx.save(proto, str(tmp))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        for name, m in model.named_modules():
            m.training = flags[name]
    return dest


def export_checkpoint(checkpoint: str | PathLike[str], path: str | PathLike[str],
                      opset: int = DEFAULT_OPSET) -> Path:
    """Load a handpose checkpoint and export its model with its input size and normalisation.

    Raises:
        CheckpointError: the checkpoint cannot be loaded (see ``load_checkpoint``).
    """
    from .checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    return export_onnx(model, path, meta.input_size, opset, meta.normalization, meta.arch,
                       source_sha256=file_sha256(checkpoint))


def _set_metadata(proto: Any, meta: Mapping[str, Any]) -> None:
    """Set (replace) ONNX metadata entries, each value as a JSON string."""
    keep = [(e.key, e.value) for e in proto.metadata_props if e.key not in meta]
    del proto.metadata_props[:]
    for key, value in [*keep, *((k, json.dumps(v)) for k, v in meta.items())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _decode_metadata(raw: Mapping[str, str]) -> dict[str, Any]:
    """Metadata strings -> values (JSON; a non-JSON entry of another tool stays a string)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _normalised_batch(images: Any, size: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Dataset crops (B, 3, S, S) uint8 (or float in [0, 1]) -> normalised float32."""
    x = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1:] != (3, size, size):
        raise ValueError(f"calibration crops must have shape (3, {size}, {size}) (the "
                         f"network's input size); got {x.shape[1:]}")
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return (x - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)


def _calibration_batches(calibration: Any, size: int, normalization: Mapping[str, Any],
                         limit: int, batch_size: int) -> Iterator[np.ndarray]:
    """(B, 3, S, S) normalised float32 batches of at most ``limit`` crops in total."""
    mean = np.asarray(normalization["mean"], np.float32)
    std = np.asarray(normalization["std"], np.float32)
    if isinstance(calibration, np.ndarray | Tensor):
        calibration = [calibration]  # one batch
    if isinstance(calibration, list | tuple):
        is_dataset = bool(calibration) and isinstance(calibration[0], Mapping)
    else:
        is_dataset = hasattr(calibration, "__getitem__") and hasattr(calibration, "__len__")
    if is_dataset:  # samples {"rgb": (3, S, S)} (or bare crops)
        n = min(len(calibration), limit)
        for start in range(0, n, batch_size):
            items = [calibration[i] for i in range(start, min(start + batch_size, n))]
            rgb = [it["rgb"] if isinstance(it, Mapping) else it for it in items]
            yield _normalised_batch(np.stack([np.asarray(r) for r in rgb]), size, mean, std)
        return
    if not isinstance(calibration, Iterable):
        raise ValueError("calibration must be a Dataset of crops or an iterable of (B, 3, S, S) "
                         f"normalised float32 arrays; got {type(calibration).__name__}")
    left = limit
    for batch in calibration:
        x = batch.detach().cpu().numpy() if isinstance(batch, Tensor) else np.asarray(batch)
        if x.ndim != 4 or x.shape[1:] != (3, size, size) or x.shape[0] < 1:
            raise ValueError(f"calibration batches must have shape (B, 3, {size}, {size}) "
                             f"(normalised float32); got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)):
            raise ValueError(f"calibration batches must be finite normalised floats (normalise "
                             f"uint8 crops first); got dtype {x.dtype}")
        yield np.ascontiguousarray(x[:left], dtype=np.float32)
        left -= min(left, len(x))
        if left == 0:
            return


def quantize_onnx(fp32_onnx: str | PathLike[str], out_path: str | PathLike[str],
                  calibration: Any, *, checkpoint: str | PathLike[str] | None = None,
                  method: str = "minmax", per_channel: bool = True, limit: int = 256,
                  batch_size: int = 16, reduce_range: bool = False) -> Path:
    """Static int8 quantization (QDQ) of an exported PoseNet (written atomically).

    Args:
        fp32_onnx: a float32 model of :func:`export_onnx`.
        out_path: the int8 ``.onnx`` to write (by convention ``<name>.int8.onnx``).
        calibration: hand crops like the ones the network will see: a Dataset whose samples
            hold ``"rgb"`` (3, S, S) uint8 (or float in [0, 1]; normalised here with the
            model's normalisation), or an iterable of (B, 3, S, S) normalised float32 arrays
            (or one such array).
        checkpoint: the checkpoint the model was exported from; its SHA-256 is recorded as
            ``source_sha256``. None: the fp32 model's own ``source_sha256`` is kept (a
            ValueError when it has none: the int8 file must name its source).
        method: "minmax" (default: the observed range, exact for every calibration crop and
            fast with little memory), "entropy" or "percentile" (99.999 %, histogram based;
            they hold every intermediate tensor of the calibration set in memory).
        per_channel: one weight scale per output channel (ResNet weights vary across
            channels; costs almost nothing in speed).
        limit: at most this many calibration crops.
        batch_size: crops per calibration batch (for a Dataset).
        reduce_range: 7-bit weights, for x86 CPUs without VNNI where 8-bit products may
            saturate (off: this project's CPUs have VNNI).

    Returns:
        the path written. Its metadata: the fp32 model's, plus ``precision`` "int8",
        ``source_sha256`` and ``quantization`` (method, per_channel, calibration_crops, ...).

    Raises:
        ValueError: an unknown method, bad or no calibration crops, a model that is already
            int8 or whose source checkpoint is unknown.
        CheckpointError: ``fp32_onnx`` is missing or no ONNX model.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}; got {method!r}")
    if limit < 1 or batch_size < 1:
        raise ValueError(f"limit and batch_size must be >= 1; got {limit}, {batch_size}")
    src = OnnxPoseNet(fp32_onnx)  # validates the file
    if src.precision != "fp32":
        raise ValueError(f"{fp32_onnx} is already {src.precision}: quantize the float32 export")
    sha = file_sha256(checkpoint) if checkpoint is not None else src.source_sha256
    if sha is None:
        raise ValueError(f"{fp32_onnx} does not name its source checkpoint (no source_sha256 "
                         "metadata): pass checkpoint=PATH")
    batches = list(_calibration_batches(calibration, src.input_size, src.normalization, limit,
                                        batch_size))
    crops = sum(len(b) for b in batches)
    if crops == 0:
        raise ValueError("calibration gave no crops: pass a non-empty Dataset or iterable of "
                         "(B, 3, S, S) batches")

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        """The batches, one range at a time (ONNX Runtime's strided calibration)."""

        def __len__(self) -> int:
            return len(batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._it = iter(batches[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {ONNX_INPUT: x}

    reader = _Reader()
    reader.set_range(0, len(batches))
    dest = Path(out_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory(prefix="handpose-quant-") as tmp_dir:
        pre = Path(tmp_dir) / "pre.onnx"
        quant_pre_process(str(src.path), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        exclude = [n.name for n in graph.node
                   if "/head/" in n.name and n.op_type not in _HEAD_QUANT_OPS]
        out_tmp = Path(tmp_dir) / "int8.onnx"
        # One batch at a time (stride 1): the calibrator merges each batch's ranges or
        # histograms, so memory holds one batch's activations, not the whole set's.
        # (CalibMaxIntermediateOutputs is not used: onnxruntime 1.31 drops full chunks.)
        quantize_static(str(pre), str(out_tmp), reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(_QUANT_OPS), per_channel=per_channel,
                        reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                        calibrate_method=methods[method],
                        extra_options={"CalibStridedMinMax": 1})
        proto = onnx.load(str(out_tmp))
        meta = dict(src.metadata)
        meta.update(precision="int8", source_sha256=sha, quantization={
            "format": "QDQ", "method": method, "per_channel": bool(per_channel),
            "weights": "int8", "activations": "uint8", "reduce_range": bool(reduce_range),
            "calibration_crops": crops, "float32_nodes": len(exclude)})
        _set_metadata(proto, meta)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        try:
            onnx.save(proto, str(tmp))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return dest


class OnnxPoseNet:
    """A PoseNet exported by :func:`export_onnx`, run by ONNX Runtime on the CPU.

    Args:
        path: the ``.onnx`` file.
        intra_op_threads: threads inside one operator (None = ONNX Runtime's default, all
            cores; 1-2 keep a GUI responsive).
        inter_op_threads: threads across operators (None = default).
        spin: let the intra-op threads busy-wait for work after a run (ONNX Runtime's
            default). Off by default: on a 2-core machine the spinning threads take the cores
            from the tracker's Python stages between network runs (on the tracked
            real_eval_hgc video the 3D filter took 0.86 ms a frame instead of 0.21, the frame
            6.6 ms instead of 6.0; the network itself ~0.3 ms slower without).

    Attributes:
        input_size: S (pixels) from the metadata (or the graph's input shape).
        normalization: ``{"mean", "std"}`` from the metadata (ImageNet if absent).
        arch: ``{"name", "kwargs"}`` or {} if absent.
        precision: "fp32" or "int8" (metadata ``precision``; "fp32" if absent). An int8 (QDQ)
            file loads and runs like a float one: same input, same outputs.
        source_sha256: SHA-256 of the source checkpoint file, None if unknown.
        metadata: every metadata entry, JSON-decoded.
    """

    def __init__(self, path: str | PathLike[str], intra_op_threads: int | None = None,
                 inter_op_threads: int | None = None, spin: bool = False) -> None:
        import onnxruntime as ort

        p = Path(path)
        if not p.is_file():
            raise CheckpointError(f"ONNX model not found: {p} (check the path)")
        with p.open("rb") as f:
            kind = sniff_file_type(f.read(16))
        if kind in ("torch-zip", "torch-legacy"):
            raise CheckpointError(f"{p} is a PyTorch checkpoint, not an ONNX model: export "
                                  "it first (export_checkpoint / handpose-train export)")
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if intra_op_threads is not None:
            opts.intra_op_num_threads = int(intra_op_threads)
        if inter_op_threads is not None:
            opts.inter_op_num_threads = int(inter_op_threads)
        try:
            self.session = ort.InferenceSession(str(p), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{p} is not a valid ONNX model ({type(e).__name__}: "
                                  f"{str(e)[:200]})") from None
        names = [o.name for o in self.session.get_outputs()]
        if [i.name for i in self.session.get_inputs()] != [ONNX_INPUT] or \
                names != list(POSE_OUTPUTS):
            raise CheckpointError(f"{p} is not a handpose pose model (outputs {names}; "
                                  f"expected {list(POSE_OUTPUTS)})")
        meta = _decode_metadata(self.session.get_modelmeta().custom_metadata_map)
        self.metadata: dict[str, Any] = meta
        shape = self.session.get_inputs()[0].shape
        self.input_size = int(meta["input_size"]) if "input_size" in meta else int(shape[-1])
        self.normalization = check_normalization(meta.get("normalization",
                                                          IMAGENET_NORMALIZATION))
        self.arch: dict[str, Any] = dict(meta.get("arch", {}))
        self.precision = str(meta.get("precision", "fp32"))
        if self.precision not in ("fp32", "int8"):
            raise CheckpointError(f"{p}: unknown precision {self.precision!r} in its metadata")
        sha = meta.get("source_sha256")
        self.source_sha256: str | None = None if sha is None else str(sha)
        self.path = p

    def __call__(self, images: Any) -> dict[str, Any]:
        """Run the network.

        Args:
            images: (B, 3, S, S) normalised float images, numpy or torch.

        Returns:
            {"uv", "z_rel", "confidence"} as numpy arrays (torch tensors on the CPU if the
            input was a tensor), shapes as :meth:`PoseNet.forward`.
        """
        is_torch = isinstance(images, Tensor)
        x = images.detach().cpu().numpy() if is_torch else np.asarray(images)
        s = self.input_size
        if x.ndim != 4 or x.shape[1:] != (3, s, s):
            raise ValueError(f"images must have shape (B, 3, {s}, {s}); got {x.shape}")
        outs = self.session.run(None, {ONNX_INPUT: np.ascontiguousarray(x, dtype=np.float32)})
        res = dict(zip(POSE_OUTPUTS, outs))
        return {k: torch.from_numpy(v) for k, v in res.items()} if is_torch else res

    def predict(self, images: Any) -> Pose25D:
        """:meth:`__call__` packed as a :class:`Pose25D` (crop pixels)."""
        out = self(images)
        return Pose25D(uv=out["uv"], z_rel=out["z_rel"], confidence=out["confidence"])

"""ONNX export of a PoseNet and an ONNX Runtime (CPU) session that behaves like it.

The graph has one input ``images`` (B, 3, S, S) float32, normalised as the network expects,
with a dynamic batch axis, and the outputs ``uv`` (B, 21, 2) crop pixels, ``z_rel`` (B, 21)
and ``confidence`` (B, 21) (:data:`~handpose.core.models.POSE_OUTPUTS`). The model's
``input_size``, ``normalization``, ``arch`` and ``joint_order`` are stored as ONNX metadata
(JSON strings), so an ``.onnx`` file is self-describing for :class:`OnnxPoseNet`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
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

__all__ = ["ONNX_INPUT", "DEFAULT_OPSET", "export_onnx", "export_checkpoint", "OnnxPoseNet"]

ONNX_INPUT = "images"
#: ONNX opset of exports (supported by the pinned onnxruntime).
DEFAULT_OPSET = 17


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
                dynamic_batch: bool = True) -> Path:
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
                "arch": dict(arch), "joint_order": "handpose", "producer": "handpose"}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
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
    return export_onnx(model, path, meta.input_size, opset, meta.normalization, meta.arch)


class OnnxPoseNet:
    """A PoseNet exported by :func:`export_onnx`, run by ONNX Runtime on the CPU.

    Args:
        path: the ``.onnx`` file.
        intra_op_threads: threads inside one operator (None = ONNX Runtime's default, all
            cores; 1-2 keep a GUI responsive).
        inter_op_threads: threads across operators (None = default).

    Attributes:
        input_size: S (pixels) from the metadata (or the graph's input shape).
        normalization: ``{"mean", "std"}`` from the metadata (ImageNet if absent).
        arch: ``{"name", "kwargs"}`` or {} if absent.
    """

    def __init__(self, path: str | PathLike[str], intra_op_threads: int | None = None,
                 inter_op_threads: int | None = None) -> None:
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
        meta = self.session.get_modelmeta().custom_metadata_map
        shape = self.session.get_inputs()[0].shape
        self.input_size = int(json.loads(meta["input_size"])) if "input_size" in meta \
            else int(shape[-1])
        self.normalization = check_normalization(
            json.loads(meta["normalization"]) if "normalization" in meta
            else IMAGENET_NORMALIZATION)
        self.arch: dict[str, Any] = json.loads(meta.get("arch", "{}"))
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

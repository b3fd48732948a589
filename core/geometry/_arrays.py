"""Internal: the one numpy/torch pattern of the geometry and metrics modules.

Public functions accept numpy arrays, torch tensors or nested lists. They compute in torch:

* if any array argument is a torch tensor, every argument is moved to the device of the first
  tensor and to the widest floating dtype among the tensors (float32 when all tensors are
  integer), and the result is a tensor (autograd flows through);
* if no argument is a tensor, everything is converted to float64 CPU tensors and the result
  is returned as float64 numpy arrays.

:func:`as_arrays` is the variant of the per-frame functions (projection, lifting, crops): with no
tensor among the arguments they compute in float64 numpy instead (a small numpy call costs a
fraction of a torch one, which is what the tracker pays per frame), written once against the
namespace ``xp`` it returns (numpy or torch: the functions they use exist in both).

Value checks (finite, positive, ...) read tensor values back to the host; they are skipped
while tracing/compiling/exporting so the functions stay traceable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "as_arrays",
    "as_tensors",
    "xp_of",
    "finish",
    "checks_enabled",
    "checks_apply",
    "check_shape",
    "check_finite",
    "shape_str",
]


def as_tensors(*arrays: Any) -> tuple[list[torch.Tensor], bool]:
    """Convert ``arrays`` to tensors of one dtype/device; return them and ``numpy_out``.

    ``None`` entries are not allowed here (callers handle optional arguments themselves).
    """
    tensors = [a for a in arrays if isinstance(a, torch.Tensor)]
    if not tensors:
        dtype, device, numpy_out = torch.float64, torch.device("cpu"), True
    else:
        floats = [t.dtype for t in tensors if t.is_floating_point()]
        if floats:
            dtype = floats[0]
            for d in floats[1:]:
                dtype = torch.promote_types(dtype, d)
        else:
            dtype = torch.float32
        device, numpy_out = tensors[0].device, False
    out = []
    for a in arrays:
        if isinstance(a, torch.Tensor):
            out.append(a.to(device=device, dtype=dtype))
        else:
            arr = np.asarray(a)
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                           or arr.dtype == np.bool_):
                raise ValueError(f"expected a numeric array or tensor; got {type(a).__name__}")
            out.append(torch.as_tensor(arr, dtype=dtype, device=device))
    return out, numpy_out


def as_arrays(*arrays: Any) -> tuple[list[Any], Any]:
    """Like :func:`as_tensors`, but without a tensor among ``arrays`` they become float64 numpy
    arrays and the namespace returned is ``numpy`` (``torch`` otherwise)."""
    if any(isinstance(a, torch.Tensor) for a in arrays):
        return as_tensors(*arrays)[0], torch
    out = []
    for a in arrays:
        arr = np.asarray(a)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       or arr.dtype == np.bool_):
            raise ValueError(f"expected a numeric array or tensor; got {type(a).__name__}")
        out.append(arr.astype(np.float64, copy=False))
    return out, np


def xp_of(x: Any) -> Any:
    """The namespace of an array: ``torch`` for a tensor, ``numpy`` otherwise."""
    return torch if isinstance(x, torch.Tensor) else np


def finish(x: torch.Tensor, numpy_out: bool) -> Any:
    """Return ``x`` as the caller's kind: a float64 numpy array or the tensor itself."""
    if numpy_out:
        return x.detach().cpu().numpy()
    return x


def checks_enabled() -> bool:
    """False while tracing, compiling or exporting to ONNX (value checks would break them)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    if torch.compiler.is_compiling():
        return False
    return not torch.onnx.is_in_onnx_export()


def checks_apply(x: Any) -> bool:
    """Whether value checks run on ``x``: always on numpy arrays, on tensors unless tracing,
    compiling or exporting (:func:`checks_enabled`)."""
    return isinstance(x, np.ndarray) or checks_enabled()


def shape_str(shape: tuple[int | None | str, ...]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"


def check_shape(name: str, x: Any, trailing: tuple[int | None, ...],
                lead: str = "...") -> None:
    """Raise ``ValueError`` unless ``x.shape`` ends with ``trailing`` (``None`` = any size)."""
    got = tuple(x.shape)
    n = len(trailing)
    ok = len(got) >= n and all(t is None or t == g for t, g in zip(trailing, got[len(got) - n:]))
    if not ok:
        want = shape_str(trailing)
        want = f"({lead}, {want[1:]}" if lead else want
        raise ValueError(f"{name} must have shape {want}; got {got}")


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if ``x`` (tensor or numpy array) holds NaN or infinity."""
    if checks_apply(x):
        finite = xp_of(x).isfinite(x)
        if not bool(finite.all()):
            raise ValueError(f"{name} must be finite; got {int((~finite).sum())} NaN/inf "
                             "value(s)")

"""Test stand-ins for the pipeline: synthetic scenes, an oracle network and a scripted detector.

The oracle network sees only the crops, like a real one. It can still return the exact
ground truth because the synthetic frames are *coordinate images*: pixel (u, v) holds
R = u * 255 / (W - 1), G = v * 255 / (H - 1), B = 128. Bilinear cropping keeps these ramps
linear, so a least-squares fit over a crop's pixels recovers the crop's affine (quantisation
averages out to ~0.05 px), and the scene's ground-truth joints are mapped into the crop. The
pipeline's cropping, rotation, uncropping, lifting and tracking are therefore exercised for
real, and joints outside a crop (a hand that left) get a low confidence, as a network would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from handpose.core.biomech import forward_kinematics
from handpose.core.geometry import apply_affine, project, to_25d
from handpose.core.handmodel import load_hand_model
from handpose.core.inference.detector import HandDetection
from handpose.core.inference.tracker import keypoint_box, upright_rotation
from handpose.core.types import Frame, Pose25D

W, H = 640, 480
K_TRUE = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])


def coordinate_image(width: int = W, height: int = H) -> np.ndarray:
    u = np.arange(width) * 255.0 / (width - 1)
    v = np.arange(height) * 255.0 / (height - 1)
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = np.rint(u)[None, :]
    img[..., 1] = np.rint(v)[:, None]
    img[..., 2] = 128
    return img


def curled_right_hand(flex_deg: float = 25.0) -> np.ndarray:
    """(21, 3) a feasible right hand in the hand frame (metres), fingers flexed."""
    m = load_hand_model()
    flex = np.full(15, np.radians(flex_deg))
    flex[:3] = np.radians([10.0, 15.0, 15.0])
    return np.asarray(forward_kinematics(m.rest_pose, flex, np.zeros(15), m.bone_lengths))


def place_hand(centre_uv, depth: float, roll: float = 0.0, left: bool = False,
               hand: np.ndarray | None = None, K: np.ndarray = K_TRUE) -> np.ndarray:
    """Camera-frame joints (21, 3): palm towards the camera, fingers up, turned by ``roll``
    (radians, clockwise in the image), the middle MCP at ``centre_uv`` and ``depth``."""
    j = curled_right_hand() if hand is None else hand
    R = np.diag([1.0, -1.0, -1.0])  # hand +y (fingers) -> image up, volar side -> camera
    c, s = np.cos(roll), np.sin(roll)
    Rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    p = j @ (Rz @ R).T
    if left:
        p = p * np.array([-1.0, 1.0, 1.0])
    ray = np.linalg.solve(K, np.array([centre_uv[0], centre_uv[1], 1.0]))
    return p - p[9] + ray * depth


@dataclass
class Scene:
    """Ground truth of the current frame: camera-frame joints of each visible hand."""

    hands: list[np.ndarray] = field(default_factory=list)
    K: np.ndarray = field(default_factory=lambda: K_TRUE.copy())
    image: np.ndarray = field(default_factory=coordinate_image)
    index: int = 0

    def frame(self, hands: list[np.ndarray], depth: np.ndarray | None = None) -> Frame:
        self.hands = [np.asarray(h, np.float64) for h in hands]
        self.index += 1
        return Frame(rgb=self.image, K=self.K, depth=depth, timestamp=self.index / 30.0,
                     index=self.index)

    def uv(self, i: int) -> np.ndarray:
        return np.asarray(project(self.hands[i], self.K))


def crop_to_full(crop: np.ndarray, width: int = W, height: int = H) -> np.ndarray | None:
    """Least-squares (2, 3) affine crop pixels -> full-image pixels, None if too few pixels."""
    valid = np.abs(crop[..., 2].astype(np.int64) - 128) <= 1
    ii, jj = np.nonzero(valid)
    if len(ii) < 20:
        return None
    u = crop[ii, jj, 0].astype(np.float64) * (width - 1) / 255.0
    v = crop[ii, jj, 1].astype(np.float64) * (height - 1) / 255.0
    X = np.stack([jj, ii, np.ones_like(jj)], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(X, np.stack([u, v], 1), rcond=None)
    return coef.T


class OracleBackend:
    """A network stand-in returning the scene's ground-truth 2.5D pose for each crop."""

    name = "oracle"

    def __init__(self, scene: Scene, input_size: int = 128) -> None:
        self.scene = scene
        self.input_size = input_size
        self.batches: list[int] = []
        self.mirrored: list[list[bool]] = []  # per batch: which crops were mirror images

    def run(self, crops: np.ndarray) -> Pose25D:
        b, s = crops.shape[0], self.input_size
        self.batches.append(b)
        self.mirrored.append([])
        uv = np.full((b, 21, 2), (s - 1) / 2.0)
        z = np.zeros((b, 21))
        conf = np.full((b, 21), 0.05)
        for n in range(b):
            h, w = self.scene.image.shape[:2]
            to_full = crop_to_full(crops[n], w, h)
            self.mirrored[-1].append(to_full is not None
                                     and bool(np.linalg.det(to_full[:, :2]) < 0))
            if to_full is None or not self.scene.hands:
                continue
            A = np.linalg.inv(np.vstack([to_full, [0.0, 0.0, 1.0]]))[:2]
            best, best_in = None, 0.5
            for joints in self.scene.hands:
                q = np.asarray(apply_affine(A, np.asarray(project(joints, self.scene.K))))
                inside = np.mean(np.all((q >= -0.5) & (q <= s - 0.5), -1))
                if inside > best_in:
                    best, best_in = (q, joints), inside
            if best is None:
                continue
            q, joints = best
            _, z_rel, _ = to_25d(joints, self.scene.K)
            ins = np.all((q >= -0.5) & (q <= s - 0.5), -1)
            uv[n], z[n] = q, z_rel
            conf[n] = np.where(ins, 0.95, 0.2)
        return Pose25D(uv=uv, z_rel=z, confidence=conf)


class ScriptedDetector:
    """A palm-detector stand-in: one detection per scene hand whose centre is in the image,
    with MediaPipe's region geometry (side 1.43 x the keypoint box, upright rotation)."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.calls: list[int] = []

    def detect(self, rgb: np.ndarray) -> list[HandDetection]:
        self.calls.append(self.scene.index)
        out = []
        for i in range(len(self.scene.hands)):
            uv = self.scene.uv(i)
            box = keypoint_box(uv)
            c = box[:2] + box[2:] / 2
            if not (0 <= c[0] < rgb.shape[1] and 0 <= c[1] < rgb.shape[0]):
                continue
            side = 1.43 * box[2:].max()
            out.append(HandDetection((float(c[0]), float(c[1])), (side, side),
                                     upright_rotation(uv), 0.9))
        return out

"""Frame sources: arrays, videos, image folders, RGB-D folders, sessions, the demo, specs."""

from __future__ import annotations

import json
import threading
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from handpose.core.data.imageio import encode_depth_png, read_depth_png
from handpose.core.data.session_writer import SessionWriter
from handpose.core.data.sources import (
    DEMO_ENV,
    ArraySource,
    FolderSource,
    RGBDSource,
    SessionSource,
    SourceError,
    SpecError,
    VideoSource,
    open_source,
    parse_spec,
)
from handpose.core.data.sources.pixels import bgr_to_rgb, check_depth
from handpose.core.geometry.camera import default_intrinsics
from handpose.core.types import Frame

K0 = np.array([[500.0, 0, 31.5], [0, 500.0, 23.5], [0, 0, 1]])


def _img(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    """A frame whose red channel encodes i (survives JPEG: uniform 8 * i)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = 8 * i
    a[..., 1] = 255 - 8 * i
    return a


# -- ArraySource and the ReplaySource machinery ------------------------------------------------
def test_array_source_sequence_len_seek_timestamps_and_default_K():
    frames = [_img(i) for i in range(5)]
    src = ArraySource(frames, fps=10)
    assert len(src) == 5 and src.seekable and not src.live
    assert src.size == (64, 48) and src.fps == 10 and not src.has_K and not src.has_depth
    np.testing.assert_allclose(src.K, default_intrinsics(64, 48))
    out = list(src)
    assert [f.index for f in out] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([f.timestamp for f in out], np.arange(5) / 10)
    assert all(np.array_equal(f.rgb, frames[i]) for i, f in enumerate(out))
    assert src.read() is None and src.position == 5
    src.seek(3)
    assert src.position == 3
    f = src.read()
    assert f is not None and f.index == 3 and np.array_equal(f.rgb, frames[3])
    with pytest.raises(ValueError, match=r"index must be an int in \[0, 5\)"):
        src.seek(5)


def test_array_source_explicit_K_and_depth_pairs():
    depth = np.full((48, 64), 0.6, np.float64)
    src = ArraySource([(_img(0), depth), (_img(1), None)], K=K0)
    assert src.has_K and src.has_depth
    a, b = list(src)
    np.testing.assert_array_equal(a.K, K0)
    assert a.depth is not None and a.depth.dtype == np.float32 and np.allclose(a.depth, 0.6)
    assert b.depth is None


def test_array_source_generator_is_lazy_and_not_seekable():
    pulled: list[int] = []

    def gen():
        for i in range(4):
            pulled.append(i)
            yield _img(i)

    src = ArraySource(gen(), fps=20)
    assert pulled == [0]  # only the first frame (for the size) was taken
    assert not src.seekable
    with pytest.raises(TypeError, match="unknown"):
        len(src)
    with pytest.raises(SourceError, match="not seekable"):
        src.seek(0)
    assert [f.index for f in src] == [0, 1, 2, 3]
    assert pulled == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="loop=True needs"):
        ArraySource(iter([_img(0)]), loop=True)


def test_array_source_bad_frames_name_their_position():
    frames = [_img(0), _img(1), _img(2).astype(np.float32) / 255]
    src = ArraySource(frames)
    assert src.read() is not None and src.read() is not None
    with pytest.raises(SourceError, match=r"array frame 2: rgb must be an \(H, W, 3\) uint8.*"
                                          r"float32.*astype\(np.uint8\)"):
        src.read()
    with pytest.raises(SourceError, match="frame 0: depth must be a float"):
        ArraySource([(_img(0), np.zeros((48, 64), np.uint16))])
    with pytest.raises(SourceError, match="no frames"):
        ArraySource([])
    with pytest.raises(ValueError, match=r"K must be a \(3, 3\)"):
        ArraySource([_img(0)], K=np.eye(4))
    with pytest.raises(ValueError, match="fps must be > 0"):
        ArraySource([_img(0)], fps=0)
    with pytest.raises(SourceError, match="is 32x16 but K is for 64x48"):
        list(ArraySource([_img(0), _img(1, 32, 16)], K=K0))


def test_loop_and_backward_seek_keep_timestamps_increasing():
    src = ArraySource([_img(i) for i in range(3)], fps=10, loop=True)
    out = [src.read() for _ in range(7)]
    assert all(f is not None for f in out)
    ts = np.array([f.timestamp for f in out if f is not None])
    assert [f.index for f in out if f is not None] == [0, 1, 2, 0, 1, 2, 0]
    assert np.all(np.diff(ts) > 0)
    np.testing.assert_allclose(np.diff(ts), 0.1)  # the wrap continues at the nominal period
    src.seek(0)
    f = src.read()
    assert f is not None and f.index == 0 and f.timestamp > ts[-1]
    src.seek(2)  # a forward jump keeps the recorded spacing
    g = src.read()
    assert g is not None and g.timestamp == pytest.approx(f.timestamp + 0.2)


def test_realtime_paces_at_fps_and_speed_and_fast_without():
    frames = [_img(i) for i in range(6)]
    t0 = time.perf_counter()
    assert len(list(ArraySource(frames, fps=50, realtime=True))) == 6
    paced = time.perf_counter() - t0
    assert 0.095 <= paced < 0.4  # 5 intervals of 20 ms
    src = ArraySource(frames, fps=50, realtime=True)
    src.speed = 2.0
    t0 = time.perf_counter()
    list(src)
    assert 0.045 <= time.perf_counter() - t0 < 0.09 + 0.1
    t0 = time.perf_counter()
    list(ArraySource(frames, fps=50))
    assert time.perf_counter() - t0 < 0.05


def test_close_is_idempotent_ends_iteration_and_wakes_a_paced_read():
    src = ArraySource([_img(i) for i in range(3)], fps=0.5, realtime=True)
    assert src.read() is not None
    threading.Timer(0.1, src.close).start()
    t0 = time.perf_counter()
    assert src.read() is None  # would have slept 2 s
    assert time.perf_counter() - t0 < 1.0
    src.close()
    assert src.closed and src.read() is None and list(src) == []
    with ArraySource([_img(0)]) as s2:
        assert s2.read() is not None
    assert s2.closed


# -- pixel conversion ----------------------------------------------------------------------------
def test_bgr_to_rgb_and_pixel_checks():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 10  # blue
    assert bgr_to_rgb(bgr, "cam")[0, 0].tolist() == [0, 0, 10]
    gray = np.full((2, 3), 7, np.uint8)
    assert bgr_to_rgb(gray, "cam").shape == (2, 3, 3)
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 2] = 9
    assert bgr_to_rgb(bgra, "cam")[0, 0].tolist() == [9, 0, 0]
    with pytest.raises(SourceError, match="cam delivered a uint16"):
        bgr_to_rgb(np.zeros((2, 3, 3), np.uint16), "cam")
    with pytest.raises(SourceError, match="depth must be a float"):
        check_depth(np.zeros((2, 2), np.float32), (2, 3), "x")


# -- video files ---------------------------------------------------------------------------------
def write_video(path: Path, n: int, fourcc: str = "MJPG", size=(64, 48), fps=25.0) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    assert w.isOpened()
    for i in range(n):
        w.write(cv2.cvtColor(_img(i, *size), cv2.COLOR_RGB2BGR))
    w.release()


@pytest.mark.parametrize("name,fourcc", [("v.avi", "MJPG"), ("v.mp4", "mp4v")])
def test_video_source_reads_seeks_and_loops(tmp_path, name, fourcc):
    path = tmp_path / name
    write_video(path, 12, fourcc)
    src = open_source(str(path))
    assert isinstance(src, VideoSource) and len(src) == 12 and src.fps == 25.0
    assert src.size == (64, 48) and not src.has_K
    frames = list(src)
    red = [float(f.rgb[..., 0].mean()) for f in frames]
    np.testing.assert_allclose(red, 8 * np.arange(12), atol=4)  # RGB order, frame order
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(12) / 25)
    src.seek(7)
    f = src.read()
    assert f is not None and f.index == 7 and abs(f.rgb[..., 0].mean() - 56) < 4
    src.close()
    looped = VideoSource(path, loop=True, K=K0)
    idx = [looped.read().index for _ in range(14)]  # type: ignore[union-attr]
    assert idx == list(range(12)) + [0, 1] and looped.has_K


def test_video_errors_name_the_path_and_a_bad_frame_ends_the_video(tmp_path, monkeypatch):
    with pytest.raises(SourceError, match=r"nope\.mp4: video file not found"):
        VideoSource(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SourceError, match=r"junk\.mp4: cannot open the video"):
        open_source(junk)
    path = tmp_path / "v.avi"
    write_video(path, 6)
    from handpose.core.data.errors import DataError
    from handpose.core.data.video import VideoDataset

    real = VideoDataset.read_frame

    def flaky(self, index):
        if index == 4:
            raise DataError(self.path, "cannot decode frame 4")
        return real(self, index)

    monkeypatch.setattr(VideoDataset, "read_frame", flaky)
    src = VideoSource(path)
    with pytest.warns(RuntimeWarning, match=r"v\.avi: frame 4 cannot be decoded; the video ends"):
        frames = list(src)
    assert len(frames) == 4 and len(src) == 4


# -- image folders -------------------------------------------------------------------------------
def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_folder_source_sorted_recursive_sizes_and_K(tmp_path):
    _write_png(tmp_path / "b.png", _img(2))
    _write_png(tmp_path / "a.png", _img(1))
    _write_png(tmp_path / "sub" / "c.png", _img(3, 32, 16))
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(f"folder:{tmp_path}")
    assert isinstance(src, FolderSource) and len(src) == 3 and src.fps is None
    frames = list(src)
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [8, 16, 24]  # a, b, sub/c
    assert frames[2].size == (32, 16)
    np.testing.assert_allclose(frames[2].K, default_intrinsics(32, 16))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(3) / 30)
    with_K = FolderSource(tmp_path, K=K0)
    with pytest.warns(RuntimeWarning, match=r"c\.png: the image is 32x16 but the given K"):
        kept = list(with_K)
    assert len(kept) == 2 and with_K.skipped == 1
    one = open_source(str(tmp_path / "a.png"))  # a single image file
    assert isinstance(one, FolderSource) and len(one) == 1


def test_folder_source_corrupt_images_skip_or_raise_and_empty_folders(tmp_path):
    _write_png(tmp_path / "0.png", _img(0))
    ok, png = cv2.imencode(".png", _img(1))
    (tmp_path / "1.png").write_bytes(png.tobytes()[: png.size // 2])  # truncated
    _write_png(tmp_path / "2.png", _img(2))
    src = FolderSource(tmp_path)
    with pytest.warns(RuntimeWarning, match=r"1\.png.*cannot be decoded"):
        frames = list(src)
    assert [f.index for f in frames] == [0, 2] and src.skipped == 1
    strict = FolderSource(tmp_path, skip_bad=False)
    strict.read()
    with pytest.raises(SourceError, match=r"1\.png: image cannot be decoded"):
        strict.read()
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(2):
        (bad / f"{i}.jpg").write_bytes(b"nope")
    with pytest.raises(SourceError, match="2 consecutive frames cannot be read"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        FolderSource(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"empty: no images in this folder \(looked for .jpg"):
        open_source(f"folder:{empty}")
    with pytest.raises(SourceError, match=r"missing: image folder not found"):
        open_source(f"folder:{tmp_path / 'missing'}")


# -- RGB-D folders -------------------------------------------------------------------------------
def _rgbd_folder(root: Path, n: int = 3, with_K: bool = True) -> np.ndarray:
    root.mkdir(parents=True, exist_ok=True)
    depth_mm = (np.arange(48 * 64).reshape(48, 64) % 2000 + 300).astype(np.uint16)
    entries = []
    for i in range(n):
        _write_png(root / f"{i}_rgb.png", _img(i))
        (root / f"{i}_depth.png").write_bytes(encode_depth_png(depth_mm / 1000.0 + 0.001 * i))
        e = {"rgb": f"{i}_rgb.png", "depth": f"{i}_depth.png"}
        if with_K:
            e["K"] = K0.tolist()
        entries.append(e)
    (root / "frames.json").write_text(json.dumps({"depth_unit": "millimetres",
                                                  "frames": entries}))
    return depth_mm


def test_rgbd_source_depth_in_metres_K_from_file(tmp_path):
    depth_mm = _rgbd_folder(tmp_path / "r")
    src = open_source(str(tmp_path / "r"))  # guessed from frames.json
    assert isinstance(src, RGBDSource) and len(src) == 3
    assert src.has_K and src.has_depth and src.size == (64, 48)
    frames = list(src)
    for i, f in enumerate(frames):
        assert f.depth is not None and f.depth.dtype == np.float32
        np.testing.assert_allclose(f.depth, (depth_mm + i) / 1000.0, atol=1e-6)
        np.testing.assert_allclose(f.K, K0, rtol=1e-6)
    no_K = _rgbd_folder(tmp_path / "n", 2, with_K=False)
    assert no_K is not None
    src2 = RGBDSource(tmp_path / "n")
    assert not src2.has_K
    np.testing.assert_allclose(src2.read().K, default_intrinsics(64, 48))  # type: ignore


def test_rgbd_source_misaligned_depth_is_skipped_and_missing_index_named(tmp_path):
    _rgbd_folder(tmp_path / "r", 3)
    (tmp_path / "r" / "1_depth.png").write_bytes(encode_depth_png(np.ones((10, 10))))
    src = RGBDSource(tmp_path / "r")
    with pytest.warns(RuntimeWarning, match=r"1_depth\.png: depth is 10x10 but the image is 64x48"):
        assert [f.index for f in src] == [0, 2]
    with pytest.raises(SourceError, match=r"frames\.json: not found"):
        open_source(f"rgbd:{tmp_path / 'nothing'}")


def test_rgbd_source_on_the_shared_real_frames(rgbd_dir):
    meta = json.loads((rgbd_dir / "frames.json").read_text())["frames"]
    src = open_source(f"rgbd:{rgbd_dir}")
    assert len(src) == len(meta) == 25 and src.size == (640, 480) and src.has_depth  # type: ignore
    for i, f in enumerate(src):
        if i in (0, 24):
            np.testing.assert_allclose(f.K, np.array(meta[i]["K"]), rtol=1e-6)
            np.testing.assert_array_equal(f.depth, read_depth_png(rgbd_dir / meta[i]["depth"]))


# -- sessions and the demo ----------------------------------------------------------------------
def write_session(path: Path, n: int = 4, t0: float = 100.0, dt: float = 0.05) -> None:
    with SessionWriter(path, K=K0, source="camera:0", fsync="close") as w:
        for i in range(n):
            d = np.full((48, 64), 0.5 + 0.01 * i, np.float32) if i % 2 == 0 else None
            w.append_frame(Frame(rgb=_img(i), K=K0, depth=d, timestamp=t0 + dt * i,
                                 index=10 + i))


def test_session_source_keeps_recorded_timestamps_indices_and_depth(tmp_path):
    write_session(tmp_path / "s", 4)
    src = open_source(str(tmp_path / "s"))  # guessed from session.json
    assert isinstance(src, SessionSource) and len(src) == 4
    assert src.has_K and src.has_depth and src.fps == pytest.approx(20.0)
    frames = list(src)
    np.testing.assert_allclose([f.timestamp for f in frames], 100 + 0.05 * np.arange(4))
    assert [f.index for f in frames] == [0, 1, 2, 3]  # session frame indices (labels use them)
    assert frames[0].depth is not None and np.allclose(frames[0].depth, 0.5, atol=1e-3)
    assert frames[1].depth is None
    assert abs(int(frames[3].rgb[..., 0].mean()) - 24) <= 2  # JPEG
    np.testing.assert_allclose(frames[2].K, K0)
    assert src.reader.poses(0) is None  # the reader stays reachable for annotation


def test_session_source_realtime_follows_recorded_gaps(tmp_path):
    write_session(tmp_path / "s", 4, dt=0.04)
    src = SessionSource(tmp_path / "s", realtime=True)
    t0 = time.perf_counter()
    assert len(list(src)) == 4
    assert 0.11 <= time.perf_counter() - t0 < 0.5  # 3 gaps of 40 ms


def test_session_source_errors(tmp_path):
    with pytest.raises(SourceError, match=r"not a session folder \(no session\.json\)"):
        open_source(f"session:{tmp_path}")
    write_session(tmp_path / "s", 3)
    (tmp_path / "s" / "rgb" / "000001.jpg").write_bytes(b"\xff\xd8 truncated")
    src = SessionSource(tmp_path / "s")
    with pytest.warns(RuntimeWarning, match=r"000001\.jpg: image cannot be decoded"):
        assert [f.index for f in src] == [0, 2]


def test_demo_missing_says_how_to_get_it_and_env_var_points_to_a_session(tmp_path, monkeypatch):
    monkeypatch.setenv(DEMO_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SourceError, match=r"demo recording is missing.*nowhere.*handpose-data"
                                          r".*HANDPOSE_DEMO_DIR"):
        open_source("demo")
    monkeypatch.delenv(DEMO_ENV)
    from handpose.core.data.sources.replay import demo_dir

    assert demo_dir().parts[-2:] == ("assets", "demo")
    write_session(tmp_path / "demo", 3)
    monkeypatch.setenv(DEMO_ENV, str(tmp_path / "demo"))
    src = open_source("demo")
    assert isinstance(src, SessionSource) and src.loop and src.realtime
    src.realtime = False
    assert [src.read().index for _ in range(5)] == [0, 1, 2, 0, 1]  # type: ignore
    fast = open_source("demo", realtime=False, loop=False)
    assert not fast.realtime and len(list(fast)) == 3  # type: ignore


# -- specs ----------------------------------------------------------------------------------------
def test_parse_spec_grammar(tmp_path):
    s = parse_spec("camera:2@1280x720@30")
    assert (s.kind, s.index, s.width, s.height, s.fps) == ("camera", 2, 1280, 720, 30.0)
    assert parse_spec("camera").index == 0 and parse_spec("camera:1@640x480").fps is None
    assert parse_spec("realsense:0123456@848x480@60").serial == "0123456"
    assert parse_spec("kinect:1").index == 1 and parse_spec("demo").kind == "demo"
    assert parse_spec(f"rgbd:{tmp_path}").path == tmp_path
    (tmp_path / "clip.webm").write_bytes(b"x")
    assert parse_spec(tmp_path / "clip.webm").kind == "video"
    assert parse_spec(str(tmp_path)).kind == "folder"
    (tmp_path / "frames.json").write_text("{}")
    assert parse_spec(str(tmp_path)).kind == "rgbd"
    (tmp_path / "session.json").write_text("{}")
    assert parse_spec(str(tmp_path)).kind == "session"
    for bad, msg in [("camera:x", "index must be an integer"), ("camera:0@0x480", "> 0"),
                     ("camera:0@640", "cannot parse"), ("", "empty source spec"),
                     ("folder:", "a path is missing"), ("camra:0", "no such file or folder"),
                     (r"C:\nope.mp4", "no such file or folder"), ("kinect@640x480", None)]:
        if msg is None:
            with pytest.raises(SpecError, match="Azure Kinect colour modes"):
                open_source(bad)
        else:
            with pytest.raises(SpecError, match=msg):
                parse_spec(bad)
    assert issubclass(SpecError, ValueError) and issubclass(SpecError, SourceError)


def test_no_camera_here_fails_fast_with_the_available_list():
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match=r"camera 7 could not be opened; available: "):
        open_source("camera:7")
    assert time.perf_counter() - t0 < 3.0

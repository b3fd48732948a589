"""Image/depth decoding errors name the file; depth encodings decode to the right metres."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from handpose.core.data.errors import DataError
from handpose.core.data.imageio import (
    encode_depth_png,
    encode_jpeg,
    read_depth_png,
    read_labels,
    read_rgb,
    read_rhd_depth,
)
from handpose.core.data.jsonio import array_entries, iter_jsonl, load_json, write_json_atomic


def test_rgb_roundtrip_and_channel_order(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 200  # red
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = read_rgb(p)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [200, 0, 0]
    gray = tmp_path / "g.png"
    cv2.imwrite(str(gray), np.full((5, 6), 77, np.uint8))
    assert read_rgb(gray).shape == (5, 6, 3) and read_rgb(gray)[0, 0].tolist() == [77] * 3


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_corrupt_missing_empty_images_raise_dataerror(tmp_path, rng, ext):
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = cv2.imencode(ext, img)[1].tobytes()
    p = tmp_path / f"t{ext}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"t\\{ext}: image cannot be decoded") as e:
        read_rgb(p)
    assert e.value.path == str(p)
    junk = tmp_path / f"junk{ext}"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="cannot be decoded"):
        read_rgb(junk)
    with pytest.raises(DataError, match="missing.*not found|file not found"):
        read_rgb(tmp_path / f"missing{ext}")
    (tmp_path / f"empty{ext}").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_rgb(tmp_path / f"empty{ext}")


def test_depth_png_roundtrip_millimetres(tmp_path):
    depth = np.array([[0.0, 0.4567], [1.2, np.nan]], np.float32)
    p = tmp_path / "d.png"
    p.write_bytes(encode_depth_png(depth))
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.tolist() == [[0, 457], [1200, 0]]
    np.testing.assert_allclose(read_depth_png(p), [[0, 0.457], [1.2, 0]], atol=1e-6)
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(DataError, match="single-channel uint16"):
        read_depth_png(tmp_path / "rgb.png")


def test_rhd_depth_decoding_and_labels(tmp_path):
    # RHD: depth = (R * 256 + G) / 65535 * 5 m; store 1 m and 2.5 m
    vals = np.array([1.0, 2.5])
    code = np.rint(vals / 5.0 * 65535).astype(np.int64)
    rgb = np.zeros((1, 2, 3), np.uint8)
    rgb[0, :, 0], rgb[0, :, 1] = code // 256, code % 256
    p = tmp_path / "rhd.png"
    cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_allclose(read_rhd_depth(p)[0], vals, atol=1e-4)
    lab = np.array([[0, 1, 17, 18, 33]], np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), lab)
    assert read_labels(tmp_path / "m.png").tolist() == lab.tolist()


def test_jpeg_encoder_validates():
    with pytest.raises(ValueError, match="uint8"):
        encode_jpeg(np.zeros((4, 4, 3), np.float32))
    data = encode_jpeg(np.full((4, 4, 3), 128, np.uint8))
    assert data[:2] == b"\xff\xd8"


def test_json_errors_name_file_and_line(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('[\n  [1, 2],\n  [3, 4],\n')
    with pytest.raises(DataError, match=r"x\.json, line 4: truncated JSON") as e:
        load_json(p)
    assert e.value.line == 4
    p.write_text('{"a": 1,, "b": 2}')
    with pytest.raises(DataError, match=r"line 1: invalid JSON"):
        load_json(p)
    bad: list[tuple[int, str]] = []
    arr, ok = array_entries(p, [[1, 2], [3], [5, "x"], [7, 8]], (2,),
                            lambda err, i: bad.append((i, str(err))))
    assert ok.tolist() == [True, False, False, True]
    assert arr[3].tolist() == [7, 8] and arr[1].tolist() == [0, 0]
    assert [i for i, _ in bad] == [1, 2] and "entry 1" in bad[0][1]


def test_jsonl_torn_last_line_and_bad_middle_line(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"i": 0}\n{"i": 1}\n{"i": 2, "x": [1, 2')
    with pytest.warns(RuntimeWarning, match="torn last line"):
        rows = list(iter_jsonl(p))
    assert [o["i"] for _, _, o in rows] == [0, 1]
    assert rows[1][1] == len(b'{"i": 0}\n')  # byte offsets
    p.write_bytes(b'{"i": 0}\nnot json\n{"i": 2}\n')
    with pytest.raises(DataError, match=r"a\.jsonl, line 2"):
        list(iter_jsonl(p))
    errs: list[DataError] = []
    assert [o["i"] for _, _, o in iter_jsonl(p, on_bad=errs.append)] == [0, 2]
    assert errs[0].line == 2


def test_write_json_atomic_replaces_whole_file(tmp_path):
    p = tmp_path / "s.json"
    write_json_atomic(p, {"a": 1})
    write_json_atomic(p, {"a": 2, "b": [1, 2]})
    assert load_json(p) == {"a": 2, "b": [1, 2]}
    assert [f.name for f in tmp_path.iterdir()] == ["s.json"]  # no temp file left

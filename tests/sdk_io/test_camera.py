"""Camera capture through OpenCV: video files, image sequences, the frame-rate cap, warm-up,
errors (no camera exists on CI machines: files are how the same class is fed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from edgeshelf.sdk.camera import Camera, CameraOptions, ImageFileSource
from edgeshelf.sdk.errors import DeviceError, InvalidInputError

from tests.conftest import require_shared_data

W, H, N, FPS = 64, 48, 30, 30.0


def _bgr(i: int) -> np.ndarray:
    """Frame ``i``: a solid colour that encodes i (blue channel rises, red falls), BGR."""
    return np.full((H, W, 3), (i * 8, 40, 255 - i * 8), np.uint8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(N):
        writer.write(_bgr(i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("sequence")
    for i in range(12):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), _bgr(i))
    return str(folder / "frame_%03d.png")


def _index_of(frame: np.ndarray) -> int:
    """Recover i from a decoded RGB frame (RGB: red = 255 - 8i, blue = 8i)."""
    return int(round(float(frame[..., 2].mean()) / 8))


def test_video_file_frames_are_rgb_in_order(clip):
    with Camera.open(CameraOptions(source=clip)) as camera:
        assert camera.kind == "file" and camera.fps == FPS
        frames = list(camera.frames())
        assert camera.read() is None  # end of file
    assert len(frames) == N == camera.frames_delivered
    assert all(f.dtype == np.uint8 and f.shape == (H, W, 3) for f in frames)
    assert [_index_of(f) for f in frames] == list(range(N))
    first = frames[0][H // 2, W // 2].astype(int)
    assert abs(first[0] - 255) <= 3 and first[2] <= 3  # frame 0 is red in RGB order
    assert camera.last_timestamp_s == pytest.approx((N - 1) / FPS)


def test_image_sequence_with_size_and_warmup(sequence):
    with Camera.open(CameraOptions(source=sequence, warmup_frames=3, size=(32, 24))) as camera:
        assert camera.kind == "sequence" and camera.frames_warmup == 3
        frames = list(camera.frames())
    assert len(frames) == 9
    assert frames[0].shape == (24, 32, 3)
    assert [_index_of(f) for f in frames] == list(range(3, 12))  # the warm-up frames were dropped


@pytest.mark.parametrize(
    ("max_fps", "delivered"), [(None, 30), (30.0, 30), (15.0, 15), (10.0, 10), (7.0, 7), (1.0, 1)]
)
def test_frame_rate_cap_skips_frames(clip, max_fps, delivered):
    with Camera.open(CameraOptions(source=clip, max_fps=max_fps)) as camera:
        frames = list(camera.frames())
    assert len(frames) == delivered == camera.frames_delivered
    assert camera.frames_skipped == N - delivered
    if max_fps == 10.0:
        assert [_index_of(f) for f in frames] == list(range(0, N, 3))  # every third frame


def test_fps_option_sets_the_file_clock(sequence):
    with Camera.open(CameraOptions(source=sequence, fps=10.0, max_fps=5.0)) as camera:
        assert camera.fps == 10.0
        assert len(list(camera.frames())) == 6 and camera.frames_skipped == 6


def test_frames_limit_and_idempotent_close(clip):
    camera = Camera.open(CameraOptions(source=clip))
    assert len(list(camera.frames(limit=4))) == 4
    camera.close()
    camera.close()
    with pytest.raises(DeviceError, match="closed"):
        camera.read()


def test_other_containers(tmp_path):
    for name, fourcc in (("clip.mp4", "mp4v"), ("clip.mkv", "FFV1")):
        path = tmp_path / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
        for i in range(5):
            writer.write(_bgr(i))
        writer.release()
        with Camera.open(CameraOptions(source=path)) as camera:
            assert [_index_of(f) for f in camera.frames()] == list(range(5))


@pytest.mark.parametrize(
    ("source", "phrase"),
    [
        (7, "camera 7 could not be opened"),
        ("no/such/clip.avi", "video file no/such/clip.avi does not exist"),
        ("no/such/frame_%03d.png", "no file matches"),
    ],
)
def test_bad_sources_raise_device_error_naming_them(source, phrase):
    with pytest.raises(DeviceError, match=phrase) as info:
        Camera.open(CameraOptions(source=source))
    assert "pass" in str(info.value) or "check" in str(info.value)  # says what to try


def test_unreadable_file_is_a_device_error(tmp_path):
    path = tmp_path / "not_a_video.avi"
    path.write_bytes(b"this is not a video")
    with pytest.raises(DeviceError, match="cannot open"):
        Camera.open(CameraOptions(source=path))


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"source": -1}, "index"),
        ({"source": 1.5}, "source"),
        ({"warmup_frames": -1}, "warmup_frames"),
        ({"max_fps": 0}, "max_fps"),
        ({"size": (8, 8)}, "size"),
    ],
)
def test_camera_options_reject_bad_values(kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        CameraOptions(**kwargs)


def test_image_file_source_same_interface(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"still_{i}.png")
        cv2.imwrite(str(paths[-1]), _bgr(i * 5))
    with ImageFileSource(paths, size=(32, 32)) as source:
        frames = list(source.frames())
        assert source.read() is None
    assert [_index_of(f) for f in frames] == [0, 5, 10]
    assert frames[0].shape == (32, 32, 3)
    with pytest.raises(DeviceError, match="not found"):
        ImageFileSource(tmp_path / "missing.png")
    with pytest.raises(InvalidInputError, match="at least one"):
        ImageFileSource([])


@pytest.mark.shared_data
def test_real_photos_through_image_file_source():
    folder = require_shared_data("images")
    names = ["missvickie_potato_chips.bmp", "cat_720p.jpg", "grace_hopper.bmp"]
    with ImageFileSource([folder / n for n in names]) as source:
        frames = list(source.frames())
    assert [f.shape[2] for f in frames] == [3, 3, 3]
    assert frames[0].shape[:2] == (500, 500)
    assert frames[1].shape[:2] == (720, 1280)

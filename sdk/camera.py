"""Camera capture through OpenCV: a live camera, a video file or an image sequence, one class.

Data contract: every frame is uint8 ``[H, W, 3]`` in **RGB** order (OpenCV's BGR is converted
here, at the edge), ``[height, width]`` = ``CameraOptions.size`` reversed when a size is set.
``read()`` returns one frame, or None at the end of a file or sequence; ``frames()`` iterates
until then. Both honour the frame-rate cap.

Sources (``CameraOptions.source``):

* an ``int``: a live camera, OpenCV's device index (on Linux ``/dev/video<index>`` through V4L2).
  On a Raspberry Pi a USB (UVC) webcam is ``0``; list cameras with ``v4l2-ctl --list-devices``
  (package ``v4l-utils``) or ``ls /dev/video*``. A Raspberry Pi camera module on Raspberry Pi OS
  Bookworm is driven by libcamera, which OpenCV's V4L2 back end cannot read directly: run the
  program under ``libcamerify`` (package ``libcamera-tools``) or use a USB webcam. Live
  cameras adjust exposure and white balance over their first frames, so ``warmup_frames``
  (default 5 for a live camera) are read and dropped at open.
* a video file path (``.mp4`` mp4v, ``.avi`` MJPG, ``.mkv`` FFV1, ... whatever OpenCV's FFmpeg
  reads): frames in order, timestamps from the frame index and the file's frame rate.
* an image-sequence pattern (``frames/frame_%03d.png``): the numbered images in order, as a
  video (25 fps unless ``CameraOptions.fps`` says otherwise).

``max_fps`` caps the delivered rate: frames that arrive sooner than ``1 / max_fps`` after the
previous delivered one are dropped (grabbed, not decoded) and counted in ``frames_skipped``. For
a live camera the clock is ``time.monotonic()``; for files it is the frame timestamps, so the
result is deterministic (a 30 fps file capped at 10 fps delivers every third frame).

Example::

    with Camera.open(CameraOptions(source=0, max_fps=5, size=(640, 480))) as camera:
        for frame in camera.frames():      # uint8 [480, 640, 3] RGB
            ...

:class:`ImageFileSource` gives still images the same ``read()`` / ``frames()`` interface.
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from edgeshelf.sdk.errors import DeviceError, InvalidInputError, MissingDependencyError

SourceKind = Literal["device", "file", "sequence"]
_SEQUENCE = re.compile(r"%0?\d*d")
DEFAULT_WARMUP_LIVE = 5
DEFAULT_SEQUENCE_FPS = 25.0  # FFmpeg's image2 demuxer default
_MAX_READ_FAILURES = 5  # consecutive failed reads of a live camera before giving up


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise MissingDependencyError(
            f"OpenCV is not installed ({exc}): pip install 'edgeshelf[device]' (opencv-python-headless)"
        ) from exc
    return cv2


@dataclass(frozen=True)
class CameraOptions:
    """How to open a :class:`Camera`.

    ``source``: a device index (int), a video file, or an image-sequence pattern
    (``frame_%03d.png``). ``warmup_frames``: frames read and dropped at open (None: 5 for a live
    camera, 0 for files). ``max_fps``: cap on delivered frames per second (None: no cap).
    ``size``: ``(width, height)`` of delivered frames: asked of a live camera, and any frame of
    another size is resized (INTER_AREA). ``fps``: a live camera is asked for this rate; for a
    file or sequence it overrides the container's rate for timestamps.
    """

    source: int | str | os.PathLike[str] = 0
    warmup_frames: int | None = None
    max_fps: float | None = None
    size: tuple[int, int] | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.source, bool) or not isinstance(self.source, (int, str, os.PathLike)):
            raise InvalidInputError(
                f"CameraOptions.source must be a device index, a file path or a pattern, got {self.source!r}"
            )
        if isinstance(self.source, int) and self.source < 0:
            raise InvalidInputError(f"CameraOptions.source index must be >= 0, got {self.source}")
        if self.warmup_frames is not None and self.warmup_frames < 0:
            raise InvalidInputError(f"CameraOptions.warmup_frames must be >= 0, got {self.warmup_frames}")
        for name in ("max_fps", "fps"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InvalidInputError(f"CameraOptions.{name} must be > 0 or None, got {value}")
        if self.size is not None:
            if len(self.size) != 2 or any(int(v) < 16 for v in self.size):
                raise InvalidInputError(
                    f"CameraOptions.size must be (width, height), each >= 16, got {self.size}"
                )
            object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))

    @property
    def kind(self) -> SourceKind:
        if isinstance(self.source, int):
            return "device"
        return "sequence" if _SEQUENCE.search(os.fspath(self.source)) else "file"


def _to_rgb(cv2, frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    else:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    if size is not None and (frame.shape[1], frame.shape[0]) != size:
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return frame


class Camera:
    """Frames from a live camera, a video file or an image sequence: uint8 ``[H, W, 3]`` RGB.

    Open with :meth:`open`; context manager; ``close()`` is idempotent. Counters:
    ``frames_delivered``, ``frames_skipped`` (dropped by the ``max_fps`` cap), ``frames_warmup``;
    ``last_timestamp_s`` is the delivered frame's time (file time, or seconds since open).
    """

    def __init__(self, options: CameraOptions, capture: Any, fps: float) -> None:
        self.options = options
        self.kind: SourceKind = options.kind
        self.fps = fps
        self._cv2 = _cv2()
        self._capture = capture
        self._opened_at = time.monotonic()
        self._index = 0  # frames grabbed from the source so far
        self._next_due: float | None = None
        self._ended = False
        self._closed = False
        self.frames_delivered = 0
        self.frames_skipped = 0
        self.frames_warmup = 0
        self.last_timestamp_s: float | None = None

    @classmethod
    def open(cls, options: CameraOptions | None = None) -> Camera:
        """Open the source, apply size/fps requests, read the warm-up frames."""
        options = options or CameraOptions()
        cv2 = _cv2()
        source = options.source
        if options.kind == "device":
            capture = cv2.VideoCapture(int(source))
            if options.size is not None:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, options.size[0])
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, options.size[1])
            if options.fps is not None:
                capture.set(cv2.CAP_PROP_FPS, options.fps)
            if not capture.isOpened():
                capture.release()
                raise DeviceError(
                    f"camera {source} could not be opened (no /dev/video{source}, or another program "
                    "holds it): list cameras with `v4l2-ctl --list-devices` or `ls /dev/video*` and "
                    "try another index; a Raspberry Pi camera module needs libcamera (run under "
                    "`libcamerify`); or pass a video file or an image-sequence pattern instead"
                )
        else:
            path = os.fspath(source)
            if options.kind == "sequence":
                pattern = _SEQUENCE.sub("*", glob.escape(path))
                if not glob.glob(pattern):
                    raise DeviceError(
                        f"image sequence {path}: no file matches {pattern}; check the folder and the "
                        "numbering (frame_%03d.png reads frame_000.png, frame_001.png, ...)"
                    )
            elif not Path(path).is_file():
                raise DeviceError(
                    f"video file {path} does not exist: pass an existing file, a camera index or a pattern"
                )
            capture = cv2.VideoCapture(path)
            if not capture.isOpened():
                capture.release()
                raise DeviceError(
                    f"OpenCV cannot open {path} as video (unknown container or codec): re-encode it, "
                    "e.g. `ffmpeg -i IN -c:v mjpeg OUT.avi`, or pass an image-sequence pattern"
                )
        reported = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if options.kind == "device":
            fps = reported if reported > 0 else 30.0
        elif options.fps is not None:
            fps = options.fps
        elif options.kind == "sequence":
            fps = DEFAULT_SEQUENCE_FPS
        else:
            fps = reported if reported > 0 else DEFAULT_SEQUENCE_FPS
        camera = cls(options, capture, fps)
        warmup = options.warmup_frames
        if warmup is None:
            warmup = DEFAULT_WARMUP_LIVE if options.kind == "device" else 0
        try:
            for _ in range(warmup):
                if not camera._grab():
                    break
                camera.frames_warmup += 1
        except BaseException:
            camera.close()
            raise
        return camera

    # reading ---------------------------------------------------------------------------------------

    def _timestamp(self) -> float:
        if self.kind == "device":
            return time.monotonic() - self._opened_at
        return (self._index - 1) / self.fps

    def _grab(self) -> bool:
        """Grab the next frame (not decoded); False at the end of a file. Live failures retry."""
        failures = 0
        while not self._capture.grab():
            if self.kind != "device":
                self._ended = True
                return False
            failures += 1
            if failures >= _MAX_READ_FAILURES:
                raise DeviceError(
                    f"camera {self.options.source} stopped delivering frames ({failures} failed reads "
                    "in a row): check the cable and that no other program took the camera"
                )
        self._index += 1
        return True

    def read(self) -> np.ndarray | None:
        """The next frame allowed by the ``max_fps`` cap, uint8 ``[H, W, 3]`` RGB; None at the end."""
        if self._closed:
            raise DeviceError(f"camera {self.options.source} is closed")
        if self._ended:
            return None
        period = None if self.options.max_fps is None else 1.0 / self.options.max_fps
        while True:
            if not self._grab():
                return None
            stamp = self._timestamp()
            if period is None or self._next_due is None or stamp >= self._next_due - 1e-6:
                break
            self.frames_skipped += 1
        if period is not None:
            due = (stamp if self._next_due is None else self._next_due) + period
            self._next_due = due if due > stamp else stamp + period  # after a stall, restart the grid
        ok, frame = self._capture.retrieve()
        if not ok or frame is None:
            raise DeviceError(f"camera {self.options.source}: a grabbed frame could not be decoded")
        self.frames_delivered += 1
        self.last_timestamp_s = stamp
        return _to_rgb(self._cv2, frame, self.options.size)

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        """Frames until the end of the source (a live camera never ends: pass ``limit``)."""
        count = 0
        while limit is None or count < limit:
            frame = self.read()
            if frame is None:
                return
            count += 1
            yield frame

    # lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the camera or file (idempotent)."""
        if not self._closed:
            self._closed = True
            self._capture.release()

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        cap = "" if self.options.max_fps is None else f", max {self.options.max_fps:g} fps"
        return f"Camera({self.kind} {os.fspath(self.options.source) if self.kind != 'device' else self.options.source!r}, {self.fps:g} fps{cap})"


class ImageFileSource:
    """Still images with the camera's interface: ``read()`` gives each file in turn as uint8
    ``[H, W, 3]`` RGB (resized to ``size`` = ``(width, height)`` when given), then None."""

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        size: tuple[int, int] | None = None,
    ) -> None:
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not items:
            raise InvalidInputError("ImageFileSource needs at least one image path")
        self.paths = [Path(p) for p in items]
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise DeviceError(f"image file(s) not found: {', '.join(missing[:5])}")
        if size is not None and (len(size) != 2 or any(int(v) < 16 for v in size)):
            raise InvalidInputError(f"size must be (width, height), each >= 16, got {size}")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self._next = 0
        self._closed = False
        self.frames_delivered = 0

    def read(self) -> np.ndarray | None:
        from edgeshelf.sdk.preprocess import load_image

        if self._closed:
            raise DeviceError("this ImageFileSource is closed")
        if self._next >= len(self.paths):
            return None
        path = self.paths[self._next]
        self._next += 1
        image = load_image(path)
        if self.size is not None and (image.shape[1], image.shape[0]) != self.size:
            image = _cv2().resize(image, self.size, interpolation=_cv2().INTER_AREA)
        self.frames_delivered += 1
        return image

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        count = 0
        while limit is None or count < limit:
            frame = self.read()
            if frame is None:
                return
            count += 1
            yield frame

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> ImageFileSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ImageFileSource({len(self.paths)} image(s), first {str(self.paths[0])!r})"

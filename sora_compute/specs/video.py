"""The video a model processes: size in pixels, frames, rate."""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from sora_compute.specs.base import _Spec

__all__ = ["VideoSpec", "MAX_SIDE_PX", "MAX_FRAMES", "RESOLUTIONS"]

# Largest video accepted: 2^20 pixels a side, 2^31 frames. Far beyond any model, and small enough that every count
# stays exact in float64 and every cast to a fixed-width integer is safe.
MAX_SIDE_PX = 2**20

# Common names for 16:9 frame sizes (width x height in pixels), smallest first: the ladder the CLI's
# --resolution names and the sensitivity table's next-size-down / next-size-up steps come from.
RESOLUTIONS = {"240p": (426, 240), "360p": (640, 360), "480p": (854, 480), "720p": (1280, 720),
               "1080p": (1920, 1080), "1440p": (2560, 1440), "2160p": (3840, 2160), "4k": (3840, 2160)}
MAX_FRAMES = 2**31


class VideoSpec(_Spec):
    """A video clip: width x height pixels, ``num_frames`` frames at ``fps``.

    Give either ``num_frames`` or ``duration_s`` (then ``num_frames = round(duration_s * fps)``).
    An image is a video of one frame.
    """

    width: int = Field(gt=0, le=MAX_SIDE_PX, description="frame width in pixels")
    height: int = Field(gt=0, le=MAX_SIDE_PX, description="frame height in pixels")
    num_frames: int = Field(gt=0, le=MAX_FRAMES, description="number of frames (1 for an image)")
    fps: float = Field(default=24.0, gt=0, le=1e6, description="frames per second")

    @model_validator(mode="before")
    @classmethod
    def _frames_from_duration(cls, data: object) -> object:
        if isinstance(data, dict) and "duration_s" in data:
            data = dict(data)
            duration = data.pop("duration_s")
            if data.get("num_frames") is not None:
                raise ValueError("give num_frames or duration_s, not both")
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration) \
                    or duration <= 0:
                raise ValueError(f"duration_s must be a positive finite number of seconds, got {duration!r}")
            fps = data.get("fps", 24.0)
            if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
                raise ValueError(f"fps must be a positive finite number, got {fps!r}")
            frames = float(duration) * float(fps)
            if not frames < MAX_FRAMES:
                raise ValueError(f"duration_s={duration!r} at {fps!r} fps is more than {MAX_FRAMES:,} frames")
            data["num_frames"] = max(1, round(frames))
        return data

    @classmethod
    def image(cls, width: int, height: int) -> VideoSpec:
        """A single image (a video of one frame)."""
        return cls(width=width, height=height, num_frames=1)

    @classmethod
    def from_duration(cls, width: int, height: int, duration_s: float, fps: float = 24.0) -> VideoSpec:
        """A clip of ``duration_s`` seconds at ``fps`` (num_frames = round(duration_s x fps))."""
        return cls.model_validate({"width": width, "height": height, "duration_s": duration_s, "fps": fps})

    @property
    def duration_s(self) -> float:
        """Duration in seconds (num_frames / fps)."""
        return self.num_frames / self.fps

    @property
    def pixels(self) -> int:
        """Pixels per video: width x height x frames."""
        return self.width * self.height * self.num_frames

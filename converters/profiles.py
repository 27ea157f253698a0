"""Device profiles as data: which towers a device runs, how they are quantized, at what input sizes.

A profile is a JSON file::

    {
      "name": "glasses",
      "description": "...",
      "modalities": ["text", "image"],        # or "towers"; any of text, image, video, audio
      "quantization": "int8",                 # default mode: int8 | float16 | dynamic | float32
      "threads": 2,                           # interpreter threads the device should use
      "size_budget_mb": 4.0,                  # the bundle's .tflite files must fit (null: no limit)
      "inputs": {"image_size": 64},           # optional: image_size, max_tokens, audio_seconds, video_frames
      "gate": {"min_top10_overlap": 0.8}      # optional overrides of GateThresholds
    }

Built in: ``speaker`` (text + audio encoders and fusion, int8, 1 thread, under 3 MB), ``glasses``
(image + text + fusion, int8, 64 px images) and ``hub`` (all four modalities). A video
modality brings the image encoder along (the device runs it per frame). Input sizes change only
the shapes the converted models take (the encoders are convolutional / pooled, so the same
weights apply); the embedding space id stays the towers'.

Example::

    profile = load_profile("speaker")            # or load_profile("my_device.json")
    print(profile.models, profile.quantization)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edgeshelf.sdk.bundle import QUANT_MODES
from edgeshelf.sdk.errors import InvalidInputError, ModelNotFoundError
from edgeshelf.sdk.preprocess import PreprocessConfig

MODALITIES: tuple[str, ...] = ("text", "image", "video", "audio")
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
_INPUT_KEYS = ("image_size", "max_tokens", "audio_seconds", "video_frames")
_FILE_KEYS = (
    "name",
    "description",
    "modalities",
    "towers",
    "quantization",
    "threads",
    "size_budget_mb",
    "inputs",
    "gate",
)


@dataclass(frozen=True)
class Profile:
    """A device profile (see the module docstring for the file format)."""

    name: str
    modalities: tuple[str, ...]
    quantization: str = "int8"
    threads: int = 1
    size_budget_mb: float | None = None
    image_size: int | None = None
    max_tokens: int | None = None
    audio_seconds: float | None = None
    video_frames: int | None = None
    description: str = ""
    gate: dict[str, float] = field(default_factory=dict)
    source: str = "built-in"

    def __post_init__(self) -> None:
        where = f"profile {self.name!r} ({self.source})"
        if not self.name or not isinstance(self.name, str):
            raise InvalidInputError(f"{where}: name must be a non-empty string")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad or not self.modalities:
            raise InvalidInputError(
                f"{where}: modalities must be a non-empty subset of {list(MODALITIES)}, got {list(self.modalities)}"
            )
        if self.quantization not in QUANT_MODES:
            raise InvalidInputError(
                f"{where}: quantization must be one of {list(QUANT_MODES)}, got {self.quantization!r}"
            )
        checks = [
            ("threads", self.threads, isinstance(self.threads, int) and self.threads >= 1, "an integer >= 1"),
            (
                "size_budget_mb",
                self.size_budget_mb,
                self.size_budget_mb is None or self.size_budget_mb > 0,
                "> 0 or null",
            ),
            (
                "image_size",
                self.image_size,
                self.image_size is None or 16 <= self.image_size <= 1024,
                "in [16, 1024]",
            ),
            (
                "max_tokens",
                self.max_tokens,
                self.max_tokens is None or 1 <= self.max_tokens <= 4096,
                "in [1, 4096]",
            ),
            (
                "audio_seconds",
                self.audio_seconds,
                self.audio_seconds is None or 0.1 <= self.audio_seconds <= 60,
                "in [0.1, 60]",
            ),
            (
                "video_frames",
                self.video_frames,
                self.video_frames is None or 1 <= self.video_frames <= 64,
                "in [1, 64]",
            ),
        ]
        for key, value, ok, expected in checks:
            if not ok:
                raise InvalidInputError(f"{where}: {key} must be {expected}, got {value!r}")
        object.__setattr__(self, "modalities", tuple(m for m in MODALITIES if m in self.modalities))

    @property
    def models(self) -> tuple[str, ...]:
        """The bundle's models, in build order: encoders (image for video too), then fusion."""
        needed = set(self.modalities) | ({"image"} if "video" in self.modalities else set())
        return (*(m for m in MODALITIES if m in needed), "fusion")

    def preprocess_for(self, base: PreprocessConfig) -> PreprocessConfig:
        """The towers' preprocessing with this profile's input sizes applied."""
        text, image, audio, video = base.text, base.image, base.audio, base.video
        if self.max_tokens is not None:
            text = replace(text, max_tokens=self.max_tokens)
        if self.image_size is not None:
            image = replace(image, size=self.image_size)
        if self.audio_seconds is not None:
            audio = replace(audio, max_seconds=float(self.audio_seconds))
        if self.video_frames is not None:
            video = replace(video, frames=self.video_frames)
        return PreprocessConfig(text=text, image=image, audio=audio, video=video)

    def with_quantization(self, quant: str | None) -> Profile:
        """This profile with another quantization mode (``None`` keeps the profile's)."""
        if quant is None or quant == self.quantization:
            return self
        return replace(self, quantization=quant)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["modalities"] = list(self.modalities)
        data["inputs"] = {k: data.pop(k) for k in _INPUT_KEYS if data.get(k) is not None}
        for k in _INPUT_KEYS:
            data.pop(k, None)
        data["models"] = list(self.models)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "dict") -> Profile:
        """A profile from the JSON layout of the module docstring (unknown keys are refused)."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"profile {source}: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_FILE_KEYS) - {"models", "source"})
        if unknown:
            raise InvalidInputError(
                f"profile {source}: unknown keys {unknown}; valid keys are {list(_FILE_KEYS)}"
            )
        inputs = data.get("inputs") or {}
        bad_inputs = sorted(set(inputs) - set(_INPUT_KEYS))
        if bad_inputs:
            raise InvalidInputError(
                f"profile {source}: unknown inputs {bad_inputs}; valid inputs are {list(_INPUT_KEYS)}"
            )
        modalities = data.get("modalities", data.get("towers"))
        if modalities is None:
            raise InvalidInputError(f'profile {source}: \'modalities\' is required (e.g. ["text", "audio"])')
        if "name" not in data:
            raise InvalidInputError(f"profile {source}: 'name' is required")
        from edgeshelf.converters.validate import GateThresholds

        gate = dict(data.get("gate") or {})
        valid_gate = {f.name for f in fields(GateThresholds)}
        bad_gate = sorted(set(gate) - valid_gate)
        if bad_gate:
            raise InvalidInputError(
                f"profile {source}: unknown gate keys {bad_gate}; valid keys are {sorted(valid_gate)}"
            )
        return cls(
            name=str(data["name"]),
            modalities=tuple(modalities),
            quantization=str(data.get("quantization", "int8")),
            threads=data.get("threads", 1),
            size_budget_mb=data.get("size_budget_mb"),
            description=str(data.get("description", "")),
            gate=gate,
            source=source,
            **{k: inputs[k] for k in _INPUT_KEYS if k in inputs},
        )


def builtin_profiles() -> tuple[str, ...]:
    """Names of the built-in profiles (sorted)."""
    return tuple(sorted(p.stem for p in PROFILES_DIR.glob("*.json")))


def load_profile(name_or_path: str | os.PathLike[str] | Profile) -> Profile:
    """A built-in profile by name (``speaker``, ``glasses``, ``hub``) or a profile JSON file by path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    is_path = path.suffix == ".json" or os.sep in text or path.is_file()
    if not is_path:
        builtin = PROFILES_DIR / f"{text}.json"
        if not builtin.is_file():
            raise InvalidInputError(
                f"unknown profile {text!r}: expected one of {', '.join(builtin_profiles())}, "
                "or the path of a profile .json file"
            )
        path, source = builtin, "built-in"
    else:
        if not path.is_file():
            raise ModelNotFoundError(
                f"profile file {path} does not exist (built-in profiles: {', '.join(builtin_profiles())})"
            )
        source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"profile file {path} is not valid JSON: {exc}") from exc
    return Profile.from_dict(data, source=source)


__all__ = ["MODALITIES", "PROFILES_DIR", "Profile", "builtin_profiles", "load_profile"]

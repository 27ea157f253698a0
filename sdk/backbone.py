"""A frozen, pretrained TFLite image feature extractor run with LiteRT (host and device alike).

Used when the image tower is "backbone + trainable head": the towers train the head on this
backbone's features, and the bundle carries the backbone file as given next to the quantized
head; the runtime chains them. The backbone's own input contract is read from the model:
float32 ``[1, H, W, 3]`` RGB in ``[0, 1]`` (e.g. MediaPipe's embedder) or uint8 ``[1, H, W, 3]``
(e.g. Coral's quantized extractor); quantized outputs are dequantized to float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgeshelf.sdk.errors import ModelNotFoundError, require
from edgeshelf.sdk.preprocess import resize_center_crop


def load_interpreter_class():
    """The best TFLite interpreter class available: LiteRT, then tflite_runtime, then TF."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError:
        pass
    tf = require("tensorflow", "device")
    return tf.lite.Interpreter


class ImageBackbone:
    """Runs a TFLite feature extractor: uint8 RGB frames -> float32 ``[B, dim]`` features."""

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(
                f"image backbone {self.path} does not exist; pass the .tflite feature extractor "
                "the towers were trained with (see towers.json 'image_backbone')"
            )
        self._interpreter = load_interpreter_class()(model_path=str(self.path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        _, self.height, self.width, _ = (int(v) for v in self._input["shape"])
        self.dim = int(np.prod(self._output["shape"][1:]))

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    def features_one(self, rgb: np.ndarray) -> np.ndarray:
        """One uint8 RGB ``[H, W, 3]`` image -> float32 ``[dim]``."""
        crop = resize_center_crop(rgb, self.height)
        if self.input_dtype == np.uint8:
            tensor = crop[None]
        else:
            tensor = (crop.astype(np.float32) * (1.0 / 255.0))[None]
        self._interpreter.set_tensor(self._input["index"], tensor)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"]).reshape(-1)
        scale, zero = self._output.get("quantization", (0.0, 0))
        if scale:
            return (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32)

    def features(self, images: list[np.ndarray]) -> np.ndarray:
        """uint8 RGB images -> float32 ``[len(images), dim]``."""
        return (
            np.stack([self.features_one(img) for img in images])
            if images
            else np.zeros((0, self.dim), np.float32)
        )

    def close(self) -> None:
        self._interpreter = None

    def __enter__(self) -> ImageBackbone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The device SDK works with the `device` extra alone: no TensorFlow, Keras, ONNX or server stack.

A fresh interpreter is started with an import hook that makes every host-only package
unimportable (as on a Raspberry Pi with `pip install edgeshelf[device]`); in it, every module of
`edgeshelf.sdk` imports, and a real int8 bundle embeds a text query and an image that a real shard
then answers. `scripts/pi_standin.sh` proves the same on aarch64 in a venv that has no TensorFlow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from edgeshelf.sdk.shard import encode_shard, write_shard

HOST_ONLY = [
    "tensorflow",
    "keras",
    "tf2onnx",
    "onnxruntime",
    "fastapi",
    "uvicorn",
    "flwr",
    "ray",
    "pymilvus",
    "faiss",
    "bm25s",
    "ai_edge_quantizer",
    "matplotlib",
    "pyarrow",
]

SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys
    BLOCKED = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed on this device (blocked by the test)")
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np
    import edgeshelf.sdk as sdk
    modules = sorted(m.name for m in pkgutil.iter_modules(sdk.__path__, "edgeshelf.sdk."))
    for name in modules:
        importlib.import_module(name)
    from edgeshelf.sdk.encoder import QueryEncoder
    from edgeshelf.sdk.shard import Shard
    with QueryEncoder.open(sys.argv[2]) as encoder, Shard.open(sys.argv[3], expected_space_id=encoder.space_id) as shard:
        text = encoder.embed(text=sys.argv[4])
        hits = shard.search(text, k=3)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"modules": modules, "ids": hits.ids, "modalities": list(text.modalities),
                      "space": text.space_id, "leaked": leaked}))
    """
)


def test_sdk_imports_and_answers_a_query_without_host_packages(tmp_path: Path, speaker_bundle: Path):
    from edgeshelf.sdk.bundle import read_manifest

    manifest = read_manifest(speaker_bundle)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, manifest.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    shard = write_shard(
        tmp_path / "c.shard",
        encode_shard(
            space_id=manifest.space_id,
            ids=[f"p{i}" for i in range(50)],
            vectors=vectors,
            titles=[f"product {i}" for i in range(50)],
        ),
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            ",".join(HOST_ONLY),
            str(speaker_bundle),
            str(shard),
            "navy blue shirt",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["leaked"] == []
    assert {"edgeshelf.sdk.encoder", "edgeshelf.sdk.shard", "edgeshelf.sdk.asr", "edgeshelf.sdk.apps"} <= set(
        result["modules"]
    )
    assert result["space"] == manifest.space_id and result["modalities"] == ["text"]
    assert len(result["ids"]) == 3 and all(i.startswith("p") for i in result["ids"])

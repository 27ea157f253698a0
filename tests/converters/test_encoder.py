"""The device query encoder and the LiteRT runner: contracts, errors, host/device parity."""

from __future__ import annotations

import numpy as np
import pytest
from edgeshelf.sdk.encoder import EncoderOptions, QueryEncoder
from edgeshelf.sdk.errors import InvalidInputError, MissingDependencyError
from edgeshelf.sdk.litert import ModelLoadError, ModelRunner, load_interpreter
from edgeshelf.sdk.preprocess import AudioConfig, VideoConfig, load_audio, load_image, read_video_frames


@pytest.fixture(scope="module")
def hub(hub_bundle):
    with QueryEncoder.open(hub_bundle, EncoderOptions(num_threads=1)) as encoder:
        yield encoder


@pytest.fixture(scope="module")
def media(converters_catalogue):
    products = list(converters_catalogue.products)
    p_audio = next(p for p in products if p.audio is not None)
    p_video = next(p for p in products if p.video is not None)
    return {
        "text": products[0].title,
        "image": load_image(products[1].image),
        "audio": load_audio(p_audio.audio, AudioConfig()),
        "video": read_video_frames(p_video.video, VideoConfig(frames=6)),
    }


def test_host_and_device_feed_identical_tensors(hub, media, converters_towers):
    """Towers.prepare (host) and QueryEncoder (device) turn the same raw inputs into the same tensors."""
    host = converters_towers.prepare(
        texts=[media["text"]], images=[media["image"]], videos=[media["video"]], audios=[media["audio"]]
    )
    device = hub.prepare_inputs(**media)
    np.testing.assert_array_equal(device.token_ids, host.token_ids[0])
    np.testing.assert_array_equal(device.image, host.images[0])
    np.testing.assert_array_equal(device.video, host.videos[0])
    np.testing.assert_allclose(device.audio, host.audio[0], rtol=0, atol=1e-6)
    assert device.modalities == ("text", "image", "video", "audio")
    # and what reaches the interpreters: token ids as they are, camera pixels copied unchanged
    hub.encode("text", device.token_ids)
    np.testing.assert_array_equal(hub.runner("text").raw_input("token_ids")[0], host.token_ids[0])
    hub.encode("image", device.image)
    np.testing.assert_array_equal(hub.runner("image").raw_input("image")[0], host.images[0])
    hub.encode("audio", device.audio)
    spec = hub.runner("audio").inputs[0]
    fed = (hub.runner("audio").raw_input(spec.name)[0].astype(np.float32) - spec.zero_point) * spec.scale
    inside = (host.audio[0] >= (-128 - spec.zero_point) * spec.scale) & (
        host.audio[0] <= (127 - spec.zero_point) * spec.scale
    )
    np.testing.assert_allclose(fed[inside], host.audio[0][inside], atol=spec.scale / 2 + 1e-6)


def test_embedding_contract_and_timings(hub, media):
    emb = hub.embed(**media)
    assert emb.modalities == ("text", "image", "video", "audio")
    assert emb.vector.dtype == np.float32 and emb.dim == hub.dim
    assert set(emb.timings_ms) == {"tokenize", "text", "image", "video", "audio", "fusion", "total"}
    assert all(v >= 0 for v in emb.timings_ms.values())
    only_text = hub.embed(text=media["text"])
    assert set(only_text.timings_ms) == {"tokenize", "text", "fusion", "total"}
    np.testing.assert_array_equal(hub.embed(text=media["text"]).vector, only_text.vector)  # reuse is stable
    batch = hub.embed_batch(texts=[media["text"], None], images=[None, media["image"]])
    np.testing.assert_allclose(batch[0], only_text.vector, atol=1e-6)
    np.testing.assert_allclose(batch[1], hub.embed(image=media["image"]).vector, atol=1e-6)


def test_wrong_modality_for_the_profile(speaker_bundle, media):
    with QueryEncoder.open(speaker_bundle) as encoder:
        assert encoder.modalities == ("text", "audio")
        with pytest.raises(
            InvalidInputError, match="'speaker' bundle .* takes text, audio queries, not image"
        ):
            encoder.embed(image=media["image"])
        with pytest.raises(InvalidInputError, match="not video"):
            encoder.embed(text="shoes", video=media["video"])
        assert encoder.embed(text="shoes", audio=media["audio"]).modalities == ("text", "audio")


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({}, "nothing to embed"),
        ({"text": "   "}, "nothing to embed"),
        ({"text": 42}, "text must be a str"),
        ({"image": np.zeros((32, 32, 3), np.float32)}, "image dtype must be uint8"),
        ({"image": np.zeros((4, 4, 3), np.uint8)}, "at least 8x8"),
        ({"audio": np.zeros(100, np.int16)}, "float32 samples"),
        ({"audio": np.zeros((2, 100), np.float32)}, "mono"),
        ({"video": np.zeros((32, 32, 3), np.uint8)}, r"\[F, H, W, 3\]"),
    ],
)
def test_bad_inputs(hub, kwargs, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        hub.embed(**kwargs)


def test_close_is_idempotent(speaker_bundle):
    encoder = QueryEncoder.create_from_bundle(speaker_bundle, EncoderOptions(num_threads=2))
    assert encoder.embed(text="jacket").dim == encoder.dim
    encoder.close()
    encoder.close()
    with pytest.raises(InvalidInputError, match="closed"):
        encoder.embed(text="jacket")
    assert "closed" in repr(encoder)
    with pytest.raises(InvalidInputError, match="num_threads"):
        EncoderOptions(num_threads=0)


def test_interpreter_fallback_chain(speaker_bundle):
    path = speaker_bundle / "fusion.tflite"
    with ModelRunner.open(path, interpreters=("tensorflow.lite",)) as runner:
        assert runner.interpreter_name == "tensorflow.lite"
    # tflite_runtime cannot run under numpy 2 (or is absent): the chain goes on to LiteRT
    _, name = load_interpreter(path, interpreters=("tflite_runtime", "ai_edge_litert"))
    assert name in ("tflite_runtime", "ai_edge_litert")


def test_unloadable_models_give_clear_errors(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match=r"broken\.tflite.*ai_edge_litert"):
        ModelRunner.open(bad, interpreters=("ai_edge_litert",))
    with pytest.raises(MissingDependencyError, match="no TFLite interpreter is installed"):
        ModelRunner.open(bad, interpreters=())
    with pytest.raises(InvalidInputError, match="unknown interpreter"):
        ModelRunner.open(bad, interpreters=("onnx",))


def test_runner_checks_inputs(speaker_bundle):
    with ModelRunner.open(speaker_bundle / "text.tflite") as runner:
        with pytest.raises(InvalidInputError, match="needs inputs"):
            runner.run({})
        with pytest.raises(InvalidInputError, match="has no input 'nope'"):
            runner.set_input("nope", np.zeros(3))
        with pytest.raises(InvalidInputError, match="values"):
            runner.set_input("token_ids", np.zeros(3, np.int32))
        out = runner.run({"token_ids": np.zeros(runner.inputs[0].shape, np.int32)})
        assert out[runner.outputs[0].name].dtype == np.float32

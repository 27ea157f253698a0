"""The hook into the SDK: ``edgeshelf bridge --bundle --shard`` builds its handler with
make_speaker_handler (a real speaker bundle, a real shard of the same space, pocketsphinx
restricted to the shard's vocabulary), and a spoken query through the simulator gets a RESULT.

The tiny test towers are untrained, so only the transcript (the recogniser's grammar comes from
the shard's titles) and the shape of the answer are checked, not the ranking."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from edgeshelf.firmware_bridge.handler import SdkSpeakerHandler, make_speaker_handler
from edgeshelf.firmware_bridge.host import HostSession
from edgeshelf.firmware_bridge.messages import ResultStatus, ShardState
from edgeshelf.firmware_bridge.simulator import FirmwareSimulator, SimulatorOptions
from edgeshelf.firmware_bridge.transports import LoopbackTransport

# the converters room's speaker_bundle fixture takes minutes to build when this file runs alone
# (it is shared with the converters and sdk_apps tests in a full run)
pytestmark = pytest.mark.slow

TITLES = {
    "sku-boots": "brown leather boots",
    "sku-watch": "silver wrist watch",
    "sku-dress": "pink summer dress",
}


@pytest.fixture(scope="module")
def speaker_shard(speaker_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeshelf.sdk.encoder import QueryEncoder
    from edgeshelf.sdk.shard import encode_shard, write_shard

    with QueryEncoder.open(speaker_bundle) as encoder:
        vectors = np.stack([encoder.embed(text=title).vector for title in TITLES.values()])
        space_id = encoder.space_id
    data = encode_shard(space_id=space_id, ids=list(TITLES), vectors=vectors, titles=list(TITLES.values()))
    return write_shard(tmp_path_factory.mktemp("shard") / "speaker.shard", data)


def test_bridge_answers_with_the_sdk_speaker_app(
    speaker_bundle: Path, speaker_shard: Path, espeak_wav
) -> None:
    args = argparse.Namespace(
        bundle=str(speaker_bundle), shard=str(speaker_shard), asr_engine="pocketsphinx", asr_model=None, k=2
    )
    handler = make_speaker_handler(args)
    assert isinstance(handler, SdkSpeakerHandler)
    host_end, firmware_end = LoopbackTransport.pair()
    try:
        with (
            HostSession.open(host_end, handler) as host,
            FirmwareSimulator.open(firmware_end, SimulatorOptions(pace=0)) as firmware,
        ):
            reply = firmware.query_wav(espeak_wav("silver wrist watch"))
            shard = firmware.shard_status
            assert host.stats.queries == 1
    finally:
        handler.close()
        handler.close()
    assert reply.result.status == ResultStatus.OK, reply.result
    assert reply.result.transcript == "silver wrist watch"
    assert len(reply.result.hits) == 2 and set(reply.ids) <= set(TITLES)
    assert all(hit.title == TITLES[hit.product_id] for hit in reply.result.hits)
    assert shard is not None and shard.state == ShardState.READY and shard.products == len(TITLES)

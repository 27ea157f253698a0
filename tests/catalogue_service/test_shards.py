"""Shard downloads: ETag / 304, delta updates, and failed updates that keep the old shard."""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest
from edgeshelf.catalogue.service import publish_shard
from edgeshelf.sdk.errors import CorruptArtifactError, ServiceError, SpaceMismatchError
from edgeshelf.sdk.lookup import LookupClient, LookupOptions, shard_etag
from edgeshelf.sdk.shard import HEADER_SIZE, Shard, decode_header, encode_shard, read_shard_info

from tests.catalogue_service.helpers import run_cli, truncating_server, unit
from tests.fixtures_catalogue_service import shard_bytes_of


def _publish(server, tmp_path, name: str, data: bytes, **kwargs) -> dict:
    source = tmp_path / f"{name}-{decode_header(data).version}.src"
    source.write_bytes(data)
    return publish_shard(server.shards_dir, name, source, **kwargs)


def test_etag_and_if_none_match(lookup_server):
    headers = {"authorization": f"Bearer {lookup_server.token}"}
    first = httpx.get(f"{lookup_server.url}/v1/shards/all", headers=headers)
    assert first.status_code == 200
    info = decode_header(first.content)
    etag = first.headers["etag"]
    assert etag == shard_etag(info)
    assert first.headers["x-edgeshelf-space-id"] == lookup_server.space_id
    assert first.headers["x-edgeshelf-shard-version"] == str(info.version)
    assert first.headers["x-edgeshelf-shard-checksum"] == f"{info.checksum:08x}"
    again = httpx.get(f"{lookup_server.url}/v1/shards/all", headers={**headers, "if-none-match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    for other in ('"0-0-00000000"', f'W/{etag}, "x"', "*"):
        expect = 304 if other != '"0-0-00000000"' else 200
        assert (
            httpx.get(
                f"{lookup_server.url}/v1/shards/all", headers={**headers, "if-none-match": other}
            ).status_code
            == expect
        )
    listing = httpx.get(f"{lookup_server.url}/v1/shards", headers=headers).json()
    assert {
        "name": "all",
        "etag": etag,
        "version": info.version,
        "space_id": lookup_server.space_id,
    }.items() <= listing[0].items()


def test_fetch_then_current(lookup_server, tmp_path):
    dest = tmp_path / "dev" / "all.shard"
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        first = client.fetch_shard("all", dest, expected_space_id=lookup_server.space_id)
        assert first.status == "full" and first.bytes_downloaded == dest.stat().st_size
        second = client.fetch_shard("all", dest)
        assert second.status == "current" and second.bytes_downloaded == 0
        third = client.update_shard("all", dest, lookup_server.space_id)
        assert third.status == "current"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["all.shard"]  # no temp files left


def test_update_by_delta(lookup_server, service_index, tmp_path):
    v1 = shard_bytes_of(service_index.path, version=1)
    v2 = shard_bytes_of(service_index.path, version=2, drop=5, retitle=20)
    v3 = shard_bytes_of(service_index.path, version=3, drop=6, retitle=3)
    _publish(lookup_server, tmp_path, "deltas", v1)
    dest = tmp_path / "dev.shard"
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        assert client.update_shard("deltas", dest, lookup_server.space_id).status == "full"
        assert dest.read_bytes() == v1
        published = _publish(lookup_server, tmp_path, "deltas", v2)
        assert published["deltas_from"] == [1]
        update = client.update_shard("deltas", dest, lookup_server.space_id)
        assert update.status == "delta" and update.version == 2
        assert dest.read_bytes() == v2  # byte-identical to the full shard
        assert update.bytes_downloaded < len(v2) / 10
        assert client.update_shard("deltas", dest, lookup_server.space_id).status == "current"
        published = _publish(lookup_server, tmp_path, "deltas", v3)
        assert published["deltas_from"] == [2, 1]
        assert client.update_shard("deltas", dest, lookup_server.space_id).status == "delta"
        assert dest.read_bytes() == v3
    with Shard.open(dest, expected_space_id=lookup_server.space_id) as shard:
        assert shard.version == 3 and shard.count == 2000 - 6


def test_no_delta_falls_back_to_full(lookup_server, service_index, tmp_path):
    _publish(lookup_server, tmp_path, "nodelta", shard_bytes_of(service_index.path, version=1))
    dest = tmp_path / "dev.shard"
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        client.update_shard("nodelta", dest, lookup_server.space_id)
        _publish(
            lookup_server, tmp_path, "nodelta", shard_bytes_of(service_index.path, version=2, drop=1), keep=0
        )
        update = client.update_shard("nodelta", dest, lookup_server.space_id)
    assert update.status == "full" and update.version == 2
    assert "no delta" in update.note and "from version 1 to 2" in update.note


def test_same_version_new_content_is_not_current(lookup_server, service_index, tmp_path):
    _publish(lookup_server, tmp_path, "samever", shard_bytes_of(service_index.path, version=5))
    dest = tmp_path / "dev.shard"
    with LookupClient.open(lookup_server.url, lookup_server.token) as client:
        client.update_shard("samever", dest, lookup_server.space_id)
        changed = shard_bytes_of(service_index.path, version=5, retitle=1)
        (tmp_path / "changed.src").write_bytes(changed)
        publish_shard(lookup_server.shards_dir, "samever", tmp_path / "changed.src")
        update = client.update_shard("samever", dest, lookup_server.space_id)
    assert update.status == "full" and dest.read_bytes() == changed


def test_publish_cli(lookup_server, service_index, tmp_path):
    source = tmp_path / "cli.shard"
    source.write_bytes(shard_bytes_of(service_index.path, version=4))
    code, out, err = run_cli(
        ["serve-publish", str(source), "--shards", str(lookup_server.shards_dir), "--name", "cli", "--json"]
    )
    assert code == 0, err
    assert json.loads(out)["version"] == 4
    assert read_shard_info(lookup_server.shards_dir / "cli.shard").version == 4
    other = tmp_path / "other.shard"
    other.write_bytes(
        encode_shard(space_id="ffffffffffffffff", ids=["a"], vectors=unit(8, 0)[None, :], dtype="float16")
    )
    code, out, err = run_cli(
        ["serve-publish", str(other), "--shards", str(lookup_server.shards_dir), "--name", "cli"]
    )
    assert code == 2 and "ffffffffffffffff" in err and lookup_server.space_id in err


@pytest.fixture()
def old_shard(lookup_server, service_index, tmp_path):
    path = tmp_path / "device" / "cached.shard"
    path.parent.mkdir()
    path.write_bytes(shard_bytes_of(service_index.path, version=1, drop=3))
    return path


def test_server_dying_mid_download_keeps_the_old_shard(service_index, old_shard):
    new = shard_bytes_of(service_index.path, version=9)
    info = decode_header(new)
    headers = {"x-edgeshelf-shard-checksum": f"{info.checksum:08x}", "etag": shard_etag(info)}
    before = old_shard.read_bytes()
    with truncating_server(new, headers, send=len(new) // 2) as (url, seen):
        options = LookupOptions(retries=1, backoff_s=0.01)
        with (
            LookupClient.open(url, "esk_00000000_" + "a" * 43, options) as client,
            pytest.raises(ServiceError) as err,
        ):
            client.update_shard("all", old_shard, info.space_id)
    message = str(err.value)
    assert "interrupted" in message and f"of {len(new)}" in message
    assert f"the old shard {old_shard} is still in use" in message
    assert old_shard.read_bytes() == before
    assert sorted(p.name for p in old_shard.parent.iterdir()) == ["cached.shard"]
    assert sum("/delta" in line for line in seen) == 1 and sum("/delta" not in line for line in seen) == 2


def test_checksum_mismatch_keeps_the_old_shard(lookup_server, service_index, old_shard, tmp_path):
    corrupt = bytearray(shard_bytes_of(service_index.path, version=7))
    corrupt[HEADER_SIZE + 4096] ^= 0xFF  # a flipped bit in the body: the header still parses
    _publish(lookup_server, tmp_path, "corrupt", bytes(corrupt))
    before = old_shard.read_bytes()
    with (
        LookupClient.open(lookup_server.url, lookup_server.token) as client,
        pytest.raises(CorruptArtifactError) as err,
    ):
        client.update_shard("corrupt", old_shard, lookup_server.space_id)
    assert "checksum" in str(err.value) and "is still in use" in str(err.value)
    assert old_shard.read_bytes() == before
    assert sorted(p.name for p in old_shard.parent.iterdir()) == ["cached.shard"]


def test_shard_of_another_space_is_refused(lookup_server, old_shard, tmp_path):
    _publish(
        lookup_server,
        tmp_path,
        "otherspace",
        encode_shard(space_id="ffffffffffffffff", ids=["a"], vectors=unit(8, 0)[None, :], dtype="float16"),
    )
    before = old_shard.read_bytes()
    with (
        LookupClient.open(lookup_server.url, lookup_server.token) as client,
        pytest.raises(SpaceMismatchError) as err,
    ):
        client.update_shard("otherspace", old_shard, lookup_server.space_id)
    assert err.value.actual == "ffffffffffffffff" and err.value.expected == lookup_server.space_id
    assert "is still in use" in str(err.value)
    assert old_shard.read_bytes() == before


def test_unknown_shard_is_an_error_not_a_download(lookup_server, old_shard):
    with (
        LookupClient.open(lookup_server.url, lookup_server.token) as client,
        pytest.raises(ServiceError) as err,
    ):
        client.update_shard("missing", old_shard, lookup_server.space_id)
    assert "HTTP 404" in str(err.value) and "available:" in str(err.value)


def test_int8_delta_from_the_catalogue_build_flow(lookup_server, service_index, tmp_path):
    """cut_shard -> publish -> device; index update -> make_delta(new_shard) -> publish -> delta update."""
    from edgeshelf.catalogue.build import cut_shard, make_delta
    from edgeshelf.catalogue.index import CatalogueIndex

    index_path = tmp_path / "index"
    shutil.copytree(service_index.path, index_path)
    v1, v2 = tmp_path / "v1.shard", tmp_path / "v2.shard"
    with CatalogueIndex.open(index_path) as index:
        cut_shard(index, v1, dtype="int8")
        publish_shard(lookup_server.shards_dir, "int8", v1)
        dest = tmp_path / "device.shard"
        with LookupClient.open(lookup_server.url, lookup_server.token) as client:
            assert client.update_shard("int8", dest, lookup_server.space_id).status == "full"
            moved = service_index.vectors[:3] * 0.5 + service_index.vectors[3:6] * 0.5
            index.upsert(
                [{"id": f"p{n:05d}", "title": f"Changed {n}"} for n in range(3)],
                moved / np.linalg.norm(moved, axis=1, keepdims=True),
            )
            index.remove(["p00010"])
            make_delta(v1, index, tmp_path / "unused.delta", new_shard=v2)
            assert publish_shard(lookup_server.shards_dir, "int8", v2)["deltas_from"] == [1]
            update = client.update_shard("int8", dest, lookup_server.space_id)
    assert update.status == "delta"
    assert dest.read_bytes() == v2.read_bytes()
    with Shard.open(dest, expected_space_id=lookup_server.space_id) as shard:
        assert shard.count == 1999 and "p00010" not in shard.ids

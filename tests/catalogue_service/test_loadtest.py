"""A 2-second smoke of the bounded load test (the 60 s run is done by hand; see the report)."""

from __future__ import annotations

import json
import re

import pytest
from edgeshelf.catalogue.loadtest import LoadTestOptions, run_load_test
from edgeshelf.sdk.errors import InvalidInputError

from tests.catalogue_service.helpers import run_cli


def test_load_test_smoke(lookup_server):
    report = run_load_test(
        lookup_server.url, LoadTestOptions(seconds=2, clients=4, token=lookup_server.token)
    )
    assert report.errors == 0, report.errors_by_kind
    assert report.requests > 0 and report.ok == report.requests
    assert report.throughput_rps > 0
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p99"] <= report.latency_ms["max"]
    assert report.index["dim"] == lookup_server.dim
    assert report.server["search_by_status"]["200"] >= report.requests
    assert "req/s" in repr(report)


def test_load_test_cli_json_counts_errors(lookup_server):
    code, out, err = run_cli(
        [
            "serve-loadtest",
            "--url",
            lookup_server.url,
            "--token",
            "esk_00000000_" + "a" * 43,
            "--seconds",
            "1",
            "--clients",
            "2",
            "--json",
        ]
    )
    # an unknown token cannot even read /v1/info: the run stops before it starts
    assert code == 2 and "HTTP 401" in err
    code, out, err = run_cli(
        [
            "serve-loadtest",
            "--url",
            lookup_server.url,
            "--token",
            lookup_server.token,
            "--seconds",
            "1",
            "--clients",
            "2",
            "--dtype",
            "int8",
            "--json",
        ]
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["errors"] == 0 and report["requests"] > 0
    assert report["options"]["dtype"] == "int8"


@pytest.mark.parametrize(
    "url,kwargs,phrase",
    [
        ("http://10.1.2.3:8080", {}, "not loopback"),
        ("ftp://127.0.0.1", {}, "http(s)://host:port"),
        ("http://127.0.0.1:1", {"seconds": 0}, "seconds must be in"),
        ("http://127.0.0.1:1", {"seconds": 4000}, "seconds must be in"),
        ("http://127.0.0.1:1", {"clients": 0}, "clients must be in"),
        ("http://127.0.0.1:1", {"dtype": "float64"}, "dtype"),
    ],
)
def test_load_test_is_bounded(url, kwargs, phrase):
    with pytest.raises(InvalidInputError, match=re.escape(phrase)):
        run_load_test(url, LoadTestOptions(**kwargs))

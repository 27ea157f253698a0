"""The documented JSON schemas: well-formed, and the checker refuses what they forbid."""

from __future__ import annotations

import copy

import pytest
from edgeshelf.benchmarks.schema import SCHEMA_VERSION, SCHEMAS, errors, validate
from edgeshelf.sdk.errors import InvalidInputError

SUMMARY = {"count": 2, "mean_ms": 1.5, "std_ms": 0.5, "min_ms": 1.0, "p50_ms": 1.5, "p95_ms": 1.95,
           "p99_ms": 1.99, "max_ms": 2.0}  # fmt: skip
MACHINE = {"cpu_model": "AMD EPYC", "cpu_count": 2, "cpus_usable": 2, "arch": "x86_64", "system": "Linux 6",
           "python": "3.11.2", "load_average": [1.0, 1.0, 1.0], "emulated": False}  # fmt: skip


def envelope(benchmark: str) -> dict:
    return {
        "format": "edgeshelf-benchmark",
        "schema_version": SCHEMA_VERSION,
        "benchmark": benchmark,
        "created_utc": "2026-01-01T00:00:00Z",
        "command": ["edgeshelf", "benchmark", benchmark],
        "machine": MACHINE,
        "versions": {"edgeshelf": "0.1.0"},
        "notes": [],
        "goals": [
            {
                "id": "x",
                "description": "d",
                "target": "< 1",
                "value": None,
                "unit": "",
                "met": None,
                "reason": "",
            }
        ],
    }


LATENCY = {
    **envelope("latency"),
    "settings": {"runs": 2, "warmup": 0, "threads": 1, "k": 10, "asr_runs": 1, "asr_engine": "pocketsphinx",
                 "asr_model": None, "seed": 0},
    "bundle": {"path": "b", "profile": "speaker", "quantization": "int8", "space_id": "0123456789abcdef", "dim": 64,
               "modalities": ["text"], "image_size": None, "interpreter": "ai_edge_litert",
               "interpreter_version": "2.3.0", "xnnpack": True, "threads": 1, "model_bytes": {"text": 10},
               "total_bytes": 10},
    "shard": None,
    "inputs": {"texts": ["a"], "text_count": 1, "image": None, "image_shape": None, "video": None, "wav": None},
    "cold": {"bundle_open_ms": 1.0, "first_embedding_ms": 1.0, "open_to_first_embedding_ms": 2.0,
             "shard_open_ms": None, "first_search_ms": None, "asr_open_ms": None},
    "warmup_ms": {},
    "stages": {"query.text": {**SUMMARY, "samples_ms": [1.0, 2.0]}},
    "asr": None,
    "memory": {"peak_rss_source": "VmHWM", "peak_rss_bytes": 1, "peak_rss_bytes_before_asr": 1,
               "speaker_runtime": None},
    "comparison": None,
}  # fmt: skip
SEARCH_SYSTEM = {"engine": "e", "single": SUMMARY, "batched_ms_per_query": 0.1, "recall_at_k": 1.0,
                 "file_bytes": 1, "structure_bytes": 1, "rss_bytes": None, "build_seconds": 0.0}  # fmt: skip
SEARCH = {
    **envelope("search"),
    "settings": {"sizes": [10], "dim": 4, "k": 1, "queries": 1, "batch": 1, "dtype": "int8", "approx": "none",
                 "approx_max": 0, "seed": 0, "memory": False, "threads": 1},
    "vectors": {"sources": [], "real_count": 0, "queries_source": "synthetic"},
    "rows": [{"n": 10, "dim": 4, "source": {"real": 0, "synthetic": 10}, "queries": 1,
              "systems": {"shard": SEARCH_SYSTEM, "faiss_flat": SEARCH_SYSTEM}, "ratios_vs_shard": {}, "skipped": []}],
}  # fmt: skip
METRICS = {"kind": "clean", "queries": 1, "recall_at_1": 1.0, "recall_at_10": 1.0, "mrr": 1.0, "ndcg_at_10": 1.0,
           "p_at_5": 0.2}  # fmt: skip
QUALITY = {
    **envelope("quality"),
    "settings": {"protocol": None, "seed": 0, "max_queries_per_kind": None, "voice_queries": 0, "voice": "en-us",
                 "asr_engine": "pocketsphinx", "bm25": True, "threads": 1},
    "catalogue": {"path": "c", "columns": None, "products_evaluated": 1, "protocol": None},
    "towers": {"path": "t", "space_id": "0123456789abcdef"},
    "kinds": {"clean": {"queries": 1, "corpus": 1, "titles_hidden": False}},
    "systems": {"float": {"type": "towers", "info": {}, "kinds": {"clean": METRICS}, "notes": []}},
    "quantization": {},
    "voice": None,
}  # fmt: skip
DOCS = {"latency": LATENCY, "search": SEARCH, "quality": QUALITY}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_minimal_documents_are_valid(name):
    validate(DOCS[name])
    assert errors(DOCS[name], SCHEMAS[name]) == []


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schemas_are_json_schema_and_agree_with_the_checker(name):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])
    jsonschema.validate(DOCS[name], SCHEMAS[name])


def _broken(name, path, value=KeyError):
    doc = copy.deepcopy(DOCS[name])
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("name", "path", "value", "phrase"),
    [
        ("latency", ["stages"], KeyError, "missing required field 'stages'"),
        ("latency", ["stages", "query.text", "p50_ms"], "fast", "$.stages.query.text.p50_ms: must be number"),
        ("latency", ["stages", "query.text", "count"], 0, "must be >= 1"),
        ("latency", ["schema_version"], 99, "must be one of [1]"),
        ("latency", ["format"], "other", "must be 'edgeshelf-benchmark'"),
        ("latency", ["memory", "peak_rss_source"], "psutil", "must be one of"),
        ("latency", ["shard"], "x.shard", "matches none of the allowed forms"),
        ("latency", ["machine", "emulated"], "no", "must be boolean"),
        ("search", ["rows", 0, "systems", "faiss_flat"], KeyError, "missing required field 'faiss_flat'"),
        ("search", ["settings", "dtype"], "int4", "must be one of ['int8', 'float16']"),
        ("search", ["rows", 0, "systems", "shard", "recall_at_k"], None, "must be number"),
        ("quality", ["systems", "float", "type"], "magic", "must be one of"),
        ("quality", ["kinds", "clean", "queries"], -1, "must be >= 0"),
        ("quality", ["goals", 0, "met"], "yes", "must be boolean or null"),
    ],
)
def test_checker_refuses(name, path, value, phrase):
    doc = _broken(name, path, value)
    with pytest.raises(InvalidInputError, match="does not match schema version") as info:
        validate(doc)
    assert phrase in str(info.value)


def test_integers_are_not_booleans_and_numbers_accept_integers():
    assert errors(True, {"type": "integer"}) and errors(1, {"type": "boolean"})
    assert errors(3, {"type": "number"}) == [] and errors(3.5, {"type": "integer"})


@pytest.mark.parametrize(
    ("doc", "phrase"),
    [
        ([], "is a JSON object"),
        ({"benchmark": "speed"}, "unknown benchmark 'speed'"),
        ({}, "unknown benchmark None"),
    ],
)
def test_not_a_benchmark_document(doc, phrase):
    with pytest.raises(InvalidInputError, match=phrase):
        validate(doc)


def test_many_violations_are_summarised():
    doc = {"benchmark": "latency"}
    with pytest.raises(InvalidInputError, match=r"\(and \d+ more\)"):
        validate(doc)

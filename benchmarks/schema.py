"""The JSON schemas of the benchmark documents (``benchmarks/SCHEMA.md`` explains every field).

Each benchmark writes one document with a common envelope (``format``, ``schema_version``,
``benchmark``, ``created_utc``, ``command``, ``machine``, ``versions``, ``settings``, ``notes``,
``goals``) and its own body. The schemas are JSON Schema (draft 2020-12 subset) as Python dicts;
:func:`validate` checks a document with a small built-in checker of that subset (``type``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``, ``const``,
``minimum``), so a device needs no ``jsonschema`` package; the tests cross-check with
``jsonschema`` where it is installed.

Adding a field is compatible (``additionalProperties`` is open on the documents); renaming or
removing one bumps ``schema_version``.
"""

from __future__ import annotations

from typing import Any

from edgeshelf.sdk.errors import InvalidInputError

SCHEMA_VERSION = 1
BENCHMARKS = ("latency", "search", "quality")

NUM = {"type": "number"}
NUM_OR_NULL = {"type": ["number", "null"]}
INT = {"type": "integer", "minimum": 0}
INT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
STR = {"type": "string"}
STR_OR_NULL = {"type": ["string", "null"]}
BOOL = {"type": "boolean"}
NUMS = {"type": "array", "items": NUM}
STRS = {"type": "array", "items": STR}


def obj(props: dict[str, Any], required: list[str] | None = None, extra: Any = True) -> dict[str, Any]:
    """An object schema; ``required`` defaults to every listed property."""
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": extra,
    }


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def mapping(values: dict[str, Any]) -> dict[str, Any]:
    """An object whose keys are free (stage names, systems, kinds) and whose values match."""
    return {"type": "object", "additionalProperties": values}


SUMMARY = obj(
    {
        "count": {"type": "integer", "minimum": 1},
        "mean_ms": NUM,
        "std_ms": NUM,
        "min_ms": NUM,
        "p50_ms": NUM,
        "p95_ms": NUM,
        "p99_ms": NUM,
        "max_ms": NUM,
    }
)
STAGE = obj({**SUMMARY["properties"], "samples_ms": NUMS})
RATIO = obj({"median": NUM, "p10": NUM, "p90": NUM, "of_medians": NUM, "runs": INT})

MACHINE = obj(
    {
        "cpu_model": STR,
        "cpu_count": INT,
        "cpus_usable": INT,
        "arch": STR,
        "system": STR,
        "python": STR,
        "load_average": NUMS,
        "emulated": BOOL,
    }
)
GOAL = obj(
    {
        "id": STR,
        "description": STR,
        "target": STR,
        "value": {"type": ["number", "object", "null"]},
        "unit": STR,
        "met": {"type": ["boolean", "null"]},
        "reason": STR,
    }
)


def envelope(benchmark: str, body: dict[str, Any]) -> dict[str, Any]:
    common = {
        "format": {"const": "edgeshelf-benchmark"},
        "schema_version": {"type": "integer", "enum": [SCHEMA_VERSION]},
        "benchmark": {"const": benchmark},
        "created_utc": STR,
        "command": STRS,
        "machine": MACHINE,
        "versions": mapping(STR),
        "settings": {"type": "object"},
        "notes": STRS,
        "goals": {"type": "array", "items": GOAL},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"edgeshelf benchmark {benchmark}",
        **obj({**common, **body}),
    }


LATENCY = envelope(
    "latency",
    {
        "settings": obj(
            {
                "runs": {"type": "integer", "minimum": 1},
                "warmup": INT,
                "threads": {"type": "integer", "minimum": 1},
                "k": {"type": "integer", "minimum": 1},
                "asr_runs": INT,
                "asr_engine": STR,
                "asr_model": STR_OR_NULL,
                "seed": {"type": "integer"},
            }
        ),
        "bundle": obj(
            {
                "path": STR,
                "profile": STR,
                "quantization": STR,
                "space_id": STR,
                "dim": INT,
                "modalities": STRS,
                "image_size": INT_OR_NULL,
                "interpreter": STR,
                "interpreter_version": STR,
                "xnnpack": BOOL,
                "threads": {"type": "integer", "minimum": 1},
                "model_bytes": mapping(INT),
                "total_bytes": INT,
            }
        ),
        "shard": nullable(
            obj({"path": STR, "count": INT, "dim": INT, "dtype": STR, "bytes": INT, "kernel": STR})
        ),
        "inputs": obj(
            {
                "texts": STRS,
                "text_count": INT,
                "image": STR_OR_NULL,
                "image_shape": nullable({"type": "array", "items": INT}),
                "video": STR_OR_NULL,
                "wav": STR_OR_NULL,
            }
        ),
        "cold": obj(
            {
                "bundle_open_ms": NUM,
                "first_embedding_ms": NUM,
                "open_to_first_embedding_ms": NUM,
                "shard_open_ms": NUM_OR_NULL,
                "first_search_ms": NUM_OR_NULL,
                "asr_open_ms": NUM_OR_NULL,
            }
        ),
        "warmup_ms": mapping(NUMS),
        "stages": mapping(STAGE),
        "asr": nullable(
            obj(
                {
                    "engine": STR,
                    "model": STR_OR_NULL,
                    "grammar_phrases": INT_OR_NULL,
                    "oov_words": STRS,
                    "audio_seconds": NUM,
                    "transcript": STR,
                    "confidence": NUM_OR_NULL,
                    "real_time_factor": obj({"count": INT, "mean": NUM, "p50": NUM, "p95": NUM, "max": NUM}),
                }
            )
        ),
        "memory": obj(
            {
                "peak_rss_source": {"enum": ["VmHWM", "ru_maxrss"]},
                "peak_rss_bytes": INT,
                "peak_rss_bytes_before_asr": INT,
                "speaker_runtime": nullable(
                    obj(
                        {
                            "import_ms": NUM,
                            "bundle_open_ms": NUM,
                            "first_embedding_ms": NUM,
                            "open_to_first_embedding_ms": NUM,
                            "baseline_rss_bytes": INT,
                            "rss_after_bytes": INT,
                            "peak_rss_bytes": INT,
                            "queries": INT,
                            "includes": STR,
                        }
                    )
                ),
            }
        ),
        "comparison": nullable(
            obj(
                {
                    "systems": mapping(obj({"engine": STR, "version": STR, "threads": INT}, extra=True)),
                    "order": STRS,
                    "order_rotates": BOOL,
                    "queries": mapping(
                        obj(
                            {
                                "systems": mapping(SUMMARY),
                                "samples_ms": mapping(NUMS),
                                "ratios_vs_bundle": mapping(RATIO),
                                "cosine_vs_reference": mapping(NUM),
                                "reference": STR,
                            }
                        )
                    ),
                }
            )
        ),
    },
)

SEARCH_SYSTEM = obj(
    {
        "engine": STR,
        "single": SUMMARY,
        "batched_ms_per_query": NUM,
        "recall_at_k": NUM,
        "file_bytes": INT,
        "structure_bytes": INT,
        "rss_bytes": {"type": ["integer", "null"]},
        "build_seconds": NUM,
    }
)

SEARCH = envelope(
    "search",
    {
        "settings": obj(
            {
                "sizes": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                "dim": {"type": "integer", "minimum": 1},
                "k": {"type": "integer", "minimum": 1},
                "queries": {"type": "integer", "minimum": 1},
                "batch": {"type": "integer", "minimum": 1},
                "dtype": {"enum": ["int8", "float16"]},
                "approx": {"enum": ["usearch", "faiss-hnsw", "none"]},
                "approx_max": INT,
                "seed": {"type": "integer"},
                "memory": BOOL,
                "threads": INT,
            }
        ),
        "vectors": obj({"sources": STRS, "real_count": INT, "queries_source": STR}),
        "rows": {
            "type": "array",
            "items": obj(
                {
                    "n": {"type": "integer", "minimum": 1},
                    "dim": {"type": "integer", "minimum": 1},
                    "source": obj({"real": INT, "synthetic": INT}),
                    "queries": INT,
                    "systems": obj(
                        {"shard": SEARCH_SYSTEM, "faiss_flat": SEARCH_SYSTEM}, extra=SEARCH_SYSTEM
                    ),
                    "ratios_vs_shard": mapping(RATIO),
                    "skipped": STRS,
                }
            ),
        },
    },
)

METRICS = obj(
    {
        "kind": STR,
        "queries": INT,
        "recall_at_1": NUM,
        "recall_at_10": NUM,
        "mrr": NUM,
        "ndcg_at_10": NUM,
        "p_at_5": NUM,
    }
)
COSINES = obj({"count": INT, "mean": NUM, "min": NUM, "p05": NUM, "p50": NUM})

QUALITY = envelope(
    "quality",
    {
        "settings": obj(
            {
                "protocol": STR_OR_NULL,
                "seed": {"type": "integer"},
                "max_queries_per_kind": INT_OR_NULL,
                "voice_queries": INT,
                "voice": STR,
                "asr_engine": STR,
                "bm25": BOOL,
                "threads": INT,
            }
        ),
        "catalogue": obj(
            {
                "path": STR,
                "columns": STR_OR_NULL,
                "products_evaluated": INT,
                "protocol": {"type": ["object", "null"]},
            }
        ),
        "towers": obj({"path": STR, "space_id": STR}),
        "kinds": mapping(obj({"queries": INT, "corpus": INT, "titles_hidden": BOOL})),
        "systems": mapping(
            obj(
                {
                    "type": {"enum": ["towers", "bundle", "bm25", "peer"]},
                    "info": {"type": "object"},
                    "kinds": mapping(METRICS),
                    "notes": STRS,
                }
            )
        ),
        "quantization": mapping(obj({"kinds": mapping(COSINES), "samples": mapping(NUMS)})),
        "voice": nullable(
            obj(
                {
                    "requested": INT,
                    "spoken": INT,
                    "recognised": INT,
                    "exact_transcripts": INT,
                    "engine": STR,
                    "voice": STR,
                    "grammar_phrases": INT,
                    "mean_rtf": NUM_OR_NULL,
                    "examples": {"type": "array", "items": obj({"said": STR, "heard": STR})},
                }
            )
        ),
    },
)

SCHEMAS: dict[str, dict[str, Any]] = {"latency": LATENCY, "search": SEARCH, "quality": QUALITY}


# ---------------------------------------------------------------------------------------------
# the checker

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value`` (empty when valid), each as ``"path: why"``."""
    out: list[str] = []
    if "anyOf" in schema:
        branches = [errors(value, s, path) for s in schema["anyOf"]]
        if all(branches):
            out.append(f"{path}: matches none of the allowed forms ({branches[0][0]})")
        return out
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: must be {schema['const']!r}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: must be one of {schema['enum']}, got {value!r}")
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[t](value) for t in names):
            out.append(f"{path}: must be {' or '.join(names)}, got {type(value).__name__}")
            return out
    if "minimum" in schema and _TYPES["number"](value) and value < schema["minimum"]:
        out.append(f"{path}: must be >= {schema['minimum']}, got {value}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing required field {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                out.extend(errors(item, props[key], f"{path}.{key}"))
            elif extra is False:
                out.append(f"{path}: unexpected field {key!r}")
            elif isinstance(extra, dict):
                out.extend(errors(item, extra, f"{path}.{key}"))
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            out.extend(errors(item, schema["items"], f"{path}[{n}]"))
    return out


def validate(doc: Any, benchmark: str | None = None) -> None:
    """Check a benchmark document against its schema; raise :class:`InvalidInputError` listing
    the first violations. ``benchmark`` defaults to the document's own ``benchmark`` field."""
    if not isinstance(doc, dict):
        raise InvalidInputError(f"a benchmark document is a JSON object, got {type(doc).__name__}")
    name = benchmark or doc.get("benchmark")
    if name not in SCHEMAS:
        raise InvalidInputError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    found = errors(doc, SCHEMAS[name])
    if found:
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise InvalidInputError(
            f"the {name} benchmark document does not match schema version {SCHEMA_VERSION}: "
            + "; ".join(found[:5])
            + more
        )


__all__ = ["BENCHMARKS", "SCHEMAS", "SCHEMA_VERSION", "errors", "validate"]

"""The catalogue format, read everywhere: products and labelled queries from CSV, JSONL or Parquet.

A product is one row: ``id`` (required, unique), ``title``, ``description``, ``category``,
free-form string ``attributes``, ``price``, ``popularity`` and media paths (``image``, ``video``,
``audio``); everything but the id may be missing. Media paths in a file are relative to that
file's folder (or absolute); on a :class:`Product` they are always absolute.

The canonical layout (what :func:`write_catalogue` writes and what loads with no mapping):

* CSV / Parquet: one column per field above, every other column is an attribute (an empty cell
  means "absent"); extra attribute columns differ per product only by being empty.
* JSONL: one object per line with the same keys; attributes either as extra keys or nested under
  ``"attributes"``.

A foreign file loads as it is through a :class:`ColumnMapping`; its ``--columns`` syntax is::

    field=SOURCE[,field=SOURCE...]

``field`` is one of ``id, title, description, category, price, popularity, image, video, audio,
attributes``. ``SOURCE`` is a column name, or a template with ``{column}`` placeholders (e.g.
``image=images/{id}.jpg``, resolved relative to the file's folder). ``attributes`` takes
``+``-separated column names, or ``*`` for every column no other field uses. A mapping maps
exactly the fields it names (``id`` defaults to the column ``id``). Presets (see ``PRESETS``):
``fashion`` for ``../shared/data/catalogue/fashion/products.csv`` (with ``images/{id}.jpg``) and
``fashion-text`` for its text-only sibling ``styles_text_only.csv``.

Bad rows (missing id, duplicate id, unreadable media, a price that is not a number) are reported
as :class:`SkippedRow` (file and line) and skipped; ``strict=True`` raises
:class:`~edgeshelf.sdk.errors.InvalidInputError` on the first one instead.

Example::

    cat = load_catalogue("../shared/data/catalogue/fashion/products.csv", columns="fashion")
    print(len(cat), cat.skipped[:3], cat.products[0].attributes["baseColour"])
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.fileio import atomic_write_bytes, atomic_write_text

FIELDS = ("id", "title", "description", "category", "price", "popularity", "image", "video", "audio")
MEDIA_FIELDS = ("image", "video", "audio")
MAPPABLE = (*FIELDS, "attributes")
FORMATS = ("csv", "jsonl", "parquet")
PRODUCT_FILE_NAMES = ("products.csv", "products.jsonl", "products.parquet")
QUERY_KINDS_KNOWN = ("clean", "noisy", "zh", "voice", "image", "text_to_image", "video", "audio")

PRESETS: dict[str, str] = {
    # ../shared/data/catalogue/fashion/products.csv (+ images/<id>.jpg), the Myntra catalogue.
    "fashion": (
        "id=id,title=productDisplayName,category=articleType,image=images/{id}.jpg,"
        "attributes=gender+baseColour+articleType+usage+season+masterCategory+subCategory+year"
    ),
    # ../shared/data/catalogue/fashion/styles_text_only.csv: same columns, no images on disk.
    "fashion-text": (
        "id=id,title=productDisplayName,category=articleType,"
        "attributes=gender+baseColour+articleType+usage+season+masterCategory+subCategory+year"
    ),
}

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

# First bytes of the media containers we accept without decoding (see ``verify_media``).
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_VIDEO_MAGIC = (b"RIFF", b"\x1a\x45\xdf\xa3", b"OggS")  # AVI, Matroska/WebM, Ogg; MP4/MOV checked below
_AUDIO_MAGIC = (b"RIFF", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")


# ---------------------------------------------------------------------------------------------
# Data classes


@dataclass(frozen=True)
class Product:
    """One catalogue product. Media paths are absolute (or ``None``); attributes are strings."""

    id: str
    title: str = ""
    description: str = ""
    category: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    price: float | None = None
    popularity: float = 0.0
    image: Path | None = None
    video: Path | None = None
    audio: Path | None = None

    def __repr__(self) -> str:
        media = "".join(m[0] for m in MEDIA_FIELDS if getattr(self, m) is not None) or "-"
        return f"Product({self.id!r}, {self.title[:40]!r}, category={self.category!r}, media={media})"

    def __hash__(self) -> int:  # ids are unique within a catalogue; the dict field is not hashable
        return hash(("Product", self.id))

    def attr(self, key: str, default: str = "") -> str:
        """An attribute by name; ``"category"`` and ``"title"`` also work."""
        if key in ("category", "title", "description", "id"):
            return getattr(self, key) or default
        return self.attributes.get(key, default)


@dataclass(frozen=True)
class LabelledQuery:
    """One evaluation query: text and/or media, with graded relevant product ids.

    ``relevant`` maps product id -> grade (int >= 1; higher is better). ``exclude`` lists product
    ids an evaluator must drop from the ranking (e.g. the product whose own photo is the query).
    ``meta`` holds free-form strings (``"clean"``: the clean text of a noisy query, ``"source"``:
    the product a query was made from, ...). Media paths are absolute.
    """

    id: str
    kind: str
    text: str | None = None
    image: Path | None = None
    audio: Path | None = None
    video: Path | None = None
    relevant: dict[str, int] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        what = (
            repr(self.text[:40])
            if self.text
            else next(
                (f"{m}={getattr(self, m).name}" for m in ("image", "video", "audio") if getattr(self, m)), "-"
            )
        )
        return f"LabelledQuery({self.id!r}, {self.kind}, {what}, relevant={len(self.relevant)})"

    def __hash__(self) -> int:
        return hash(("LabelledQuery", self.id))

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        """JSON-ready dict; media paths relative to ``root`` when they lie under it."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.text is not None:
            out["text"] = self.text
        for m in ("image", "audio", "video"):
            value = getattr(self, m)
            if value is not None:
                out[m] = _relative(value, root)
        out["relevant"] = dict(self.relevant)
        if self.exclude:
            out["exclude"] = list(self.exclude)
        if self.meta:
            out["meta"] = dict(self.meta)
        return out


@dataclass(frozen=True)
class SkippedRow:
    """A row that was not loaded: ``file:line: reason`` (Parquet rows count from 1 as lines)."""

    file: Path
    line: int
    reason: str
    id: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True, repr=False)
class Catalogue:
    """Loaded products (file order), the rows skipped, and the labelled queries (if any).

    ``root`` is the folder media paths were resolved against; ``source`` the products file.
    ``pruned_queries`` counts queries dropped because none of their relevant ids was loaded
    (relevant ids of skipped products are removed from the others).
    """

    products: tuple[Product, ...]
    root: Path
    source: Path | None = None
    skipped: tuple[SkippedRow, ...] = ()
    queries: tuple[LabelledQuery, ...] = ()
    pruned_queries: int = 0
    _by_id: dict[str, Product] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {p.id: p for p in self.products})

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._by_id

    def __getitem__(self, product_id: str) -> Product:
        try:
            return self._by_id[product_id]
        except KeyError:
            raise InvalidInputError(
                f"product id {product_id!r} is not in the catalogue {self.source or self.root} "
                f"({len(self.products)} products)"
            ) from None

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.products)

    def categories(self) -> list[str]:
        """Sorted distinct non-empty categories."""
        return sorted({p.category for p in self.products if p.category})

    def media_counts(self) -> dict[str, int]:
        return {m: sum(getattr(p, m) is not None for p in self.products) for m in MEDIA_FIELDS}

    def queries_of(self, kind: str) -> tuple[LabelledQuery, ...]:
        return tuple(q for q in self.queries if q.kind == kind)

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts: products, media, categories, skipped rows, queries per kind."""
        kinds: dict[str, int] = {}
        for q in self.queries:
            kinds[q.kind] = kinds.get(q.kind, 0) + 1
        return {
            "source": str(self.source) if self.source else None,
            "products": len(self.products),
            "media": self.media_counts(),
            "categories": len(self.categories()),
            "skipped": len(self.skipped),
            "skipped_rows": [str(s) for s in self.skipped],
            "queries": kinds,
            "pruned_queries": self.pruned_queries,
        }

    def __repr__(self) -> str:
        media = ", ".join(f"{k}={v}" for k, v in self.media_counts().items())
        return (
            f"Catalogue({len(self.products)} products, {media}, skipped={len(self.skipped)}, "
            f"queries={len(self.queries)}, source={self.source})"
        )


# ---------------------------------------------------------------------------------------------
# Column mapping


@dataclass(frozen=True)
class ColumnMapping:
    """Where each product field comes from in a foreign file (see the module docstring).

    Each field is ``None`` (unmapped), a column name, or a template with ``{column}``
    placeholders. ``attributes`` is a tuple of column names, or ``("*",)`` for every column
    no other field uses.
    """

    id: str = "id"
    title: str | None = None
    description: str | None = None
    category: str | None = None
    price: str | None = None
    popularity: str | None = None
    image: str | None = None
    video: str | None = None
    audio: str | None = None
    attributes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> ColumnMapping:
        """Parse ``"id=id,title=productDisplayName,image=images/{id}.jpg,attributes=a+b"``."""
        spec = spec.strip()
        if not spec:
            raise InvalidInputError("empty column mapping: pass field=COLUMN pairs separated by commas")
        values: dict[str, Any] = {}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, source = part.partition("=")
            name, source = name.strip(), source.strip()
            if not sep or not name or not source:
                raise InvalidInputError(
                    f"column mapping item {part!r} is not field=SOURCE; "
                    f"e.g. 'title=productDisplayName' (fields: {', '.join(MAPPABLE)})"
                )
            if name not in MAPPABLE:
                raise InvalidInputError(
                    f"column mapping names an unknown field {name!r}; valid fields: {', '.join(MAPPABLE)}"
                )
            if name in values:
                raise InvalidInputError(f"column mapping names the field {name!r} twice: {spec!r}")
            if name == "attributes":
                cols = tuple(c.strip() for c in source.split("+") if c.strip())
                values[name] = cols
            else:
                _source_columns(source)  # a bad template fails here, before any file is read
                values[name] = source
        return cls(**values)

    @classmethod
    def preset(cls, name: str) -> ColumnMapping:
        """A named mapping from :data:`PRESETS`."""
        if name not in PRESETS:
            raise InvalidInputError(f"unknown column preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
        return cls.parse(PRESETS[name])

    def to_spec(self) -> str:
        """The ``--columns`` string for this mapping (round-trips through :meth:`parse`)."""
        parts = [f"{f}={getattr(self, f)}" for f in FIELDS if getattr(self, f) is not None]
        if self.attributes:
            parts.append("attributes=" + "+".join(self.attributes))
        return ",".join(parts)

    def columns_used(self) -> set[str]:
        """Column names any field reads (template placeholders included, ``*`` excluded)."""
        used: set[str] = set()
        for f in FIELDS:
            source = getattr(self, f)
            if source is not None:
                used.update(_source_columns(source))
        used.update(c for c in self.attributes if c != "*")
        return used

    def validate(self, available: Sequence[str], file: Path) -> None:
        """Raise :class:`InvalidInputError` when a mapped column is not in ``available``."""
        have = set(available)
        for f in (*FIELDS, "attributes"):
            sources = self.attributes if f == "attributes" else [getattr(self, f)]
            for source in sources:
                if source is None or source == "*":
                    continue
                missing = [c for c in _source_columns(source) if c not in have]
                if missing:
                    raise InvalidInputError(
                        f"{file}: the column mapping {f}={source} needs column {missing[0]!r}, which the "
                        f"file does not have; available columns: {', '.join(available)}"
                    )


def _source_columns(source: str) -> list[str]:
    if "{" in source or "}" in source:
        names = _PLACEHOLDER.findall(source)
        if not names or any(not n for n in names) or _PLACEHOLDER.sub("", source).count("{"):
            raise InvalidInputError(
                f"bad template {source!r}: use {{column}} placeholders, e.g. images/{{id}}.jpg"
            )
        return names
    return [source]


def resolve_columns(columns: ColumnMapping | str | Mapping[str, Any] | None) -> ColumnMapping | None:
    """``None`` (canonical layout), a mapping, a preset name, a ``--columns`` string or a dict."""
    if columns is None or isinstance(columns, ColumnMapping):
        return columns
    if isinstance(columns, str):
        return ColumnMapping.parse(columns) if "=" in columns else ColumnMapping.preset(columns.strip())
    if isinstance(columns, Mapping):
        values = dict(columns)
        unknown = sorted(set(values) - set(MAPPABLE))
        if unknown:
            raise InvalidInputError(
                f"unknown mapping field(s) {unknown}; valid fields: {', '.join(MAPPABLE)}"
            )
        if "attributes" in values:
            attrs = values["attributes"]
            values["attributes"] = (attrs,) if isinstance(attrs, str) else tuple(attrs)
        return ColumnMapping(**values)
    raise InvalidInputError(
        f"columns must be None, a ColumnMapping, a preset name or a 'field=COLUMN,...' string, not {type(columns).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# Readers: each yields (line, record dict of str -> value) after returning the column list.


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return "csv"
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    raise InvalidInputError(
        f"{path}: cannot tell the format from the name; expected a .csv, .tsv, .jsonl or .parquet file"
    )


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by the generator
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise InvalidInputError(f"{path}: the file is empty; expected a header row of column names") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise InvalidInputError(f"{path}:1: cannot read the header: {exc}") from exc
    header = [h.strip() for h in header]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        with handle:
            line = reader.line_num + 1
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    yield line, {"__error__": f"unreadable CSV row: {exc}"}
                    line = reader.line_num + 1
                    continue
                start, line = line, reader.line_num + 1
                if not values or all(not v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    yield start, {"__error__": f"expected {len(header)} fields, found {len(values)}"}
                    continue
                yield start, dict(zip(header, values))

    return header, rows()


def _read_jsonl(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    columns: dict[str, None] = {}
    with open(path, encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                records.append((number, {"__error__": f"not valid JSON: {exc.msg} at column {exc.colno}"}))
                continue
            if not isinstance(obj, dict):
                records.append((number, {"__error__": f"expected a JSON object, found {type(obj).__name__}"}))
                continue
            nested = obj.pop("attributes", None)
            if isinstance(nested, dict):
                for k, v in nested.items():
                    obj.setdefault(k, v)
            elif nested is not None:
                obj["attributes"] = nested
            for k in obj:
                columns.setdefault(k, None)
            records.append((number, obj))
    return list(columns), iter(records)


def _read_parquet(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    from edgeshelf.sdk.errors import require

    pq = require("pyarrow.parquet", "host")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InvalidInputError(f"{path}: not a readable Parquet file ({exc})") from exc
    columns = list(table.column_names)
    rows = table.to_pylist()
    return columns, ((i + 1, row) for i, row in enumerate(rows))


_READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}


# ---------------------------------------------------------------------------------------------
# Loading


class _BadRow(Exception):
    """Internal: one row cannot be loaded (becomes a SkippedRow)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def _number(value: Any, name: str) -> float | None:
    text = _text(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise _BadRow(f"{name} {text!r} is not a number") from None
    if not math.isfinite(number):
        raise _BadRow(f"{name} {text!r} is not a finite number")
    return number


def _check_media(path: Path, kind: str, verify: str) -> None:
    if verify == "none":
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except FileNotFoundError:
        raise _BadRow(f"{kind} file {path} does not exist") from None
    except OSError as exc:
        raise _BadRow(f"{kind} file {path} cannot be read ({exc.strerror})") from None
    if not head:
        raise _BadRow(f"{kind} file {path} is empty")
    if verify == "exists":
        return
    if kind == "image":
        ok = head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    elif kind == "video":
        ok = head.startswith(_VIDEO_MAGIC) or head[4:8] == b"ftyp"
    else:
        ok = head.startswith(_AUDIO_MAGIC)
    if not ok:
        raise _BadRow(f"{kind} file {path} is not a recognised {kind} format (starts with {head[:8]!r})")
    if verify == "decode" and kind == "image":
        import cv2
        import numpy as np

        data = np.frombuffer(path.read_bytes(), np.uint8)
        if cv2.imdecode(data, cv2.IMREAD_COLOR) is None:
            raise _BadRow(f"image file {path} cannot be decoded")


def _resolve_media(value: str, base: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


def _fill(source: str, record: Mapping[str, Any]) -> str:
    if "{" not in source:
        return _text(record.get(source))
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        value = _text(record.get(match.group(1)))
        if not value:
            missing.append(match.group(1))
        return value

    filled = _PLACEHOLDER.sub(sub, source)
    return "" if missing else filled


def _product_from_record(
    record: dict[str, Any],
    mapping: ColumnMapping | None,
    columns: Sequence[str],
    base: Path,
    verify: str,
) -> Product:
    if "__error__" in record:
        raise _BadRow(record["__error__"])
    if mapping is None:
        get = {f: _text(record.get(f)) for f in FIELDS}
        attributes = {
            str(k): _text(v) for k, v in record.items() if k not in FIELDS and k != "attributes" and _text(v)
        }
    else:
        get = {f: (_fill(getattr(mapping, f), record) if getattr(mapping, f) else "") for f in FIELDS}
        names = list(mapping.attributes)
        if "*" in names:
            used = mapping.columns_used()
            names = [c for c in columns if c not in used] + [c for c in names if c != "*"]
        attributes = {c: _text(record.get(c)) for c in names if _text(record.get(c))}
    product_id = get["id"]
    if not product_id:
        raise _BadRow("missing id")
    media: dict[str, Path | None] = {}
    for m in MEDIA_FIELDS:
        if get[m]:
            path = _resolve_media(get[m], base)
            _check_media(path, m, verify)
            media[m] = path.resolve()
        else:
            media[m] = None
    popularity = _number(get["popularity"], "popularity")
    return Product(
        id=product_id,
        title=get["title"],
        description=get["description"],
        category=get["category"],
        attributes=attributes,
        price=_number(get["price"], "price"),
        popularity=0.0 if popularity is None else popularity,
        image=media["image"],
        video=media["video"],
        audio=media["audio"],
    )


def find_products_file(path: Path) -> Path:
    """``path`` itself, or for a folder the ``products.{csv,jsonl,parquet}`` inside it."""
    if path.is_dir():
        for name in PRODUCT_FILE_NAMES:
            if (path / name).is_file():
                return path / name
        raise InvalidInputError(
            f"{path} is a folder without a products file; expected one of {', '.join(PRODUCT_FILE_NAMES)} "
            f"(make one with: edgeshelf sample-catalogue --out {path})"
        )
    if not path.exists():
        raise InvalidInputError(f"catalogue file {path} does not exist")
    return path


def iter_products(
    path: str | os.PathLike[str],
    columns: ColumnMapping | str | Mapping[str, Any] | None = None,
    *,
    verify_media: Literal["none", "exists", "header", "decode"] = "header",
) -> Iterator[Product | SkippedRow]:
    """Stream a products file: each row as a :class:`Product`, or a :class:`SkippedRow` when bad.

    Duplicate ids are reported here too (the later row is skipped).
    """
    file = find_products_file(Path(path)).resolve()
    fmt = detect_format(file)
    if verify_media not in ("none", "exists", "header", "decode"):
        raise InvalidInputError(f"verify_media must be none, exists, header or decode, not {verify_media!r}")
    mapping = resolve_columns(columns)
    header, rows = _READERS[fmt](file)
    if mapping is not None:
        mapping.validate(header, file)
    elif "id" not in header:
        raise InvalidInputError(
            f"{file}: no 'id' column; available columns: {', '.join(header)}; "
            f"map one with --columns id=COLUMN,... or use a preset (--preset {'/'.join(sorted(PRESETS))})"
        )
    base = file.parent
    seen: dict[str, int] = {}
    for line, record in rows:
        try:
            product = _product_from_record(record, mapping, header, base, verify_media)
        except _BadRow as exc:
            raw_id = record.get("id") if mapping is None else record.get(mapping.id)
            yield SkippedRow(file, line, str(exc), _text(raw_id) or None)
            continue
        if product.id in seen:
            yield SkippedRow(
                file, line, f"duplicate id {product.id!r} (first at line {seen[product.id]})", product.id
            )
            continue
        seen[product.id] = line
        yield product


def load_catalogue(
    path: str | os.PathLike[str],
    columns: ColumnMapping | str | Mapping[str, Any] | None = None,
    strict: bool = False,
    *,
    queries: str | os.PathLike[str] | bool | None = None,
    verify_media: Literal["none", "exists", "header", "decode"] = "header",
) -> Catalogue:
    """Load products (and labelled queries) from a CSV, JSONL or Parquet file or a catalogue folder.

    ``columns``: ``None`` for the canonical layout, a :class:`ColumnMapping`, a preset name
    (``"fashion"``) or a ``--columns`` string. ``strict``: raise :class:`InvalidInputError` on the
    first bad row instead of skipping it. ``queries``: a queries file; ``None`` loads the
    ``queries.jsonl`` beside the products file when there is one; ``False`` loads none.
    ``verify_media``: how media files are checked (``"header"``: exists and has a known image /
    video / audio signature; ``"decode"`` also decodes images; ``"exists"``; ``"none"``).
    """
    file = find_products_file(Path(path)).resolve()
    products: list[Product] = []
    skipped: list[SkippedRow] = []
    for item in iter_products(file, columns, verify_media=verify_media):
        if isinstance(item, SkippedRow):
            if strict:
                raise InvalidInputError(
                    f"{item} (strict load: fix the row, or load without --strict to skip bad rows)"
                )
            skipped.append(item)
        else:
            products.append(item)
    loaded: tuple[LabelledQuery, ...] = ()
    pruned = 0
    queries_file: Path | None = None
    if queries is None:
        candidate = file.parent / "queries.jsonl"
        queries_file = candidate if candidate.is_file() else None
    elif queries is True:
        queries_file = file.parent / "queries.jsonl"
    elif queries is not False:
        queries_file = Path(queries)
    if queries_file is not None:
        ids = {p.id for p in products}
        kept: list[LabelledQuery] = []
        for q in load_queries(queries_file):
            relevant = {pid: g for pid, g in q.relevant.items() if pid in ids}
            if not relevant:
                pruned += 1
                continue
            if len(relevant) != len(q.relevant):
                q = LabelledQuery(
                    q.id, q.kind, q.text, q.image, q.audio, q.video, relevant, q.exclude, dict(q.meta)
                )
            kept.append(q)
        loaded = tuple(kept)
    return Catalogue(
        products=tuple(products),
        root=file.parent,
        source=file,
        skipped=tuple(skipped),
        queries=loaded,
        pruned_queries=pruned,
    )


def load_queries(path: str | os.PathLike[str]) -> tuple[LabelledQuery, ...]:
    """Read labelled queries from JSONL (one object a line; schema: :meth:`LabelledQuery.to_dict`).

    Media paths are resolved relative to the file's folder. A bad line raises
    :class:`InvalidInputError` naming ``file:line``.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"queries file {file} does not exist")
    file = file.resolve()
    base = file.parent
    out: list[LabelledQuery] = []
    seen: set[str] = set()
    with open(file, encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{file}:{number}"
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InvalidInputError(f"{where}: expected a JSON object per line")
            qid = _text(obj.get("id"))
            kind = _text(obj.get("kind"))
            if not qid or not kind:
                raise InvalidInputError(f"{where}: a query needs a non-empty 'id' and 'kind'")
            if qid in seen:
                raise InvalidInputError(f"{where}: duplicate query id {qid!r}")
            seen.add(qid)
            relevant = obj.get("relevant")
            if not isinstance(relevant, dict) or not relevant:
                raise InvalidInputError(
                    f"{where}: 'relevant' must be a non-empty object of product id -> grade"
                )
            grades: dict[str, int] = {}
            for pid, grade in relevant.items():
                if isinstance(grade, bool) or not isinstance(grade, int) or grade < 1:
                    raise InvalidInputError(
                        f"{where}: grade of {pid!r} must be an integer >= 1, got {grade!r}"
                    )
                grades[str(pid)] = grade
            media = {
                m: (_resolve_media(str(obj[m]), base) if obj.get(m) else None)
                for m in ("image", "audio", "video")
            }
            text_value = obj.get("text")
            if text_value is None and all(v is None for v in media.values()):
                raise InvalidInputError(f"{where}: a query needs text or a media path (image, audio, video)")
            meta = obj.get("meta") or {}
            out.append(
                LabelledQuery(
                    id=qid,
                    kind=kind,
                    text=None if text_value is None else str(text_value),
                    image=media["image"],
                    audio=media["audio"],
                    video=media["video"],
                    relevant=grades,
                    exclude=tuple(str(x) for x in obj.get("exclude") or ()),
                    meta={str(k): str(v) for k, v in meta.items()},
                )
            )
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Writing


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(Path(path).resolve())


def product_record(product: Product, root: Path | None = None, nested: bool = False) -> dict[str, Any]:
    """The canonical record of a product (media relative to ``root`` when under it)."""
    clash = sorted(set(product.attributes) & set(FIELDS) | ({"attributes"} & set(product.attributes)))
    if clash and not nested:
        raise InvalidInputError(
            f"product {product.id!r} has attribute(s) {clash} named like product fields; rename them"
        )
    record: dict[str, Any] = {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "category": product.category,
        "price": product.price,
        "popularity": product.popularity,
    }
    for m in MEDIA_FIELDS:
        value = getattr(product, m)
        record[m] = None if value is None else _relative(value, root)
    if nested:
        record["attributes"] = dict(product.attributes)
    else:
        record.update(product.attributes)
    return record


def _format_number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def write_catalogue(
    path: str | os.PathLike[str],
    products: Iterable[Product] | Catalogue,
    queries: Iterable[LabelledQuery] | None = None,
    *,
    format: Literal["csv", "jsonl", "parquet"] | None = None,
) -> Path:
    """Write products in the canonical layout, atomically; return the path.

    The format comes from the suffix (``.csv``, ``.jsonl``, ``.parquet``) unless given. Media
    paths under the file's folder are written relative to it, others absolute. ``queries``, when
    given, go to ``queries.jsonl`` beside the file (also atomic).
    """
    target = Path(path)
    fmt = format or detect_format(target)
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown catalogue format {fmt!r}; formats: {', '.join(FORMATS)}")
    items = list(products.products if isinstance(products, Catalogue) else products)
    if queries is None and isinstance(products, Catalogue) and products.queries:
        queries = products.queries
    root = target.parent.resolve()
    seen: set[str] = set()
    for p in items:
        if not p.id:
            raise InvalidInputError("cannot write a product with an empty id")
        if p.id in seen:
            raise InvalidInputError(f"cannot write duplicate product id {p.id!r} to {target}")
        seen.add(p.id)
    records = [product_record(p, root, nested=(fmt == "jsonl")) for p in items]
    attr_names: list[str] = []
    if fmt != "jsonl":
        names: dict[str, None] = {}
        for p in items:
            for k in p.attributes:
                names.setdefault(k, None)
        attr_names = list(names)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header = [*FIELDS, *attr_names]
        writer.writerow(header)
        for r in records:
            row = []
            for c in header:
                v = r.get(c)
                row.append(_format_number(v) if c in ("price", "popularity") else ("" if v is None else v))
            writer.writerow(row)
        atomic_write_text(target, buffer.getvalue())
    elif fmt == "jsonl":
        lines = [
            json.dumps({k: v for k, v in r.items() if v not in (None, "")}, ensure_ascii=False)
            for r in records
        ]
        atomic_write_text(target, "".join(line + "\n" for line in lines))
    else:
        from edgeshelf.sdk.errors import require

        pa = require("pyarrow", "host")
        pq = require("pyarrow.parquet", "host")
        data: dict[str, list[Any]] = {}
        for c in (*FIELDS, *attr_names):
            data[c] = [r.get(c) for r in records]
        types = {c: (pa.float64() if c in ("price", "popularity") else pa.string()) for c in data}
        table = pa.table({c: pa.array(v, type=types[c]) for c, v in data.items()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(target, sink.getvalue().to_pybytes())
    if queries is not None:
        write_queries(target.parent / "queries.jsonl", queries)
    return target


def write_queries(path: str | os.PathLike[str], queries: Iterable[LabelledQuery]) -> Path:
    """Write labelled queries as JSONL, atomically (media relative to the file's folder)."""
    target = Path(path)
    root = target.parent.resolve()
    text = "".join(json.dumps(q.to_dict(root), ensure_ascii=False) + "\n" for q in queries)
    return atomic_write_text(target, text)


__all__ = [
    "FIELDS",
    "PRESETS",
    "Catalogue",
    "ColumnMapping",
    "LabelledQuery",
    "Product",
    "SkippedRow",
    "find_products_file",
    "iter_products",
    "load_catalogue",
    "load_queries",
    "product_record",
    "resolve_columns",
    "write_catalogue",
    "write_queries",
]

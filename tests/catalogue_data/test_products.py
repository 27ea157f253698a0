"""The catalogue format: readers, column mappings, bad rows, strict mode, queries, the fashion data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from edgeshelf.catalogue.products import (
    PRESETS,
    Catalogue,
    ColumnMapping,
    LabelledQuery,
    Product,
    SkippedRow,
    load_catalogue,
    load_queries,
    write_catalogue,
    write_queries,
)
from edgeshelf.sdk.errors import InvalidInputError

from edgeshelf.cli import main
from tests.conftest import REPO_ROOT, SHARED_DATA, require_shared_data

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0"
    "000003010100c9fe92ef0000000049454e44ae426082"
)


def _media(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    paths = {"a": folder / "img" / "a.png", "b": folder / "img" / "b.png"}
    for p in paths.values():
        p.write_bytes(PNG_1PX)
    return paths


def _products(folder: Path) -> list[Product]:
    media = _media(folder)
    return [
        Product(
            id="a",
            title="Red Cotton Shirt",
            description='A shirt, "quoted", with a comma',
            category="Shirts",
            attributes={"colour": "red", "title_zh": "红色棉质衬衫"},
            price=19.99,
            popularity=3.5,
            image=media["a"].resolve(),
        ),
        Product(
            id="b",
            title="Blue Mug",
            category="Mugs",
            attributes={"colour": "blue"},
            image=media["b"].resolve(),
        ),
        Product(id="c", title="Text only", price=0.0, attributes={"size": "XL"}),
    ]


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_write_then_load_round_trips_every_format(tmp_path: Path, suffix: str) -> None:
    products = _products(tmp_path)
    path = write_catalogue(tmp_path / f"products{suffix}", products)
    loaded = load_catalogue(path)
    assert list(loaded.products) == products
    assert loaded.skipped == ()
    assert loaded.source == path.resolve()


def test_csv_media_paths_are_written_relative_and_resolved_against_the_file(tmp_path: Path) -> None:
    products = _products(tmp_path)
    path = write_catalogue(tmp_path / "products.csv", products)
    text = path.read_text(encoding="utf-8")
    assert "img/a.png" in text and str(tmp_path) not in text
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    tmp_path.rename(moved)
    loaded = load_catalogue(moved / "products.csv")
    assert loaded["a"].image == (moved / "img" / "a.png").resolve()


def test_folder_path_loads_products_file_and_queries_beside_it(tmp_path: Path) -> None:
    products = _products(tmp_path)
    queries = [
        LabelledQuery("q1", "clean", text="red shirt", relevant={"a": 3, "b": 1}),
        LabelledQuery(
            "q2", "image", image=products[0].image, relevant={"a": 3}, exclude=("b",), meta={"k": "v"}
        ),
    ]
    write_catalogue(tmp_path / "products.jsonl", products, queries)
    loaded = load_catalogue(tmp_path)
    assert loaded.ids == ("a", "b", "c")
    assert list(loaded.queries) == queries
    assert loaded.queries_of("image")[0].exclude == ("b",)
    assert load_catalogue(tmp_path, queries=False).queries == ()


def test_queries_of_skipped_products_are_pruned(tmp_path: Path) -> None:
    (tmp_path / "products.csv").write_text("id,title\na,A\nb,B\n", encoding="utf-8")
    write_queries(
        tmp_path / "queries.jsonl",
        [
            LabelledQuery("q1", "clean", text="x", relevant={"a": 1, "gone": 2}),
            LabelledQuery("q2", "clean", text="y", relevant={"gone": 1}),
        ],
    )
    cat = load_catalogue(tmp_path / "products.csv")
    assert [q.id for q in cat.queries] == ["q1"]
    assert cat.queries[0].relevant == {"a": 1}
    assert cat.pruned_queries == 1


def test_write_catalogue_refuses_duplicate_ids_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="duplicate product id 'x'"):
        write_catalogue(tmp_path / "p.csv", [Product("x"), Product("x")])
    with pytest.raises(InvalidInputError, match="cannot tell the format"):
        write_catalogue(tmp_path / "p.txt", [Product("x")])


def test_jsonl_nested_attributes_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": 7, "title": "T", "price": 3, "attributes": {"colour": "red", "year": 2011}}\n\n'
        '{"id": "8", "colour": "blue"}\n',
        encoding="utf-8",
    )
    cat = load_catalogue(path)
    assert cat.ids == ("7", "8")
    assert cat["7"].attributes == {"colour": "red", "year": "2011"}
    assert cat["7"].price == 3.0
    assert cat["8"].attributes == {"colour": "blue"}


# ---------------------------------------------------------------------------------------------
# Column mappings

FASHION_SPEC = (
    "id=id,title=productDisplayName,category=articleType,image=images/{id}.jpg,"
    "attributes=gender+baseColour+articleType+usage+season+masterCategory+subCategory+year"
)


def test_fashion_preset_is_the_documented_mapping() -> None:
    assert PRESETS["fashion"] == FASHION_SPEC
    mapping = ColumnMapping.preset("fashion")
    assert mapping.image == "images/{id}.jpg"
    assert mapping.attributes[:2] == ("gender", "baseColour")
    assert ColumnMapping.parse(mapping.to_spec()) == mapping
    assert ColumnMapping.preset("fashion-text").image is None


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("", "empty column mapping"),
        ("id", "not field=SOURCE"),
        ("name=title", "unknown field 'name'; valid fields: id, title"),
        ("id=a,id=b", "names the field 'id' twice"),
        ("image=images/{}.jpg", "bad template"),
    ],
)
def test_bad_column_specs_fail(spec: str, error: str) -> None:
    with pytest.raises(InvalidInputError, match=error.replace("(", r"\(")):
        ColumnMapping.parse(spec)


def test_unknown_preset_lists_presets(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("id\n1\n", encoding="utf-8")
    with pytest.raises(
        InvalidInputError, match="unknown column preset 'shoes'; presets: fashion, fashion-text"
    ):
        load_catalogue(tmp_path / "p.csv", columns="shoes")


def test_unknown_column_lists_available_columns(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("sku,name,colour\n1,Shirt,red\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="needs column 'title'.*available columns: sku, name, colour"):
        load_catalogue(tmp_path / "p.csv", columns="id=sku,title=title")
    with pytest.raises(InvalidInputError, match=r"image=img/\{code\}.png needs column 'code'"):
        load_catalogue(tmp_path / "p.csv", columns="id=sku,image=img/{code}.png")
    with pytest.raises(InvalidInputError, match="no 'id' column; available columns: sku, name, colour"):
        load_catalogue(tmp_path / "p.csv")


def test_mapping_with_template_star_attributes_and_dict(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "s1.png").write_bytes(PNG_1PX)
    (tmp_path / "p.csv").write_text("sku,name,colour,cost\ns1,Shirt,red,9.5\n", encoding="utf-8")
    cat = load_catalogue(
        tmp_path / "p.csv", columns="id=sku,title=name,price=cost,image=pics/{sku}.png,attributes=*"
    )
    p = cat["s1"]
    assert (p.title, p.price, p.attributes) == ("Shirt", 9.5, {"colour": "red"})
    assert p.image == (tmp_path / "pics" / "s1.png").resolve()
    same = load_catalogue(
        tmp_path / "p.csv", columns={"id": "sku", "title": "name", "attributes": ["colour"]}
    )
    assert same["s1"].attributes == {"colour": "red"} and same["s1"].image is None


# ---------------------------------------------------------------------------------------------
# Bad rows


def _bad_csv(tmp_path: Path) -> Path:
    _media(tmp_path)
    (tmp_path / "img" / "broken.png").write_bytes(b"this is not an image")
    rows = [
        "id,title,price,image",
        "a,Good,1.5,img/a.png",  # line 2
        ",No id,2,img/a.png",  # line 3: missing id
        "a,Duplicate,3,img/b.png",  # line 4: duplicate id
        "c,Missing image,4,img/nope.png",  # line 5
        "d,Broken image,5,img/broken.png",  # line 6
        "e,Bad price,cheap,",  # line 7
        'f,"Multi',  # lines 8-9: one quoted record over two lines
        'line title",6,',
        "g,Too,many,fields,here",  # line 10
        "h,Good too,,img/b.png",  # line 11
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_bad_rows_are_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    path = _bad_csv(tmp_path)
    cat = load_catalogue(path)
    assert cat.ids == ("a", "f", "h")
    assert cat["f"].title == "Multi\nline title"
    got = {(s.line, s.reason.split(" (")[0]) for s in cat.skipped}
    resolved = path.resolve()
    assert all(s.file == resolved for s in cat.skipped)
    reasons = {s.line: s.reason for s in cat.skipped}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 10], got
    assert reasons[3] == "missing id"
    assert reasons[4] == "duplicate id 'a' (first at line 2)"
    assert "img/nope.png does not exist" in reasons[5]
    assert "is not a recognised image format" in reasons[6]
    assert reasons[7] == "price 'cheap' is not a number"
    assert reasons[10] == "expected 4 fields, found 5"
    assert str(cat.skipped[0]) == f"{resolved}:3: missing id"


def test_strict_raises_on_the_first_bad_row(tmp_path: Path) -> None:
    path = _bad_csv(tmp_path)
    with pytest.raises(InvalidInputError, match=r"bad\.csv:3: missing id \(strict load"):
        load_catalogue(path, strict=True)


def test_verify_media_levels(tmp_path: Path) -> None:
    path = _bad_csv(tmp_path)
    assert "d" in load_catalogue(path, verify_media="exists")
    assert "c" in load_catalogue(path, verify_media="none")
    truncated = tmp_path / "img" / "trunc.png"
    truncated.write_bytes(PNG_1PX[:20])
    (tmp_path / "t.csv").write_text("id,image\nt,img/trunc.png\n", encoding="utf-8")
    assert "t" in load_catalogue(tmp_path / "t.csv")
    decoded = load_catalogue(tmp_path / "t.csv", verify_media="decode")
    assert decoded.skipped[0].reason.endswith("cannot be decoded")


def test_jsonl_and_parquet_bad_rows_name_lines_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a"}\nnot json\n[1]\n{"title": "no id"}\n{"id": "a"}\n', encoding="utf-8")
    cat = load_catalogue(path)
    assert cat.ids == ("a",)
    assert [(s.line, s.reason[:16]) for s in cat.skipped] == [
        (2, "not valid JSON: "),
        (3, "expected a JSON "),
        (4, "missing id"),
        (5, "duplicate id 'a'"),
    ]
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"id": ["x", None, "x"], "price": [1.0, 2.0, None]}), tmp_path / "p.parquet")
    cat = load_catalogue(tmp_path / "p.parquet")
    assert cat.ids == ("x",)
    assert [(s.line, s.reason) for s in cat.skipped] == [
        (2, "missing id"),
        (3, "duplicate id 'x' (first at line 1)"),
    ]


def test_unreadable_inputs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_catalogue(tmp_path / "none.csv")
    with pytest.raises(InvalidInputError, match="folder without a products file"):
        load_catalogue(tmp_path)
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="the file is empty"):
        load_catalogue(tmp_path / "empty.csv")
    (tmp_path / "x.parquet").write_bytes(b"nope")
    with pytest.raises(InvalidInputError, match="not a readable Parquet file"):
        load_catalogue(tmp_path / "x.parquet")


# ---------------------------------------------------------------------------------------------
# Queries


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            '{"id": "q", "kind": "clean", "text": "x", "relevant": {}}',
            "'relevant' must be a non-empty object",
        ),
        (
            '{"id": "q", "kind": "clean", "text": "x", "relevant": {"a": 0}}',
            "grade of 'a' must be an integer >= 1",
        ),
        ('{"id": "q", "kind": "clean", "text": "x", "relevant": {"a": true}}', "must be an integer"),
        ('{"id": "q", "kind": "clean", "relevant": {"a": 1}}', "needs text or a media path"),
        ('{"kind": "clean", "text": "x", "relevant": {"a": 1}}', "non-empty 'id' and 'kind'"),
        ("{nope", "not valid JSON"),
    ],
)
def test_bad_query_lines_fail_with_file_and_line(tmp_path: Path, line: str, error: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "ok", "kind": "clean", "text": "x", "relevant": {"a": 2}}\n' + line + "\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInputError, match=rf"q\.jsonl:2: .*{error}"):
        load_queries(path)


def test_duplicate_query_ids_fail(tmp_path: Path) -> None:
    q = '{"id": "ok", "kind": "clean", "text": "x", "relevant": {"a": 2}}\n'
    (tmp_path / "q.jsonl").write_text(q + q, encoding="utf-8")
    with pytest.raises(InvalidInputError, match="duplicate query id 'ok'"):
        load_queries(tmp_path / "q.jsonl")


def test_catalogue_lookup_errors_name_the_id(tmp_path: Path) -> None:
    cat = Catalogue(products=(Product("a"),), root=tmp_path)
    assert "a" in cat and cat.get("b") is None
    with pytest.raises(InvalidInputError, match="product id 'b' is not in the catalogue"):
        cat["b"]
    assert isinstance(SkippedRow(tmp_path / "f.csv", 3, "x"), SkippedRow)


# ---------------------------------------------------------------------------------------------
# The real fashion catalogue


def _edgeshelf() -> list[str]:
    script = Path(sys.executable).parent / "edgeshelf"
    return [str(script)] if script.exists() else [sys.executable, "-m", "edgeshelf.cli"]


def test_fashion_catalogue_loads_via_the_cli_as_documented() -> None:
    folder = require_shared_data("catalogue", "fashion")
    default_root = (REPO_ROOT.parent / "shared" / "data").resolve()
    arg = (
        "../shared/data/catalogue/fashion/products.csv"
        if SHARED_DATA.resolve() == default_root
        else str(folder / "products.csv")
    )
    done = subprocess.run(
        [*_edgeshelf(), "validate-catalogue", arg, "--preset", "fashion"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    assert "2583 products loaded, 0 rows skipped" in done.stdout
    assert "2583 images" in done.stdout


def test_fashion_catalogue_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    folder = require_shared_data("catalogue", "fashion")
    assert main(["validate-catalogue", str(folder / "products.csv"), "--preset", "fashion", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["products"] == 2583
    assert summary["media"] == {"image": 2583, "video": 0, "audio": 0}
    assert summary["skipped"] == 0


def test_fashion_catalogue_products_carry_the_preset_attributes(fashion_catalogue) -> None:
    p = fashion_catalogue["15970"]
    assert p.title == "Turtle Check Men Navy Blue Shirt"
    assert p.category == "Shirts"
    assert {k: p.attributes[k] for k in ("gender", "baseColour", "articleType", "usage", "season")} == {
        "gender": "Men",
        "baseColour": "Navy Blue",
        "articleType": "Shirts",
        "usage": "Casual",
        "season": "Fall",
    }
    assert (p.attributes["masterCategory"], p.attributes["subCategory"]) == ("Apparel", "Topwear")
    assert p.image is not None and p.image.name == "15970.jpg" and p.image.is_file()
    from edgeshelf.sdk.preprocess import load_image

    assert load_image(p.image).shape == (224, 224, 3)


def test_fashion_text_only_loads_with_its_preset() -> None:
    folder = require_shared_data("catalogue", "fashion")
    cat = load_catalogue(folder / "styles_text_only.csv", columns="fashion-text")
    assert len(cat) == 14361 and cat.skipped == ()
    assert cat.media_counts()["image"] == 0
    assert cat["15970"].attributes["baseColour"] == "Navy Blue"
    assert sum("articleType" in p.attributes for p in cat) == len(cat)


def test_fashion_without_a_mapping_reports_missing_images_and_hints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = require_shared_data("catalogue", "fashion")
    assert main(["validate-catalogue", str(folder / "products.csv"), "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "0 products loaded, 2583 rows skipped" in out
    assert "products.csv:2: image file" in out and "--preset fashion" in out
    assert main(["validate-catalogue", str(folder / "products.csv"), "--preset", "fashion", "--strict"]) == 0


def test_validate_cli_strict_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bad_csv(tmp_path)
    assert main(["validate-catalogue", str(path), "--strict"]) == 2
    assert "bad.csv:3: missing id" in capsys.readouterr().err
    assert main(["validate-catalogue", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["products"] == 3 and summary["skipped"] == 6
    assert summary["skipped_rows"][0].endswith("bad.csv:3: missing id")


def test_products_and_queries_are_hashable_by_id() -> None:
    assert len({Product("a", attributes={"x": "1"}), Product("a", attributes={"x": "1"}), Product("b")}) == 2
    assert len({LabelledQuery("q", "clean", text="x", relevant={"a": 1})}) == 1

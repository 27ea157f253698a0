"""The generated demo catalogue: determinism, content, media, queries, CLI."""

from __future__ import annotations

import json
import re
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from edgeshelf.catalogue.products import load_catalogue
from edgeshelf.catalogue.sample import (
    CATEGORIES,
    GENERATOR_VERSION,
    SampleOptions,
    generate_sample_catalogue,
)
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.preprocess import load_image, read_video_frames, read_wav

from edgeshelf.cli import main

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    generate_sample_catalogue(tmp_path / "a", seed=7, products=60)
    generate_sample_catalogue(tmp_path / "b", seed=7, products=60)
    generate_sample_catalogue(tmp_path / "c", seed=8, products=60)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert "products.csv" in a and "images/P00001.png" in a and any(k.startswith("videos/") for k in a)
    assert a["products.csv"] != c["products.csv"]
    assert a["images/P00001.png"] != c["images/P00001.png"]


def test_regenerating_into_a_sample_folder_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "s"
    generate_sample_catalogue(out, seed=1, products=50)
    generate_sample_catalogue(out, seed=1, products=45)
    assert len(load_catalogue(out)) == 45
    with pytest.raises(InvalidInputError, match="already holds a sample catalogue"):
        generate_sample_catalogue(out, seed=1, products=45, overwrite=False)


def test_refuses_a_foreign_non_empty_folder_and_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not empty and holds no sample catalogue"):
        generate_sample_catalogue(tmp_path, products=10)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(InvalidInputError, match=r"products must be an integer in \[1, 200000\], got 0"):
        generate_sample_catalogue(tmp_path / "x", products=0)
    with pytest.raises(InvalidInputError, match="image_size must be in"):
        generate_sample_catalogue(tmp_path / "x", products=5, options=SampleOptions(image_size=8))
    with pytest.raises(InvalidInputError, match="video_fraction must be in"):
        generate_sample_catalogue(tmp_path / "x", products=5, options=SampleOptions(video_fraction=2.0))


def test_products_have_categories_colours_materials_brands(sample_catalogue) -> None:
    products = sample_catalogue.products
    assert len(products) == 200
    assert len(sample_catalogue.categories()) == len(CATEGORIES) >= 30
    assert len({p.attributes["colour"] for p in products}) >= 12
    assert len({p.attributes["material"] for p in products}) >= 10
    assert len({p.attributes["brand"] for p in products}) >= 15
    assert all(p.title and p.description and p.price and p.price > 0 for p in products)
    pops = sorted((p.popularity for p in products), reverse=True)
    assert pops[0] > 20 * pops[len(pops) // 2] > 0  # Zipf-like: a few very popular products


def test_english_and_chinese_titles(sample_catalogue) -> None:
    products = sample_catalogue.products
    assert all(_CJK.search(p.attributes["title_zh"]) for p in products)
    zh_first = [p for p in products if p.attributes["lang"] == "zh"]
    assert len(zh_first) == 20
    assert all(
        p.title == p.attributes["title_zh"] and not _CJK.search(p.attributes["title_en"]) for p in zh_first
    )
    assert all(not _CJK.search(p.title) for p in products if p.attributes["lang"] == "en")


def test_every_product_has_a_readable_image(sample_catalogue) -> None:
    for p in sample_catalogue.products[:60]:
        rgb = load_image(p.image)
        assert rgb.shape == (96, 96, 3) and rgb.dtype == np.uint8
        assert rgb.std() > 10  # a product on a background, not a flat frame


def test_image_colour_is_visible_in_pixels(sample_catalogue) -> None:
    # The product's own colour appears: some pixels are within a small distance of it.
    from edgeshelf.catalogue.sample import COLOURS

    rgb_of = {name: np.array(rgb, np.float32) for name, _, rgb in COLOURS}
    for p in sample_catalogue.products[:30]:
        pixels = load_image(p.image).reshape(-1, 3).astype(np.float32)
        nearest = np.linalg.norm(pixels - rgb_of[p.attributes["colour"]], axis=1)
        assert (nearest < 60).mean() > 0.015, p


def test_videos_are_readable_by_opencv(sample_catalogue) -> None:
    import cv2

    with_video = [p for p in sample_catalogue.products if p.video is not None]
    assert len(with_video) == 20
    for p in with_video[:5]:
        cap = cv2.VideoCapture(str(p.video))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
        assert 4 <= len(frames) <= 8 and frames[0].shape == (96, 96, 3)
        assert read_video_frames(p.video).shape == (4, 96, 96, 3)


def test_audio_clips_are_one_second_16k_wav(sample_catalogue) -> None:
    with_audio = [p for p in sample_catalogue.products if p.audio is not None]
    assert len(with_audio) == 20
    for p in with_audio[:5]:
        with wave.open(str(p.audio)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (
                16000,
                1,
                2,
                16000,
            )
        samples, rate = read_wav(p.audio)
        assert rate == 16000 and 0.5 < np.abs(samples).max() <= 1.0


def test_query_kinds_and_graded_relevance(sample_catalogue) -> None:
    kinds = Counter(q.kind for q in sample_catalogue.queries)
    assert set(kinds) == {"clean", "noisy", "zh", "image", "text_to_image", "video", "audio"}
    assert kinds["clean"] == kinds["noisy"] == 20
    cat = sample_catalogue
    for q in cat.queries:
        source = cat[q.meta["source"]]
        assert all(cat[i].category == source.category for i in q.relevant)
        assert set(q.relevant.values()) <= {1, 2, 3}
        if q.kind in ("image", "video", "audio"):
            assert q.relevant[source.id] == 3 and list(q.relevant.values()).count(3) == 1
            media = q.image or q.video or q.audio
            assert media is not None and media.is_file()
        else:
            assert q.relevant[source.id] == 3
        if q.kind in ("image", "video"):
            for i, g in q.relevant.items():
                same_colour = cat[i].attributes["colour"] == source.attributes["colour"]
                assert g == 3 if i == source.id else g == (2 if same_colour else 1)
    for q in cat.queries_of("text_to_image"):
        assert q.meta["corpus"] == "image_only"
        colour = q.text.split()[0]
        assert {i for i, g in q.relevant.items() if g == 3} == {
            i for i in q.relevant if cat[i].attributes["colour"] == colour
        }
    assert all(_CJK.search(q.text) for q in cat.queries_of("zh"))
    assert load_image(cat.queries_of("image")[0].image).shape == (96, 96, 3)


def test_clean_query_grades_follow_the_stated_attributes(sample_catalogue) -> None:
    cat = sample_catalogue
    for q in cat.queries_of("clean"):
        source = cat[q.meta["source"]]
        stated = q.meta["stated"].split("+")[1:]
        for i, grade in q.relevant.items():
            p = cat[i]
            matches = all(p.attributes[a] == source.attributes[a] for a in stated)
            expected = 3 if matches else (2 if p.attributes["colour"] == source.attributes["colour"] else 1)
            assert grade == expected, (q, i)
        assert len(q.relevant) == sum(p.category == source.category for p in cat)


def test_noisy_queries_differ_from_their_clean_text(sample_catalogue) -> None:
    clean = {q.id.split("-")[1]: q for q in sample_catalogue.queries_of("clean")}
    for q in sample_catalogue.queries_of("noisy"):
        twin = clean[q.id.split("-")[1]]
        assert q.meta["clean"] == twin.text and q.text != twin.text and q.relevant == twin.relevant


def test_catalogue_json_describes_the_dataset(sample_catalogue_dir: Path) -> None:
    info = json.loads((sample_catalogue_dir / "catalogue.json").read_text(encoding="utf-8"))
    assert info["generator_version"] == GENERATOR_VERSION and info["seed"] == 0
    assert info["counts"]["products"] == 200 and info["counts"]["categories"] == len(CATEGORIES)
    assert info["counts"]["queries"]["image"] == len(list((sample_catalogue_dir / "query_images").iterdir()))


def test_cli_generates_and_reports_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    rc = main(["sample-catalogue", "--out", str(out), "--products", "50", "--seed", "3", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["products"] == 50 and report["seed"] == 3 and report["counts"]["videos"] == 5
    assert main(["validate-catalogue", str(out)]) == 0
    text = capsys.readouterr().out
    assert "50 products loaded, 0 rows skipped" in text and "queries: clean" in text
    assert main(["sample-catalogue", "--out", str(out), "--products", "0"]) == 2
    assert "products must be an integer" in capsys.readouterr().err

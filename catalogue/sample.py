"""The product's own demo catalogue, generated (``edgeshelf sample-catalogue``).

Deterministic from the seed (same seed -> byte-identical files). Layout of ``DIR``:

* ``products.csv``: the canonical layout of :mod:`edgeshelf.catalogue.products`; attributes
  ``gender, colour, material, brand, department, title_zh, lang`` (and ``title_en`` on the ~10 %
  of products whose title is Chinese). ``category`` is one of :data:`CATEGORIES` (42 of them).
* ``images/<id>.png``: one RGB rendering per product (``image_size`` pixels square, default 96):
  a category silhouette filled with the colour and a material texture, a small brand mark, a
  plain or graded background, seeded pose / scale / offset.
* ``videos/<id>.avi``: ~10 % of products, 4-8 MJPG frames of the product turning and zooming.
* ``audio/<id>.wav``: ~10 % of products, 1 s of 16 kHz mono 16-bit PCM: a jingle whose melody
  follows the category and whose timbre follows the material.
* ``queries.jsonl``: labelled queries (:func:`~edgeshelf.catalogue.products.load_queries`) of kinds
  ``clean``, ``noisy`` (typos, dropped words, ASR-like confusions of the clean ones), ``zh``,
  ``image`` (another rendering of a product, in ``query_images/``), ``text_to_image`` (text
  against products embedded from their image only: ``meta["corpus"] == "image_only"``), ``video``
  (``query_videos/``) and ``audio`` (``query_audio/``). Grades: 3 = matches everything the query
  states (for media queries: the very product), 2 = same category and colour (audio: category
  and material), 1 = same category.
* ``catalogue.json``: generator version, seed, options and counts.

Example::

    info = generate_sample_catalogue("demo", seed=0, products=200)
    cat = load_catalogue("demo")        # products + queries
"""

from __future__ import annotations

import functools
import io
import json
import math
import random
import shutil
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from edgeshelf.catalogue.noise import QueryNoise
from edgeshelf.catalogue.products import LabelledQuery, Product, write_catalogue, write_queries
from edgeshelf.sdk.errors import InvalidInputError
from edgeshelf.sdk.fileio import atomic_directory, atomic_write_text

GENERATOR_VERSION = 1
SAMPLE_RATE = 16000
_MEDIA_DIRS = ("images", "videos", "audio", "query_images", "query_videos", "query_audio")

# ---------------------------------------------------------------------------------------------
# Vocabulary

# name, Chinese name, RGB
COLOURS: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("black", "黑色", (28, 28, 30)),
    ("white", "白色", (246, 246, 244)),
    ("grey", "灰色", (128, 128, 132)),
    ("red", "红色", (206, 32, 38)),
    ("maroon", "酒红色", (118, 22, 42)),
    ("pink", "粉色", (244, 136, 178)),
    ("orange", "橙色", (244, 128, 28)),
    ("yellow", "黄色", (242, 212, 40)),
    ("beige", "米色", (222, 202, 160)),
    ("brown", "棕色", (120, 74, 38)),
    ("green", "绿色", (38, 150, 62)),
    ("olive", "橄榄绿", (112, 120, 40)),
    ("teal", "青色", (18, 132, 132)),
    ("blue", "蓝色", (40, 92, 214)),
    ("navy", "藏青色", (26, 36, 92)),
    ("purple", "紫色", (122, 50, 164)),
    ("silver", "银色", (192, 196, 204)),
    ("gold", "金色", (212, 170, 58)),
)
_COLOUR = {c[0]: c for c in COLOURS}
_PLAIN_COLOURS = tuple(c[0] for c in COLOURS if c[0] not in ("silver", "gold"))
_JEWEL_COLOURS = ("gold", "silver", "black", "red", "pink", "blue", "green", "white")

MATERIALS: dict[str, str] = {
    "cotton": "棉质",
    "denim": "牛仔布",
    "leather": "真皮",
    "wool": "羊毛",
    "silk": "真丝",
    "linen": "亚麻",
    "plastic": "塑料",
    "metal": "金属",
    "canvas": "帆布",
    "suede": "麂皮",
    "ceramic": "陶瓷",
    "wood": "木质",
    "mesh": "网眼",
}
_MATERIAL_PRICE = {"leather": 1.7, "silk": 1.6, "wool": 1.35, "suede": 1.5, "metal": 1.25, "plastic": 0.7}

BRANDS = (
    "Northwind", "Lumen", "Kestrel", "Alder & Co", "Marlow", "Saffron", "Tidewater", "Juniper",
    "Copperleaf", "Halcyon", "Orchard", "Vantage", "Bramble", "Solstice", "Ember", "Quill",
    "Riverstone", "Nimbus", "Foxglove", "Meridian", "Pebble", "Aurora", "Wren", "Cobalt Row",
)  # fmt: skip

GENDERS = {
    "Men": ("men's", "男款"),
    "Women": ("women's", "女款"),
    "Kids": ("kids'", "童款"),
    "Unisex": ("unisex", "中性"),
}
STYLES = (
    "classic",
    "slim",
    "everyday",
    "vintage",
    "sport",
    "premium",
    "relaxed",
    "essential",
    "urban",
    "soft",
)
_FEATURES = {
    "Apparel": ("Machine washable.", "Regular fit.", "Breathable for all-day wear.", "Reinforced seams."),
    "Footwear": ("Cushioned insole.", "Non-slip sole.", "True to size.", "Lightweight build."),
    "Bags": ("Zip closure.", "Two inner pockets.", "Adjustable strap.", "Fits a 13-inch laptop."),
    "Accessories": ("One size.", "Gift boxed.", "Everyday essential.", "Easy care."),
    "Jewellery": ("Hypoallergenic.", "Comes in a pouch.", "Tarnish resistant.", "Handmade."),
    "Home": ("Dishwasher safe.", "Fits any room.", "Easy to clean.", "Made to last."),
    "Electronics": ("Bluetooth 5.3.", "USB-C charging.", "12-hour battery.", "One-year warranty."),
}


@dataclass(frozen=True)
class Category:
    """A sample category: names, department, allowed genders and materials, base price, shape."""

    name: str
    zh: str
    department: str
    genders: tuple[str, ...]
    materials: tuple[str, ...]
    price: float
    shape: tuple[tuple[Any, ...], ...]
    motif: tuple[int, ...]
    logo: tuple[float, float] = (0.0, 0.0)


_APPAREL = ("Men", "Women", "Unisex", "Kids")
_ADULT = ("Men", "Women", "Unisex")
_HOME = ("Unisex",)


def _sleeves_long(top: float = -0.75, bottom: float = 0.8) -> list[tuple[float, float]]:
    return [
        (-0.3, top), (0.3, top), (0.55, top + 0.15), (0.78, 0.5), (0.56, 0.56), (0.42, -0.2),
        (0.42, bottom), (-0.42, bottom), (-0.42, -0.2), (-0.56, 0.56), (-0.78, 0.5), (-0.55, top + 0.15),
    ]  # fmt: skip


# Shape primitives in unit coordinates ([-1, 1], y down). Roles: body (filled with colour and
# texture), hole (cut out of the body), dark / light (shades of the colour drawn on top),
# sole / metal / glass / face (fixed colours drawn on top).
CATEGORIES: tuple[Category, ...] = (
    Category("T-Shirt", "T恤", "Apparel", _APPAREL, ("cotton", "linen", "mesh"), 18, (
        ("poly", "body", [(-0.35, -0.7), (-0.12, -0.62), (0.12, -0.62), (0.35, -0.7), (0.82, -0.35), (0.62, -0.08),
                          (0.42, -0.25), (0.42, 0.75), (-0.42, 0.75), (-0.42, -0.25), (-0.62, -0.08), (-0.82, -0.35)]),
        ("ellipse", "hole", 0.0, -0.66, 0.14, 0.1, 0, 0, 360, -1),
    ), (0, 4, 7, 12)),
    Category("Shirt", "衬衫", "Apparel", _APPAREL, ("cotton", "linen", "silk", "denim"), 32, (
        ("poly", "body", _sleeves_long()),
        ("poly", "light", [(-0.2, -0.76), (0.0, -0.55), (-0.06, -0.45), (-0.26, -0.66)]),
        ("poly", "light", [(0.2, -0.76), (0.0, -0.55), (0.06, -0.45), (0.26, -0.66)]),
        ("line", "dark", 0.0, -0.55, 0.0, 0.8, 0.02),
        ("circle", "dark", 0.0, -0.25, 0.025, -1), ("circle", "dark", 0.0, 0.05, 0.025, -1),
        ("circle", "dark", 0.0, 0.35, 0.025, -1),
    ), (0, 5, 9, 7), (0.22, -0.3)),
    Category("Dress", "连衣裙", "Apparel", ("Women", "Kids"), ("cotton", "silk", "linen", "wool"), 45, (
        ("poly", "body", [(-0.22, -0.62), (0.22, -0.62), (0.3, -0.15), (0.72, 0.85), (-0.72, 0.85), (-0.3, -0.15)]),
        ("line", "body", -0.2, -0.6, -0.16, -0.9, 0.04), ("line", "body", 0.2, -0.6, 0.16, -0.9, 0.04),
        ("line", "dark", -0.3, -0.15, 0.3, -0.15, 0.03),
    ), (4, 7, 11, 16), (0.0, -0.4)),
    Category("Skirt", "半身裙", "Apparel", ("Women", "Kids"), ("cotton", "denim", "leather", "silk", "wool"), 30, (
        ("poly", "body", [(-0.38, -0.45), (0.38, -0.45), (0.74, 0.62), (-0.74, 0.62)]),
        ("rect", "dark", -0.4, -0.55, 0.4, -0.43, -1),
        ("line", "dark", -0.15, -0.3, -0.3, 0.6, 0.015), ("line", "dark", 0.15, -0.3, 0.3, 0.6, 0.015),
    ), (7, 4, 0, 4)),
    Category("Trousers", "长裤", "Apparel", _APPAREL, ("cotton", "linen", "wool", "canvas"), 40, (
        ("poly", "body", [(-0.4, -0.82), (0.4, -0.82), (0.46, 0.88), (0.12, 0.88), (0.0, -0.28), (-0.12, 0.88),
                          (-0.46, 0.88)]),
        ("rect", "dark", -0.41, -0.85, 0.41, -0.74, -1),
    ), (-5, 0, 2, -5)),
    Category("Jeans", "牛仔裤", "Apparel", _APPAREL, ("denim",), 55, (
        ("poly", "body", [(-0.42, -0.82), (0.42, -0.82), (0.54, 0.88), (0.14, 0.88), (0.0, -0.2), (-0.14, 0.88),
                          (-0.54, 0.88)]),
        ("rect", "light", -0.43, -0.85, 0.43, -0.74, 2),
        ("ellipse", "light", -0.22, -0.74, 0.16, 0.16, 0, 0, 90, 2),
        ("ellipse", "light", 0.22, -0.74, 0.16, 0.16, 0, 90, 180, 2),
        ("line", "light", 0.0, -0.74, 0.0, -0.3, 0.012),
    ), (-5, 2, 3, 7)),
    Category("Shorts", "短裤", "Apparel", _APPAREL, ("cotton", "denim", "linen", "mesh"), 22, (
        ("poly", "body", [(-0.52, -0.5), (0.52, -0.5), (0.64, 0.38), (0.08, 0.38), (0.0, -0.02), (-0.08, 0.38),
                          (-0.64, 0.38)]),
        ("rect", "dark", -0.53, -0.56, 0.53, -0.44, -1),
    ), (0, 2, 4, 7)),
    Category("Jacket", "夹克", "Apparel", _APPAREL, ("leather", "denim", "suede", "canvas", "wool"), 85, (
        ("poly", "body", _sleeves_long(-0.72, 0.55)),
        ("poly", "hole", [(-0.14, -0.73), (0.14, -0.73), (0.0, -0.4)]),
        ("line", "metal", 0.0, -0.4, 0.0, 0.55, 0.03),
        ("rect", "dark", -0.42, 0.45, 0.42, 0.56, -1),
    ), (-3, 0, 4, 0), (-0.22, -0.25)),
    Category("Coat", "大衣", "Apparel", _ADULT, ("wool", "leather", "suede", "cotton"), 140, (
        ("poly", "body", _sleeves_long(-0.8, 0.95)),
        ("poly", "dark", [(-0.16, -0.8), (0.16, -0.8), (0.06, -0.35), (-0.06, -0.35)]),
        ("circle", "dark", -0.12, -0.15, 0.035, -1), ("circle", "dark", 0.12, -0.15, 0.035, -1),
        ("circle", "dark", -0.12, 0.2, 0.035, -1), ("circle", "dark", 0.12, 0.2, 0.035, -1),
    ), (-7, -3, 0, -12), (0.25, 0.5)),
    Category("Hoodie", "连帽衫", "Apparel", _APPAREL, ("cotton", "wool", "mesh"), 48, (
        ("poly", "body", _sleeves_long(-0.62, 0.8)),
        ("ellipse", "body", 0.0, -0.68, 0.26, 0.24, 0, 0, 360, -1),
        ("ellipse", "dark", 0.0, -0.62, 0.14, 0.13, 0, 0, 360, -1),
        ("rect", "dark", -0.26, 0.28, 0.26, 0.58, 2),
    ), (0, 3, 7, 10), (0.0, -0.1)),
    Category("Sweater", "毛衣", "Apparel", _APPAREL, ("wool", "cotton"), 55, (
        ("poly", "body", _sleeves_long(-0.7, 0.8)),
        ("ellipse", "dark", 0.0, -0.7, 0.2, 0.1, 0, 0, 180, 3),
        ("rect", "dark", -0.42, 0.66, 0.42, 0.8, -1),
        ("line", "dark", 0.56, 0.45, 0.78, 0.42, 0.04), ("line", "dark", -0.56, 0.45, -0.78, 0.42, 0.04),
    ), (0, 4, 7, 4)),
    Category("Sneakers", "运动鞋", "Footwear", _APPAREL, ("mesh", "canvas", "leather", "suede"), 70, (
        ("poly", "body", [(-0.82, 0.12), (-0.32, 0.0), (-0.12, -0.36), (0.32, -0.36), (0.42, 0.0), (0.82, 0.14),
                          (0.86, 0.36), (-0.84, 0.36)]),
        ("rect", "sole", -0.86, 0.3, 0.88, 0.46, -1),
        ("line", "light", -0.05, -0.22, 0.15, -0.05, 0.02), ("line", "light", -0.15, -0.1, 0.05, 0.05, 0.02),
    ), (0, 7, 12, 7), (0.3, 0.15)),
    Category("Boots", "靴子", "Footwear", _APPAREL, ("leather", "suede", "canvas"), 95, (
        ("poly", "body", [(-0.32, -0.82), (0.2, -0.82), (0.22, 0.08), (0.74, 0.28), (0.8, 0.62), (-0.32, 0.62)]),
        ("rect", "dark", -0.34, 0.6, 0.82, 0.74, -1),
        ("rect", "dark", -0.34, -0.86, 0.22, -0.76, -1),
    ), (-12, -7, -5, -12), (-0.05, -0.2)),
    Category("Sandals", "凉鞋", "Footwear", _APPAREL, ("leather", "plastic", "canvas"), 35, (
        ("ellipse", "body", 0.0, 0.35, 0.85, 0.16, 0, 0, 360, -1),
        ("ellipse", "body", -0.1, 0.2, 0.3, 0.3, 0, 180, 360, 5),
        ("ellipse", "body", 0.42, 0.22, 0.2, 0.26, 0, 180, 360, 5),
        ("rect", "dark", -0.8, 0.44, 0.8, 0.52, -1),
    ), (7, 12, 7, 16), (0.0, 0.35)),
    Category("Heels", "高跟鞋", "Footwear", ("Women",), ("leather", "suede", "silk"), 80, (
        ("poly", "body", [(-0.78, -0.15), (-0.55, -0.3), (-0.3, -0.05), (0.15, 0.25), (0.72, 0.28), (0.8, 0.42),
                          (0.1, 0.44), (-0.55, 0.05)]),
        ("line", "body", -0.68, -0.1, -0.62, 0.75, 0.05),
        ("line", "dark", 0.1, 0.44, 0.78, 0.42, 0.015),
    ), (12, 16, 19, 24), (0.3, 0.33)),
    Category("Slippers", "拖鞋", "Footwear", _APPAREL, ("wool", "cotton", "plastic", "suede"), 20, (
        ("ellipse", "body", 0.0, 0.2, 0.82, 0.3, 0, 0, 360, -1),
        ("ellipse", "dark", 0.35, 0.1, 0.42, 0.28, 0, 180, 360, -1),
    ), (0, -5, 0, -5), (0.35, 0.0)),
    Category("Handbag", "手提包", "Bags", _ADULT, ("leather", "suede", "canvas"), 110, (
        ("poly", "body", [(-0.6, -0.22), (0.6, -0.22), (0.74, 0.72), (-0.74, 0.72)]),
        ("ellipse", "body", 0.0, -0.22, 0.38, 0.45, 0, 180, 360, 6),
        ("line", "dark", -0.62, 0.05, 0.62, 0.05, 0.02),
        ("rect", "metal", -0.07, 0.0, 0.07, 0.12, -1),
    ), (4, 9, 12, 9), (0.0, 0.35)),
    Category("Backpack", "双肩包", "Bags", _APPAREL, ("canvas", "leather", "mesh"), 65, (
        ("rect", "body", -0.5, -0.58, 0.5, 0.82, -1),
        ("ellipse", "body", 0.0, -0.58, 0.5, 0.26, 0, 180, 360, -1),
        ("ellipse", "dark", 0.0, -0.84, 0.12, 0.1, 0, 180, 360, 3),
        ("rect", "dark", -0.34, 0.22, 0.34, 0.7, 2),
        ("line", "dark", -0.34, 0.36, 0.34, 0.36, 0.015),
    ), (0, 5, 7, 0), (0.0, -0.15)),
    Category("Wallet", "钱包", "Bags", _ADULT, ("leather", "canvas", "suede"), 38, (
        ("rect", "body", -0.76, -0.46, 0.76, 0.46, -1),
        ("poly", "dark", [(-0.76, -0.46), (0.76, -0.46), (0.76, -0.12), (0.0, 0.08), (-0.76, -0.12)]),
        ("circle", "metal", 0.0, 0.02, 0.07, -1),
    ), (9, 7, 5, 4), (0.4, 0.25)),
    Category("Tote Bag", "托特包", "Bags", _ADULT, ("canvas", "cotton", "leather"), 42, (
        ("rect", "body", -0.56, -0.25, 0.56, 0.82, -1),
        ("ellipse", "body", -0.26, -0.25, 0.12, 0.55, 0, 180, 360, 4),
        ("ellipse", "body", 0.26, -0.25, 0.12, 0.55, 0, 180, 360, 4),
    ), (2, 5, 9, 14), (0.0, 0.3)),
    Category("Cap", "棒球帽", "Accessories", _APPAREL, ("cotton", "canvas", "wool", "mesh"), 22, (
        ("ellipse", "body", -0.05, 0.15, 0.58, 0.6, 0, 180, 360, -1),
        ("poly", "body", [(0.3, 0.08), (0.92, 0.2), (0.9, 0.3), (0.3, 0.22)]),
        ("rect", "dark", -0.64, 0.1, 0.52, 0.2, -1),
        ("circle", "dark", -0.05, -0.45, 0.05, -1),
    ), (12, 7, 12, 7), (-0.1, -0.15)),
    Category("Hat", "礼帽", "Accessories", _ADULT, ("wool", "linen", "cotton"), 36, (
        ("ellipse", "body", 0.0, 0.3, 0.9, 0.2, 0, 0, 360, -1),
        ("rect", "body", -0.42, -0.45, 0.42, 0.3, -1),
        ("ellipse", "body", 0.0, -0.45, 0.42, 0.1, 0, 0, 360, -1),
        ("rect", "dark", -0.43, 0.08, 0.43, 0.22, -1),
    ), (-5, -1, 2, 7), (0.0, -0.15)),
    Category("Scarf", "围巾", "Accessories", _ADULT, ("wool", "silk", "cotton", "linen"), 28, (
        ("poly", "body", [(-0.75, -0.55), (-0.45, -0.75), (0.72, 0.48), (0.42, 0.7)]),
        ("line", "dark", 0.42, 0.7, 0.36, 0.85, 0.015), ("line", "dark", 0.52, 0.62, 0.48, 0.8, 0.015),
        ("line", "dark", 0.62, 0.55, 0.6, 0.72, 0.015), ("line", "dark", 0.72, 0.48, 0.74, 0.64, 0.015),
        ("line", "dark", -0.65, -0.45, 0.55, 0.55, 0.012),
    ), (0, 2, 3, 5), (0.0, 0.0)),
    Category("Belt", "腰带", "Accessories", _ADULT, ("leather", "canvas", "suede"), 30, (
        ("rect", "body", -0.92, -0.12, 0.92, 0.12, -1),
        ("rect", "metal", -0.62, -0.22, -0.36, 0.22, 3),
        ("circle", "dark", 0.2, 0.0, 0.03, -1), ("circle", "dark", 0.4, 0.0, 0.03, -1),
        ("circle", "dark", 0.6, 0.0, 0.03, -1),
    ), (0, 0, 7, 0), (0.0, 0.0)),
    Category("Gloves", "手套", "Accessories", _APPAREL, ("leather", "wool", "suede", "cotton"), 26, (
        ("rect", "body", -0.36, -0.2, 0.36, 0.78, -1),
        ("rect", "body", -0.36, -0.72, -0.2, -0.1, -1), ("rect", "body", -0.17, -0.85, -0.01, -0.1, -1),
        ("rect", "body", 0.02, -0.8, 0.18, -0.1, -1), ("rect", "body", 0.21, -0.66, 0.36, -0.1, -1),
        ("poly", "body", [(-0.36, 0.3), (-0.7, -0.12), (-0.58, -0.22), (-0.3, 0.05)]),
        ("rect", "dark", -0.37, 0.6, 0.37, 0.78, -1),
    ), (7, 5, 4, 2), (0.0, 0.3)),
    Category("Socks", "袜子", "Accessories", _APPAREL, ("cotton", "wool"), 9, (
        ("poly", "body", [(-0.3, -0.85), (0.12, -0.85), (0.12, 0.3), (0.62, 0.42), (0.66, 0.78), (-0.3, 0.72)]),
        ("rect", "dark", -0.31, -0.88, 0.13, -0.66, -1),
        ("ellipse", "dark", 0.56, 0.6, 0.12, 0.18, 0, 0, 360, -1),
    ), (12, 14, 16, 17), (-0.1, 0.0)),
    Category("Watch", "手表", "Accessories", _ADULT, ("metal", "leather", "plastic"), 120, (
        ("rect", "body", -0.2, -0.92, 0.2, 0.92, -1),
        ("circle", "metal", 0.0, 0.0, 0.42, -1),
        ("circle", "face", 0.0, 0.0, 0.34, -1),
        ("line", "dark", 0.0, 0.0, 0.0, -0.24, 0.025), ("line", "dark", 0.0, 0.0, 0.17, 0.06, 0.025),
    ), (12, 7, 12, 7), (0.0, 0.7)),
    Category("Sunglasses", "太阳镜", "Accessories", _ADULT, ("plastic", "metal", "wood"), 60, (
        ("ellipse", "body", -0.42, 0.0, 0.34, 0.27, 0, 0, 360, -1),
        ("ellipse", "body", 0.42, 0.0, 0.34, 0.27, 0, 0, 360, -1),
        ("ellipse", "glass", -0.42, 0.0, 0.27, 0.2, 0, 0, 360, -1),
        ("ellipse", "glass", 0.42, 0.0, 0.27, 0.2, 0, 0, 360, -1),
        ("ellipse", "body", 0.0, 0.0, 0.12, 0.08, 0, 180, 360, 4),
        ("line", "body", -0.76, -0.05, -0.95, -0.2, 0.04), ("line", "body", 0.76, -0.05, 0.95, -0.2, 0.04),
    ), (19, 16, 12, 7), (-0.72, 0.0)),
    Category("Umbrella", "雨伞", "Accessories", _ADULT, ("plastic", "canvas"), 24, (
        ("ellipse", "body", 0.0, 0.0, 0.85, 0.7, 0, 180, 360, -1),
        ("ellipse", "hole", -0.57, 0.02, 0.28, 0.1, 0, 180, 360, -1),
        ("ellipse", "hole", 0.0, 0.02, 0.29, 0.1, 0, 180, 360, -1),
        ("ellipse", "hole", 0.57, 0.02, 0.28, 0.1, 0, 180, 360, -1),
        ("line", "dark", 0.0, -0.05, 0.0, 0.75, 0.03),
        ("ellipse", "dark", 0.1, 0.75, 0.1, 0.1, 0, 0, 180, 3),
    ), (0, 4, 2, -1), (0.0, -0.35)),
    Category("Necklace", "项链", "Jewellery", _ADULT, ("metal",), 90, (
        ("ellipse", "body", 0.0, -0.15, 0.55, 0.62, 0, 0, 180, 3),
        ("line", "body", -0.55, -0.15, -0.5, -0.7, 0.02), ("line", "body", 0.55, -0.15, 0.5, -0.7, 0.02),
        ("poly", "body", [(0.0, 0.45), (0.16, 0.62), (0.0, 0.86), (-0.16, 0.62)]),
    ), (24, 28, 31, 36), (0.0, 0.64)),
    Category("Ring", "戒指", "Jewellery", _ADULT, ("metal", "wood", "ceramic"), 75, (
        ("circle", "body", 0.0, 0.15, 0.56, -1),
        ("circle", "hole", 0.0, 0.15, 0.4, -1),
        ("poly", "body", [(-0.2, -0.38), (0.2, -0.38), (0.3, -0.55), (0.0, -0.8), (-0.3, -0.55)]),
        ("circle", "light", 0.0, -0.57, 0.12, -1),
    ), (24, 31, 36, 31), (0.0, 0.63)),
    Category("Earrings", "耳环", "Jewellery", ("Women", "Unisex"), ("metal", "ceramic"), 50, (
        ("ellipse", "metal", -0.4, -0.6, 0.1, 0.14, 0, 180, 360, 2),
        ("ellipse", "metal", 0.4, -0.6, 0.1, 0.14, 0, 180, 360, 2),
        ("line", "metal", -0.3, -0.6, -0.4, -0.2, 0.015), ("line", "metal", 0.5, -0.6, 0.4, -0.2, 0.015),
        ("circle", "body", -0.4, 0.15, 0.28, -1), ("circle", "body", 0.4, 0.15, 0.28, -1),
        ("poly", "body", [(-0.4, -0.25), (-0.2, 0.0), (-0.6, 0.0)]),
        ("poly", "body", [(0.4, -0.25), (0.6, 0.0), (0.2, 0.0)]),
    ), (24, 28, 24, 31), (-0.4, 0.15)),
    Category("Mug", "马克杯", "Home", _HOME, ("ceramic", "metal", "plastic"), 14, (
        ("rect", "body", -0.52, -0.6, 0.36, 0.7, -1),
        ("ellipse", "body", 0.36, 0.02, 0.34, 0.32, 0, 0, 360, -1),
        ("ellipse", "hole", 0.36, 0.02, 0.18, 0.17, 0, 0, 360, -1),
        ("rect", "hole", 0.2, -0.4, 0.36, 0.4, -1),
        ("ellipse", "dark", -0.08, -0.6, 0.44, 0.07, 0, 0, 360, -1),
    ), (0, 4, 7, 12), (-0.08, 0.1)),
    Category("Bottle", "水瓶", "Home", _HOME, ("metal", "plastic"), 19, (
        ("rect", "body", -0.3, -0.35, 0.3, 0.88, -1),
        ("ellipse", "body", 0.0, -0.35, 0.3, 0.2, 0, 180, 360, -1),
        ("rect", "body", -0.13, -0.7, 0.13, -0.45, -1),
        ("rect", "dark", -0.17, -0.9, 0.17, -0.68, -1),
    ), (7, 12, 14, 19), (0.0, 0.25)),
    Category("Lamp", "台灯", "Home", _HOME, ("metal", "ceramic", "wood"), 48, (
        ("poly", "body", [(-0.3, -0.85), (0.3, -0.85), (0.55, -0.25), (-0.55, -0.25)]),
        ("line", "metal", 0.0, -0.25, 0.0, 0.7, 0.04),
        ("ellipse", "body", 0.0, 0.75, 0.45, 0.12, 0, 0, 360, -1),
    ), (-12, -5, 0, 4), (0.0, -0.55)),
    Category("Chair", "椅子", "Home", _HOME, ("wood", "metal", "plastic", "leather"), 120, (
        ("rect", "body", -0.45, -0.85, -0.3, 0.1, -1),
        ("rect", "body", -0.45, -0.05, 0.5, 0.1, -1),
        ("line", "body", -0.4, 0.1, -0.4, 0.88, 0.05), ("line", "body", 0.45, 0.1, 0.45, 0.88, 0.05),
        ("rect", "body", -0.45, -0.85, 0.15, -0.5, -1),
    ), (-12, -12, -5, -17), (-0.15, -0.68)),
    Category("Vase", "花瓶", "Home", _HOME, ("ceramic", "metal"), 34, (
        ("ellipse", "body", 0.0, 0.3, 0.46, 0.52, 0, 0, 360, -1),
        ("rect", "body", -0.16, -0.6, 0.16, -0.1, -1),
        ("ellipse", "body", 0.0, -0.62, 0.26, 0.08, 0, 0, 360, -1),
        ("ellipse", "light", -0.2, 0.2, 0.06, 0.2, 0, 0, 360, -1),
    ), (0, 7, 9, 4), (0.1, 0.4)),
    Category("Pillow", "抱枕", "Home", _HOME, ("cotton", "linen", "silk", "wool"), 25, (
        ("poly", "body", [(-0.75, -0.75), (0.0, -0.62), (0.75, -0.75), (0.62, 0.0), (0.75, 0.75), (0.0, 0.62),
                          (-0.75, 0.75), (-0.62, 0.0)]),
        ("circle", "dark", 0.0, 0.0, 0.06, -1),
    ), (-5, 0, 4, 0), (0.35, 0.35)),
    Category("Towel", "毛巾", "Home", _HOME, ("cotton", "linen"), 16, (
        ("rect", "body", -0.7, -0.55, 0.7, 0.6, -1),
        ("rect", "light", -0.7, 0.32, 0.7, 0.4, -1),
        ("rect", "light", -0.7, -0.35, 0.7, -0.27, -1),
        ("line", "dark", -0.7, -0.55, 0.7, -0.55, 0.02),
    ), (0, 2, 0, -3), (0.0, 0.05)),
    Category("Headphones", "耳机", "Electronics", _HOME, ("plastic", "metal", "leather"), 99, (
        ("ellipse", "body", 0.0, 0.05, 0.62, 0.75, 0, 180, 360, 7),
        ("rect", "body", -0.8, -0.05, -0.46, 0.6, -1),
        ("rect", "body", 0.46, -0.05, 0.8, 0.6, -1),
        ("rect", "dark", -0.55, 0.0, -0.46, 0.55, -1), ("rect", "dark", 0.46, 0.0, 0.55, 0.55, -1),
    ), (12, 19, 24, 19), (-0.65, 0.28)),
    Category("Phone Case", "手机壳", "Electronics", _HOME, ("plastic", "leather", "wood"), 15, (
        ("rect", "body", -0.42, -0.86, 0.42, 0.86, -1),
        ("rect", "dark", -0.32, -0.76, -0.02, -0.4, -1),
        ("circle", "glass", -0.23, -0.66, 0.07, -1), ("circle", "glass", -0.11, -0.5, 0.07, -1),
    ), (19, 24, 19, 24), (0.0, 0.3)),
    Category("Speaker", "音箱", "Electronics", _HOME, ("plastic", "metal", "wood", "mesh"), 85, (
        ("rect", "body", -0.42, -0.62, 0.42, 0.82, -1),
        ("ellipse", "body", 0.0, -0.62, 0.42, 0.14, 0, 0, 360, -1),
        ("circle", "dark", 0.0, -0.1, 0.24, -1), ("circle", "dark", 0.0, 0.5, 0.16, -1),
        ("circle", "light", 0.0, -0.1, 0.08, -1),
    ), (-12, -5, -12, -17), (0.0, 0.22)),
)  # fmt: skip
_CATEGORY = {c.name: c for c in CATEGORIES}


def colours_for(category: Category) -> tuple[str, ...]:
    """Colours a category comes in (metals for metal-capable categories; gem colours for jewellery)."""
    if category.department == "Jewellery":
        return _JEWEL_COLOURS
    if "metal" in category.materials or category.name in ("Heels", "Handbag"):
        return (*_PLAIN_COLOURS, "silver", "gold")
    return _PLAIN_COLOURS


# ---------------------------------------------------------------------------------------------
# Options and result


@dataclass(frozen=True)
class SampleOptions:
    """What to generate besides the seed and the product count.

    ``image_size``: pixels a side of product and query images (PNG, RGB). ``video_fraction`` /
    ``audio_fraction``: share of products with a clip. ``chinese_first_fraction``: share whose
    title is Chinese. ``video_frames``: inclusive range of frames per clip. ``queries_scale``:
    multiplies every query count.
    """

    image_size: int = 96
    video_fraction: float = 0.1
    audio_fraction: float = 0.1
    chinese_first_fraction: float = 0.1
    video_frames: tuple[int, int] = (4, 8)
    audio_seconds: float = 1.0
    queries_scale: float = 1.0

    def validate(self) -> None:
        if not 32 <= self.image_size <= 512:
            raise InvalidInputError(f"image_size must be in [32, 512] pixels, got {self.image_size}")
        for name in ("video_fraction", "audio_fraction", "chinese_first_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be in [0, 1], got {value}")
        lo, hi = self.video_frames
        if not 2 <= lo <= hi <= 64:
            raise InvalidInputError(
                f"video_frames must satisfy 2 <= min <= max <= 64, got {self.video_frames}"
            )
        if not 0.25 <= self.audio_seconds <= 10.0:
            raise InvalidInputError(f"audio_seconds must be in [0.25, 10], got {self.audio_seconds}")
        if not 0.0 < self.queries_scale <= 10.0:
            raise InvalidInputError(f"queries_scale must be in (0, 10], got {self.queries_scale}")


@dataclass(frozen=True)
class SampleCatalogueInfo:
    """What :func:`generate_sample_catalogue` wrote: the folder, seed and counts."""

    path: Path
    seed: int
    products: int
    counts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def __repr__(self) -> str:
        return f"SampleCatalogueInfo({self.path}, seed={self.seed}, products={self.products}, {self.seconds:.1f} s)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "seed": self.seed,
            "products": self.products,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
        }


# ---------------------------------------------------------------------------------------------
# Rendering


def _cv2():
    from edgeshelf.sdk.errors import require

    return require("cv2", "device")


def material_textures(seed: int, size: int = 256) -> dict[str, np.ndarray]:
    """One float32 ``[size, size]`` multiplicative texture (around 1.0) per material."""
    cv2 = _cv2()
    rng = np.random.default_rng([seed, 7001])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    def noise(sigma: float = 0.0) -> np.ndarray:
        n = rng.standard_normal((size, size)).astype(np.float32)
        if sigma > 0:
            n = cv2.GaussianBlur(n, (0, 0), sigma)
            n /= max(float(n.std()), 1e-6)
        return n

    tau = 2 * math.pi
    tex = {
        "cotton": 1 + 0.04 * noise() + 0.04 * np.sin(tau * xx / 3) * np.sin(tau * yy / 3),
        "denim": 1 + 0.13 * np.sin(tau * (xx + yy) / 6) + 0.06 * noise(),
        "leather": 1 + 0.12 * noise(2.5) + 0.03 * noise(),
        "wool": 1 + 0.15 * np.sin(tau * (yy + 4 * np.abs((xx % 8) - 4)) / 8),
        "silk": 1 + 0.2 * np.sin(tau * (0.6 * xx + yy) / 70) + 0.015 * noise(),
        "linen": 1
        + 0.06 * (np.sin(tau * xx / 4 + noise(6)) + np.sin(tau * yy / 4 + noise(6)))
        + 0.04 * noise(),
        "plastic": 1 + 0.02 * noise() + 0.3 * np.exp(-(((xx - 90) ** 2 + (yy - 80) ** 2) / (2 * 28.0**2))),
        "metal": 1 + 0.16 * cv2.blur(noise(), (41, 1)) * 3 + 0.12 * np.sin(tau * yy / size),
        "canvas": 1 + 0.09 * np.sign(np.sin(tau * xx / 8)) * np.sign(np.sin(tau * yy / 8)) + 0.04 * noise(),
        "suede": 0.93 + 0.06 * noise(1.2),
        "ceramic": 1 + 0.28 * np.exp(-(((xx - 0.3 * yy - 100) / 10.0) ** 2)) + 0.01 * noise(),
        "wood": 1 + 0.15 * np.sin(tau * (yy + 10 * noise(12)) / 11),
        "mesh": 1 - 0.28 * (((xx % 6) < 2) & ((yy % 6) < 2)),
    }
    return {k: np.clip(v, 0.5, 1.5).astype(np.float32) for k, v in tex.items()}


@dataclass(frozen=True)
class Pose:
    """Where a rendering puts the product: rotation (degrees), scale, offset (fraction of size)."""

    angle: float = 0.0
    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    light: float = 0.0  # lighting direction, radians
    background: int = 0  # 0 plain, 1 vertical gradient, 2 diagonal gradient


def random_pose(rng: np.random.Generator, strength: float = 1.0) -> Pose:
    return Pose(
        angle=float(rng.uniform(-12, 12) * strength),
        scale=float(1.0 + rng.uniform(-0.13, 0.05) * strength),
        dx=float(rng.uniform(-0.06, 0.06) * strength),
        dy=float(rng.uniform(-0.06, 0.06) * strength),
        light=float(rng.uniform(0, 2 * math.pi)),
        background=int(rng.integers(0, 3)),
    )


def _luma(rgb: Sequence[float]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


_SUPERSAMPLE = 1  # render at this multiple of the output size (1: OpenCV's anti-aliasing suffices)


@functools.lru_cache(maxsize=4)
def _grid(big: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32) / big
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


_BRAND_GLYPHS = ("circle", "square", "triangle", "diamond", "bar", "ring")


def render_product(
    category: Category,
    colour: str,
    material: str,
    brand_index: int,
    pose: Pose,
    rng: np.random.Generator,
    textures: dict[str, np.ndarray],
    size: int = 96,
    noise_sigma: float = 0.0,
) -> np.ndarray:
    """Draw one product: uint8 ``[size, size, 3]`` RGB (``noise_sigma``: additive pixel noise, 0-255 scale)."""
    cv2 = _cv2()
    big = size * _SUPERSAMPLE
    shift = 4
    one = 1 << shift
    rgb = np.array(_COLOUR[colour][2], np.float32)
    luma = _luma(rgb)
    # Background: contrasting tone, plain or graded.
    if luma > 150:
        base = rng.uniform(40, 95, 3)
    else:
        base = rng.uniform(185, 240, 3)
    base = base * 0.6 + base.mean() * 0.4
    yy, xx = _grid(big)
    if pose.background == 1:
        ramp = (yy - 0.5)[..., None] * 40
    elif pose.background == 2:
        ramp = ((xx + yy) / 2 - 0.5)[..., None] * 40
    else:
        ramp = np.zeros((big, big, 1), np.float32)
    img = np.broadcast_to(base.astype(np.float32), (big, big, 3)) + ramp

    radius = big * 0.42 * pose.scale
    cos_a, sin_a = math.cos(math.radians(pose.angle)), math.sin(math.radians(pose.angle))
    cx, cy = big / 2 + pose.dx * big, big / 2 + pose.dy * big

    def pt(x: float, y: float) -> tuple[int, int]:
        px = cx + radius * (x * cos_a - y * sin_a)
        py = cy + radius * (x * sin_a + y * cos_a)
        return int(round(px * one)), int(round(py * one))

    def ln(t: float) -> int:
        return max(1, int(round(t * radius)))

    def draw(canvas: np.ndarray, prim: tuple[Any, ...], value: Any) -> None:
        kind = prim[0]
        if kind == "poly":
            pts = np.array([pt(x, y) for x, y in prim[2]], np.int32)
            cv2.fillPoly(canvas, [pts], value, cv2.LINE_AA, shift)
        elif kind == "ellipse":
            _, _, ex, ey, rx, ry, ang, a0, a1, thick = prim
            axes = (int(round(rx * radius * one)), int(round(ry * radius * one)))
            thickness = -1 if thick < 0 else max(1, int(round(thick * big / 96)))
            cv2.ellipse(
                canvas, pt(ex, ey), axes, ang + pose.angle, a0, a1, value, thickness, cv2.LINE_AA, shift
            )
        elif kind == "rect":
            _, _, x0, y0, x1, y1, thick = prim
            pts = np.array([pt(x0, y0), pt(x1, y0), pt(x1, y1), pt(x0, y1)], np.int32)
            if thick < 0:
                cv2.fillPoly(canvas, [pts], value, cv2.LINE_AA, shift)
            else:
                cv2.polylines(
                    canvas, [pts], True, value, max(1, int(round(thick * big / 96))), cv2.LINE_AA, shift
                )
        elif kind == "circle":
            _, _, ex, ey, r, thick = prim
            thickness = -1 if thick < 0 else max(1, int(round(thick * big / 96)))
            cv2.circle(canvas, pt(ex, ey), int(round(r * radius * one)), value, thickness, cv2.LINE_AA, shift)
        elif kind == "line":
            _, _, x0, y0, x1, y1, t = prim
            cv2.line(canvas, pt(x0, y0), pt(x1, y1), value, ln(t), cv2.LINE_AA, shift)

    mask = np.zeros((big, big), np.uint8)
    for prim in category.shape:
        if prim[1] == "body":
            draw(mask, prim, 255)
        elif prim[1] == "hole":
            draw(mask, prim, 0)
    tex = textures[material]
    oy, ox = (int(v) for v in rng.integers(0, tex.shape[0] - big + 1, 2)) if tex.shape[0] > big else (0, 0)
    patch = tex[oy : oy + big, ox : ox + big] if tex.shape[0] >= big else cv2.resize(tex, (big, big))
    shade = 1.0 + 0.12 * ((xx - 0.5) * math.cos(pose.light) + (yy - 0.5) * math.sin(pose.light))
    product = rgb[None, None, :] * (patch * shade)[..., None]
    if luma < 60:  # lift very dark colours so the material still shows
        product = product + 22 * (patch - 1.0)[..., None] * 4
    m = (mask.astype(np.float32) / 255.0)[..., None]
    img = img * (1 - m) + product * m
    edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(np.float32) / 255.0
    img = img * (1 - 0.45 * edge[..., None])

    fixed = {
        "dark": tuple(float(v) for v in (rgb * 0.55 if luma > 60 else rgb + 55)),
        "light": tuple(float(v) for v in np.minimum(255, rgb * 1.3 + 40)),
        "sole": (236.0, 234.0, 228.0),
        "metal": (176.0, 180.0, 188.0),
        "glass": (34.0, 40.0, 52.0),
        "face": (244.0, 244.0, 240.0),
    }
    for prim in category.shape:
        if prim[1] in fixed:
            draw(img, prim, fixed[prim[1]])
    # Brand mark: a small glyph at the category's logo anchor, contrasting with the colour.
    glyph = _BRAND_GLYPHS[brand_index % len(_BRAND_GLYPHS)]
    mark = (250.0, 250.0, 250.0) if luma < 140 else (20.0, 20.0, 24.0)
    lx, ly = category.logo
    r = 0.07 + 0.015 * (brand_index // len(_BRAND_GLYPHS) % 3)
    if glyph == "circle":
        draw(img, ("circle", "", lx, ly, r, -1), mark)
    elif glyph == "ring":
        draw(img, ("circle", "", lx, ly, r, 2), mark)
    elif glyph == "square":
        draw(img, ("rect", "", lx - r, ly - r, lx + r, ly + r, -1), mark)
    elif glyph == "triangle":
        draw(img, ("poly", "", [(lx, ly - r), (lx + r, ly + r), (lx - r, ly + r)]), mark)
    elif glyph == "diamond":
        draw(img, ("poly", "", [(lx, ly - r), (lx + r, ly), (lx, ly + r), (lx - r, ly)]), mark)
    else:
        draw(img, ("rect", "", lx - 1.4 * r, ly - 0.45 * r, lx + 1.4 * r, ly + 0.45 * r, -1), mark)
    small = np.asarray(img, np.float32)
    if big != size:
        small = cv2.resize(small, (size, size), interpolation=cv2.INTER_AREA)
    if noise_sigma > 0:
        small = small + rng.normal(0, noise_sigma, small.shape).astype(np.float32)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    cv2 = _cv2()
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise InvalidInputError("OpenCV could not encode a PNG image")
    return data.tobytes()


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 8.0) -> None:
    """Write RGB uint8 frames as an MJPG ``.avi`` (readable by ``cv2.VideoCapture``)."""
    cv2 = _cv2()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise InvalidInputError(f"OpenCV cannot write an MJPG video to {path}")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()


def _video_frames(
    category: Category,
    colour: str,
    material: str,
    brand: int,
    rng: np.random.Generator,
    textures: dict[str, np.ndarray],
    size: int,
    count: int,
    reverse: bool = False,
) -> list[np.ndarray]:
    base = random_pose(rng, 0.5)
    spin = float(rng.uniform(20, 40)) * (-1 if reverse else 1)
    zoom = float(rng.uniform(0.08, 0.18)) * (-1 if reverse else 1)
    frames = []
    for i in range(count):
        t = i / max(1, count - 1) - 0.5
        pose = Pose(
            base.angle + spin * t,
            base.scale * (1 + zoom * t),
            base.dx,
            base.dy,
            base.light + t,
            base.background,
        )
        frames.append(render_product(category, colour, material, brand, pose, rng, textures, size))
    return frames


# ---------------------------------------------------------------------------------------------
# Audio

_TIMBRE: dict[str, tuple[tuple[float, ...], tuple[float, ...], float, float]] = {
    # partial ratios, partial amplitudes, decay per second, noise share
    "metal": ((1.0, 2.76, 5.4, 8.93), (1.0, 0.6, 0.4, 0.25), 3.0, 0.0),
    "wood": ((1.0, 3.93, 9.2), (1.0, 0.35, 0.12), 14.0, 0.02),
    "ceramic": ((1.0, 2.32, 4.25), (1.0, 0.5, 0.3), 8.0, 0.0),
    "plastic": ((1.0, 3.0, 5.0, 7.0), (1.0, 0.33, 0.2, 0.14), 10.0, 0.01),
    "leather": ((1.0, 2.0, 3.0, 4.0, 5.0, 6.0), (1.0, 0.5, 0.33, 0.25, 0.2, 0.16), 7.0, 0.03),
    "fabric": ((1.0, 2.0), (1.0, 0.2), 5.0, 0.25),
}
_FABRICS = ("cotton", "denim", "wool", "silk", "linen", "canvas", "suede", "mesh")
_DEPARTMENT_BASE = {"Apparel": 330.0, "Footwear": 262.0, "Bags": 294.0, "Accessories": 392.0,
                    "Jewellery": 523.0, "Home": 220.0, "Electronics": 440.0}  # fmt: skip


def synth_jingle(
    category: Category,
    material: str,
    rng: np.random.Generator,
    seconds: float = 1.0,
    detune_cents: float = 0.0,
    noise: float = 0.004,
) -> np.ndarray:
    """A product sound: float32 mono 16 kHz in [-1, 1], melody by category, timbre by material."""
    n = int(SAMPLE_RATE * seconds)
    t_all = np.arange(n, dtype=np.float32) / SAMPLE_RATE
    ratios, amps, decay, noise_share = _TIMBRE["fabric" if material in _FABRICS else material]
    base = _DEPARTMENT_BASE[category.department] * 2 ** (detune_cents / 1200)
    out = np.zeros(n, np.float32)
    notes = category.motif
    step = n // len(notes)
    for k, semis in enumerate(notes):
        start = k * step
        length = n - start
        t = t_all[:length]
        f0 = base * 2 ** (semis / 12)
        attack = np.minimum(1.0, t / (0.03 if material in _FABRICS else 0.004))
        env = attack * np.exp(-decay * t)
        tone = np.zeros(length, np.float32)
        for r, a in zip(ratios, amps):
            if f0 * r < SAMPLE_RATE / 2:
                tone += a * np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 2 * np.pi)).astype(np.float32)
        if noise_share > 0:
            hiss = rng.standard_normal(length).astype(np.float32)
            hiss = np.convolve(hiss, np.ones(8, np.float32) / 8, mode="same")
            tone += noise_share * 3 * hiss
        out[start:] += (0.8**k) * tone * env
    out += noise * rng.standard_normal(n).astype(np.float32)
    peak = float(np.max(np.abs(out))) or 1.0
    return (out / peak * 0.8).astype(np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV of float samples in [-1, 1]."""
    pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# The catalogue


@dataclass(frozen=True)
class _Spec:
    index: int
    id: str
    category: Category
    colour: str
    material: str
    brand: int
    gender: str
    style: str
    has_video: bool
    has_audio: bool
    zh_first: bool
    detune: float


def _title_en(s: _Spec, template: int) -> str:
    cat, colour, material = s.category.name, s.colour.capitalize(), s.material.capitalize()
    brand = BRANDS[s.brand]
    gender = (
        "" if s.category.department in ("Home", "Electronics") else GENDERS[s.gender][0].capitalize() + " "
    )
    if template == 0:
        return f"{brand} {gender}{colour} {material} {cat}"
    if template == 1:
        return f"{colour} {material} {cat} by {brand}"
    if template == 2:
        return f"{brand} {s.style.capitalize()} {cat} in {colour}"
    return f"{brand} {gender}{s.style.capitalize()} {colour} {cat}"


def _title_zh(s: _Spec) -> str:
    gender = "" if s.category.department in ("Home", "Electronics") else GENDERS[s.gender][1]
    return f"{BRANDS[s.brand]} {gender}{_COLOUR[s.colour][1]}{MATERIALS[s.material]}{s.category.zh}"


def _specs(n: int, seed: int, options: SampleOptions) -> list[_Spec]:
    rng = random.Random(f"edgeshelf-sample-{seed}")
    width = max(5, len(str(n)))
    order = list(range(n))
    rng.shuffle(order)
    n_video = int(round(n * options.video_fraction))
    n_audio = int(round(n * options.audio_fraction))
    n_zh = int(round(n * options.chinese_first_fraction))
    video = set(order[:n_video])
    rng.shuffle(order)
    audio = set(order[:n_audio])
    rng.shuffle(order)
    zh = set(order[:n_zh])
    specs = []
    for i in range(n):
        # Cycle through the categories so that even a small catalogue has all of them.
        cat = CATEGORIES[i % len(CATEGORIES)] if i < len(CATEGORIES) else rng.choice(CATEGORIES)
        specs.append(
            _Spec(
                index=i,
                id=f"P{i + 1:0{width}d}",
                category=cat,
                colour=rng.choice(colours_for(cat)),
                material=rng.choice(cat.materials),
                brand=rng.randrange(len(BRANDS)),
                gender=rng.choice(cat.genders),
                style=rng.choice(STYLES),
                has_video=i in video,
                has_audio=i in audio,
                zh_first=i in zh,
                detune=rng.uniform(-40, 40),
            )
        )
    return specs


def _product(s: _Spec, rng: random.Random, popularity: float, root: Path) -> Product:
    title_en = _title_en(s, rng.randrange(4))
    title_zh = _title_zh(s)
    feature = rng.choice(_FEATURES[s.category.department])
    article = "An" if s.style[0] in "aeiou" else "A"
    description = f"{article} {s.style} {s.material} {s.category.name.lower()} in {s.colour} from {BRANDS[s.brand]}. {feature}"
    factor = _MATERIAL_PRICE.get(s.material, 1.0) * math.exp(rng.gauss(0, 0.35))
    price = math.floor(s.category.price * factor) + 0.99
    attributes = {
        "gender": s.gender,
        "colour": s.colour,
        "material": s.material,
        "brand": BRANDS[s.brand],
        "department": s.category.department,
        "title_zh": title_zh,
        "lang": "zh" if s.zh_first else "en",
    }
    if s.zh_first:
        attributes["title_en"] = title_en
    return Product(
        id=s.id,
        title=title_zh if s.zh_first else title_en,
        description=description,
        category=s.category.name,
        attributes=attributes,
        price=round(price, 2),
        popularity=popularity,
        image=root / "images" / f"{s.id}.png",
        video=(root / "videos" / f"{s.id}.avi") if s.has_video else None,
        audio=(root / "audio" / f"{s.id}.wav") if s.has_audio else None,
    )


def _grade(s: _Spec, t: _Spec, stated: Sequence[str]) -> int:
    """3: matches every stated attribute; 2: same category and colour; 1: same category."""
    if s.category is not t.category:
        return 0
    values = {
        "colour": (s.colour, t.colour),
        "material": (s.material, t.material),
        "brand": (s.brand, t.brand),
        "gender": (s.gender, t.gender),
    }
    if all(values[a][0] == values[a][1] for a in stated):
        return 3
    return 2 if s.colour == t.colour else 1


_PATTERNS = (
    ("colour",),
    ("colour", "material"),
    ("gender", "colour"),
    ("brand", "colour"),
    ("colour", "material", "gender"),
)


def _query_text_en(s: _Spec, stated: Sequence[str], rng: random.Random) -> str:
    cat = s.category.name.lower()
    parts = {"colour": s.colour, "material": s.material, "brand": BRANDS[s.brand].lower()}
    has_gender = "gender" in stated and s.category.department not in ("Home", "Electronics")
    gender_word = GENDERS[s.gender][0] if has_gender else ""
    words = [parts[a] for a in ("brand", "colour", "material") if a in stated]
    if has_gender and rng.random() < 0.5 and s.gender != "Unisex":
        return " ".join([*words, cat, "for", s.gender.lower()])
    return " ".join(w for w in [gender_word, *words, cat] if w)


def _query_text_zh(s: _Spec, stated: Sequence[str]) -> str:
    gender = (
        GENDERS[s.gender][1]
        if "gender" in stated and s.category.department not in ("Home", "Electronics")
        else ""
    )
    material = MATERIALS[s.material] if "material" in stated else ""
    return f"{gender}{_COLOUR[s.colour][1]}{material}{s.category.zh}"


def _sized(n: int, fraction: float, minimum: int, scale: float) -> int:
    return max(1, int(round(max(minimum, n * fraction) * scale)))


def generate_sample_catalogue(
    out: str | Path,
    seed: int = 0,
    products: int = 3000,
    *,
    options: SampleOptions = SampleOptions(),
    progress: bool = False,
    overwrite: bool = True,
) -> SampleCatalogueInfo:
    """Generate the demo catalogue into ``out`` (a new or empty folder, or an earlier sample).

    Byte-deterministic for a given ``seed``, ``products`` and ``options``. The folder is built
    aside and swapped in whole (atomic). ``overwrite=False`` refuses an existing sample folder;
    a non-empty folder that is not a sample catalogue is always refused.
    """
    started = time.perf_counter()
    if not isinstance(products, int) or isinstance(products, bool) or not 1 <= products <= 200_000:
        raise InvalidInputError(f"products must be an integer in [1, 200000], got {products!r}")
    options.validate()
    target = Path(out)
    if target.exists():
        if not target.is_dir():
            raise InvalidInputError(f"{target} exists and is not a folder; choose another --out")
        entries = list(target.iterdir())
        if entries:
            if not (target / "catalogue.json").is_file():
                raise InvalidInputError(
                    f"{target} is not empty and holds no sample catalogue (no catalogue.json); "
                    f"choose a new or empty folder for --out"
                )
            if not overwrite:
                raise InvalidInputError(
                    f"{target} already holds a sample catalogue; remove it or pass overwrite"
                )
    from tqdm import tqdm

    cv2 = _cv2()
    cv2.setNumThreads(1)  # determinism and fairness on small machines; the work here is tiny per call
    size = options.image_size
    specs = _specs(products, seed, options)
    text_rng = random.Random(f"edgeshelf-sample-text-{seed}")
    ranks = list(range(1, products + 1))
    text_rng.shuffle(ranks)
    textures = material_textures(seed)
    n_queries = {
        "clean": _sized(products, 0.1, 12, options.queries_scale),
        "zh": _sized(products, 1 / 30, 6, options.queries_scale),
        "image": _sized(products, 1 / 15, 10, options.queries_scale),
        "text_to_image": _sized(products, 1 / 30, 8, options.queries_scale),
        "video": _sized(products, 1 / 60, 4, options.queries_scale),
        "audio": _sized(products, 1 / 60, 4, options.queries_scale),
    }
    n_video = sum(s.has_video for s in specs)
    n_audio = sum(s.has_audio for s in specs)
    n_queries["video"] = min(n_queries["video"], n_video)
    n_queries["audio"] = min(n_queries["audio"], n_audio)
    total = products + n_video + n_audio + n_queries["image"] + n_queries["video"] + n_queries["audio"]
    bar = tqdm(total=total, desc="sample catalogue", unit="file", disable=not progress, leave=False)
    with atomic_directory(target) as staging:
        for sub in _MEDIA_DIRS:
            (staging / sub).mkdir()
        items: list[Product] = []
        for s in specs:
            items.append(_product(s, text_rng, round(1000.0 / ranks[s.index] ** 1.07, 6), staging))
            img_rng = np.random.default_rng([seed, s.index, 1])
            pose = random_pose(img_rng)
            rgb = render_product(s.category, s.colour, s.material, s.brand, pose, img_rng, textures, size)
            (staging / "images" / f"{s.id}.png").write_bytes(encode_png(rgb))
            bar.update(1)
            if s.has_video:
                v_rng = np.random.default_rng([seed, s.index, 2])
                count = int(v_rng.integers(options.video_frames[0], options.video_frames[1] + 1))
                frames = _video_frames(
                    s.category, s.colour, s.material, s.brand, v_rng, textures, size, count
                )
                write_video(staging / "videos" / f"{s.id}.avi", frames)
                bar.update(1)
            if s.has_audio:
                a_rng = np.random.default_rng([seed, s.index, 3])
                samples = synth_jingle(s.category, s.material, a_rng, options.audio_seconds, s.detune)
                (staging / "audio" / f"{s.id}.wav").write_bytes(wav_bytes(samples))
                bar.update(1)
        queries = _make_queries(specs, seed, n_queries, staging, textures, options, bar)
        bar.close()
        write_catalogue(staging / "products.csv", items)
        write_queries(staging / "queries.jsonl", queries)
        for sub in _MEDIA_DIRS:
            if not any((staging / sub).iterdir()):
                shutil.rmtree(staging / sub)
        kinds: dict[str, int] = {}
        for q in queries:
            kinds[q.kind] = kinds.get(q.kind, 0) + 1
        counts = {
            "products": products,
            "images": products,
            "videos": n_video,
            "audio": n_audio,
            "chinese_first": sum(s.zh_first for s in specs),
            "categories": len({s.category.name for s in specs}),
            "colours": len({s.colour for s in specs}),
            "materials": len({s.material for s in specs}),
            "brands": len({s.brand for s in specs}),
            "queries": kinds,
        }
        from edgeshelf import __version__

        manifest = {
            "format": "edgeshelf-sample-catalogue",
            "generator_version": GENERATOR_VERSION,
            "edgeshelf_version": __version__,
            "seed": seed,
            "options": {**asdict(options), "products": products},
            "counts": counts,
            "files": {
                "products": "products.csv",
                "queries": "queries.jsonl",
                **{sub: f"{sub}/" for sub in _MEDIA_DIRS if (staging / sub).is_dir()},
            },
            "media": {
                "image": f"PNG RGB {size}x{size}",
                "video": "MJPG .avi, RGB frames",
                "audio": f"WAV 16-bit PCM mono {SAMPLE_RATE} Hz, {options.audio_seconds} s",
            },
            "relevance": {
                "3": "matches everything the query states (media queries: the very product)",
                "2": "same category and colour (audio queries: category and material)",
                "1": "same category",
            },
        }
        atomic_write_text(
            staging / "catalogue.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        )
    return SampleCatalogueInfo(target, seed, products, counts, time.perf_counter() - started)


def _make_queries(
    specs: list[_Spec],
    seed: int,
    n: dict[str, int],
    root: Path,
    textures: dict[str, np.ndarray],
    options: SampleOptions,
    bar: Any,
) -> list[LabelledQuery]:
    rng = random.Random(f"edgeshelf-sample-queries-{seed}")
    by_cat: dict[str, list[_Spec]] = {}
    for s in specs:
        by_cat.setdefault(s.category.name, []).append(s)
    noise = QueryNoise(seed)
    size = options.image_size
    out: list[LabelledQuery] = []

    def relevant(
        target: _Spec, stated: Sequence[str], grade: Callable[[_Spec, _Spec], int] | None = None
    ) -> dict[str, int]:
        rel = {}
        for other in by_cat[target.category.name]:
            g = grade(other, target) if grade else _grade(other, target, stated)
            if g:
                rel[other.id] = g
        return rel

    def media_grade(other: _Spec, target: _Spec) -> int:
        if other is target:
            return 3
        return 2 if other.colour == target.colour else 1

    def audio_grade(other: _Spec, target: _Spec) -> int:
        if other is target:
            return 3
        return 2 if other.material == target.material else 1

    def pick(count: int, pool: Sequence[_Spec]) -> list[_Spec]:
        pool = list(pool)
        return rng.sample(pool, min(count, len(pool)))

    width = 4
    clean: list[LabelledQuery] = []
    for k, s in enumerate(pick(n["clean"], specs), start=1):
        stated = rng.choice(_PATTERNS)
        text = _query_text_en(s, stated, rng)
        clean.append(
            LabelledQuery(
                f"clean-{k:0{width}d}",
                "clean",
                text=text,
                relevant=relevant(s, stated),
                meta={"source": s.id, "stated": "+".join(("category", *stated))},
            )
        )
    out += clean
    for k, q in enumerate(clean, start=1):
        noisy = noise.noisy(q.text or "", key=q.id)
        out.append(
            LabelledQuery(
                f"noisy-{k:0{width}d}",
                "noisy",
                text=noisy,
                relevant=dict(q.relevant),
                meta={**q.meta, "clean": q.text or ""},
            )
        )
    for k, s in enumerate(pick(n["zh"], specs), start=1):
        stated = rng.choice((("colour",), ("colour", "material"), ("gender", "colour")))
        out.append(
            LabelledQuery(
                f"zh-{k:0{width}d}",
                "zh",
                text=_query_text_zh(s, stated),
                relevant=relevant(s, stated),
                meta={"source": s.id, "stated": "+".join(("category", *stated))},
            )
        )
    for k, s in enumerate(pick(n["image"], specs), start=1):
        q_rng = np.random.default_rng([seed, s.index, 11])
        pose = random_pose(q_rng, 1.3)
        rgb = render_product(
            s.category, s.colour, s.material, s.brand, pose, q_rng, textures, size, noise_sigma=4.0
        )
        if q_rng.random() < 0.5:
            rgb = _cv2().GaussianBlur(rgb, (3, 3), 0.8)
        name = f"image-{k:0{width}d}.png"
        (root / "query_images" / name).write_bytes(encode_png(rgb))
        bar.update(1)
        out.append(
            LabelledQuery(
                f"image-{k:0{width}d}",
                "image",
                image=root / "query_images" / name,
                relevant=relevant(s, (), media_grade),
                meta={"source": s.id},
            )
        )
    for k, s in enumerate(pick(n["text_to_image"], specs), start=1):
        text = f"{s.colour} {s.category.name.lower()}"
        out.append(
            LabelledQuery(
                f"t2i-{k:0{width}d}",
                "text_to_image",
                text=text,
                relevant=relevant(s, ("colour",)),
                meta={"source": s.id, "corpus": "image_only"},
            )
        )
    for k, s in enumerate(pick(n["video"], [s for s in specs if s.has_video]), start=1):
        q_rng = np.random.default_rng([seed, s.index, 12])
        count = int(q_rng.integers(options.video_frames[0], options.video_frames[1] + 1))
        frames = _video_frames(
            s.category, s.colour, s.material, s.brand, q_rng, textures, size, count, reverse=True
        )
        name = f"video-{k:0{width}d}.avi"
        write_video(root / "query_videos" / name, frames)
        bar.update(1)
        out.append(
            LabelledQuery(
                f"video-{k:0{width}d}",
                "video",
                video=root / "query_videos" / name,
                relevant=relevant(s, (), media_grade),
                meta={"source": s.id},
            )
        )
    for k, s in enumerate(pick(n["audio"], [s for s in specs if s.has_audio]), start=1):
        q_rng = np.random.default_rng([seed, s.index, 13])
        samples = synth_jingle(s.category, s.material, q_rng, options.audio_seconds, s.detune, noise=0.02)
        samples = np.roll(samples, int(q_rng.integers(0, SAMPLE_RATE // 20))) * float(q_rng.uniform(0.6, 1.0))
        name = f"audio-{k:0{width}d}.wav"
        (root / "query_audio" / name).write_bytes(wav_bytes(samples))
        bar.update(1)
        out.append(
            LabelledQuery(
                f"audio-{k:0{width}d}",
                "audio",
                audio=root / "query_audio" / name,
                relevant=relevant(s, (), audio_grade),
                meta={"source": s.id},
            )
        )
    return out


__all__ = [
    "BRANDS",
    "CATEGORIES",
    "COLOURS",
    "GENERATOR_VERSION",
    "MATERIALS",
    "Category",
    "Pose",
    "SampleCatalogueInfo",
    "SampleOptions",
    "colours_for",
    "encode_png",
    "generate_sample_catalogue",
    "material_textures",
    "render_product",
    "synth_jingle",
    "wav_bytes",
    "write_video",
]

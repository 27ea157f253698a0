"""A minimal device app: embed a typed query on the device and search the cached shard.

    python examples/minimal_app.py BUNDLE SHARD "red cotton dress" [K]

Uses only the public API of ``edgeshelf.sdk`` (no TensorFlow needed).
"""

import sys

from edgeshelf.sdk import EncoderOptions, QueryEncoder, Shard


def main(bundle: str, shard_path: str, text: str, k: int = 5) -> None:
    with QueryEncoder.open(bundle, EncoderOptions(num_threads=1)) as encoder, Shard.open(shard_path) as shard:
        embedding = encoder.embed(text=text)
        result = shard.search(embedding, k)
        for rank, hit in enumerate(result.hits, 1):
            print(f"{rank}. {hit.product_id}  {hit.title}  ({hit.score:.3f})")
        print(f"embed {sum(embedding.timings_ms.values()):.1f} ms, search {result.latency_ms:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else 5)

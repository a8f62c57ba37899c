"""Index a folder of images and search it with words, offline (the EfficientNet-Lite0 label-token encoder).

    python examples/index_folder.py ~/Pictures --index runs/photos-index cat "sports car"
    python examples/index_folder.py                # scikit-image's sample photos, copied to a temp folder

The encoder turns each image into the tokens of its likely ImageNet class names; a query's words match
them. Indexing is incremental: a second run skips unchanged files (the manifest in the index directory).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from pathlib import Path

import lsr

SAMPLES = ["astronaut.png", "chelsea.png", "coffee.png", "horse.png", "motorcycle_left.png", "rocket.jpg"]


def sample_photos(folder: Path) -> Path:
    """Copy a few of scikit-image's bundled sample photos (a cat, a cup of coffee, a rocket...) to `folder`."""
    import skimage

    source = Path(skimage.__file__).parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        shutil.copy(source / name, folder / name)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="a folder of images (default: scikit-image's sample photos)")
    parser.add_argument("queries", nargs="*", default=["cat", "coffee cup", "missile", "helmet"],
                        help="queries to run, one per argument")
    parser.add_argument("--index", help="the index address (default: a temporary directory)")
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()

    with contextlib.ExitStack() as cleanup:
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="lsr-example-")))
        folder = Path(args.folder) if args.folder else sample_photos(work / "photos")
        address = args.index or str(work / "index")

        for run in ("first run", "second run"):  # the second finds every file unchanged
            done = lsr.index_folder(folder, address)  # default encoder: efficientnet-labels (offline)
            print(f"{run}: {done.report.summary()}")

        searcher = lsr.open_folder_searcher(address)  # the encoder recorded when the folder was indexed
        for query in args.queries:
            hits = searcher.search(query, k=args.k)
            found = ", ".join(f"{h.id} ({h.score:.2f}: {' '.join(t for t, _ in h.top_tokens(2))})" for h in hits)
            print(f"{query!r}: {found or 'no match'}")


if __name__ == "__main__":
    main()

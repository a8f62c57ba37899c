"""Search an index from Python: open it, load the encoder that built it, search with a scoring mode.

    python examples/search_index.py --index runs/demo/index --model runs/demo/model "a dog catching a frisbee"
    python examples/search_index.py --index opensearch://127.0.0.1:9200/f30k --model runs/demo/model "two dogs"
    python examples/search_index.py "a dog on grass"      # no --index: a tiny random model and index, offline

`--mode` takes the string shorthands (`sparse`, `rerank:dense:100`, `hybrid:min_max:0.3`, `hybrid:rrf`);
in code the same modes are typed values, `lsr.Rerank(...)` and `lsr.Hybrid(...)`.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile

import lsr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", nargs="?", default="a dog catching a frisbee", help="the query words (one query)")
    parser.add_argument("--index", help="an index address: a directory or opensearch://HOST:PORT/NAME "
                                        "(default: a tiny random index in a temporary directory)")
    parser.add_argument("--model", help="the D2S model directory the index was built with")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--mode", default=None, help="one more scoring mode to show, as a shorthand")
    args = parser.parse_args()
    with contextlib.ExitStack() as cleanup:
        if args.index is None or args.model is None:
            from make_tiny import build  # examples/make_tiny.py, beside this script

            args.model, args.index = map(str, build(cleanup.enter_context(tempfile.TemporaryDirectory())))
            print("(a tiny random model and index: the rankings mean nothing)")
        search(args)


def search(args: argparse.Namespace) -> None:
    index = lsr.open_index(args.index)                  # embedded (a directory) or opensearch://...
    encoder = lsr.load_encoder(args.model)              # the model records its frozen dense encoder
    searcher = lsr.Searcher(index, encoder)

    modes = {"sparse": None,                                          # the sparse dot product
             "rerank": lsr.Rerank("dense", candidates=100),           # sparse top 100, re-scored by the dense model
             "hybrid": lsr.Hybrid("min_max", weight=0.3, depth=100)}  # sparse and dense fused
    if args.mode:
        modes[args.mode] = args.mode                                  # a string shorthand works too
    for name, mode in modes.items():
        print(f"== {name}: {args.query!r}")
        for hit in searcher.search(args.query, k=args.k, mode=mode):
            tokens = ", ".join(f"{t} {w:.2f}" for t, w in hit.top_tokens(3))
            print(f"{hit.id:>10}  {hit.score:8.3f}  {hit.metadata.get('caption', '')!r:50}  [{tokens}]")


if __name__ == "__main__":
    main()

"""Evaluate a model and compare two systems: TREC runs of two scorers on one split, then paired tests.

    python examples/evaluate_compare.py --model runs/demo/model --split proxy:f30k/test
    python examples/evaluate_compare.py            # a tiny random model on a built-in toy split, offline

System A is the model's sparse search; system B is the same sparse candidates re-ranked by the frozen
dense model (`lsr.Rerank("dense")`). Both rank every caption's image (text -> image); the runs and qrels
are plain TREC files any tool reads (trec_eval, ir-measures, ranx). `lsr compare` gives the same table.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

import lsr
from lsr.eval.significance import compare_runs, format_comparisons
from lsr.eval.trec import write_hits_run, write_qrels

# A toy caption collection: each image is described by its first caption; the others are its queries.
TOY = [
    ["a dog catches a frisbee in a park", "a brown dog jumps for a disc", "a puppy playing fetch on grass"],
    ["two men play guitars on a stage", "musicians performing a concert", "a band plays live music"],
    ["a child in a pink dress climbs stairs", "a little girl walking up steps", "a kid on a staircase"],
    ["a black cat sleeps on a sofa", "a cat napping on the couch", "a sleepy kitten indoors"],
    ["a surfer rides a large wave", "a man surfing in the ocean", "someone on a surfboard at sea"],
    ["a red bus stops at a station", "a double decker bus in the city", "passengers boarding a bus"],
]


def toy_split(encoder) -> "lsr.data.split.PairedSplit":
    """The toy collection as a caption-proxy split: documents and queries are the dense model's vectors."""
    from lsr.data.split import PairedSplit

    docs = [captions[0] for captions in TOY]
    queries = [(i, text) for i, captions in enumerate(TOY) for text in captions[1:]]
    texts = [text for _, text in queries]
    return PairedSplit(name="toy", doc_ids=[f"img{i}" for i in range(len(TOY))],
                       doc_emb=encoder.dense.encode_texts(docs), query_ids=[f"q{j}" for j in range(len(queries))],
                       query_emb=encoder.dense.encode_texts(texts), query_doc=[i for i, _ in queries],
                       query_tokens=encoder.vocab.token_ids(texts), doc_texts=docs, query_texts=texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a D2S model directory (default: a tiny random model, offline)")
    parser.add_argument("--split", help="a split such as proxy:f30k/test (default: the built-in toy split)")
    parser.add_argument("--out", help="where to write the index, runs and qrels (default: a temporary directory)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--samples", type=int, default=2000, help="bootstrap resamples")
    args = parser.parse_args()
    with contextlib.ExitStack() as cleanup:
        temporary = args.out is None or args.model is None
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory())) if temporary else None
        out = Path(args.out) if args.out else work
        if args.model is None:
            from make_tiny import build_model  # examples/make_tiny.py, beside this script

            args.model = str(build_model(work / "model"))
            print("(a tiny random model: the figures mean nothing)")
        evaluate(args, out)


def evaluate(args: argparse.Namespace, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    encoder = lsr.load_encoder(args.model)
    if args.split:
        from lsr.data.sources import load_split_spec

        split = load_split_spec(args.split, encoder.vocab)
    else:
        split = toy_split(encoder)
    # Index the split's documents with their dense vectors (for the re-ranking system).
    indexed = lsr.index_split(out / "index", encoder, split, dense=True, overwrite=True)
    print(f"indexed {indexed.report.indexed} documents of {indexed.source} (mean non-zeros {indexed.mean_nnz:.0f})")
    searcher = lsr.Searcher(indexed.index, encoder)

    ks = [k for k in args.k if k <= len(split.doc_ids)]  # R@10 of six documents is always 100
    if ks != args.k:
        print(f"(R@K for K <= {len(split.doc_ids)}, the number of documents: K = {' '.join(map(str, ks))})")
    depth = max(ks)
    systems = {"sparse": None, "rerank": lsr.Rerank("dense", candidates=max(100, depth))}
    runs = {}
    for name, mode in systems.items():
        hits = searcher.batch_search(split.query_texts, k=depth, mode=mode)
        runs[name] = out / f"{split.name}.{name}.t2i.run"
        write_hits_run(runs[name], hits, split.query_ids, tag=name)
    qrels = out / f"{split.name}.t2i.qrels"
    write_qrels(qrels, split.qrels_t2i())
    print(f"wrote {runs['sparse']}, {runs['rerank']} and {qrels}")

    rows = compare_runs([runs["sparse"]], runs["rerank"], qrels, ks, samples=args.samples)
    print(f"A: sparse, B: sparse + dense re-ranking; {rows[0].queries} queries")
    print(format_comparisons(rows))
    print(f"the same table from the command line:\n  lsr compare --qrels {qrels} --run {runs['sparse']} "
          f"--against {runs['rerank']} --k {' '.join(map(str, ks))} --samples {args.samples}")


if __name__ == "__main__":
    main()

"""Command line: `lsr demo | train | eval | index | search | export | reproduce | ...`.

Every command runs offline: models and vocabularies come from local directories.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lsr.cli.modes import add_search_mode_args, mode_options
from lsr.cli.train import add_data_args, add_train_args, cmd_train, train_config
from lsr.cli.backends import add_backend_args, describe, open_backend, search_options

DEMO_QUERIES = ("a dog catching a frisbee", "two men playing guitars on a stage", "a little girl in a pink dress",
                "people riding bikes down a city street")


def cmd_demo(args) -> int:
    from lsr.d2s.train import TrainConfig
    from lsr.app.training import ExperimentConfig, report_text, run_experiment

    objective = {"objective": args.objective} if args.objective else {}
    cfg = ExperimentConfig(out_dir=args.out, train_images=args.train_images,
                           train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, **objective),
                           procrustes=True)
    print(f"Demo on the caption proxy ({cfg.train.objective} objective): {args.train_images} Flickr30k train images "
          f"({4 * args.train_images} caption pairs), {args.epochs} epochs; evaluated on Flickr30k 1k test.")
    report = run_experiment(cfg)
    print(report_text(report))
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.encoders.sparse import D2SEncoder
    from lsr.search import SparseSearcher

    model_dir = Path(args.out) / "model"
    index_args = argparse.Namespace(backend="embedded", index=str(Path(args.out) / "index"), model=model_dir,
                                    split="proxy:f30k/test", dense=True)  # dense: re-ranking and hybrid work
    _build_index(index_args)
    searcher = SparseSearcher(EmbeddedIndex.load(index_args.index), D2SEncoder.from_pretrained(model_dir))
    _run_queries(searcher, DEMO_QUERIES, k=3, expand=True)
    return 0


def _build_index(args, jsonl: Path | None = None) -> None:
    from lsr.data.sources import load_split_spec
    from lsr.encoders.sparse import D2SEncoder
    from lsr.vocab import Vocabulary

    vocab = Vocabulary()
    split = load_split_spec(args.split, vocab)
    encoder = D2SEncoder.from_pretrained(args.model, vocab=vocab)
    docs = encoder.encode_dense(split.doc_emb)
    if getattr(args, "sets", None):
        from lsr.cli.modes import index_sets

        return index_sets(args, split, encoder, vocab)
    args.dense_dim = split.dense_dim if getattr(args, "dense", False) else None  # an OpenSearch index's knn field
    index = open_backend(args, vocab, "create")
    meta = [{"caption": t} for t in split.doc_texts] if split.doc_texts else None
    dense = encoder.dense_vectors(split.doc_emb) if getattr(args, "dense", False) else None
    report = index.index(split.doc_ids, docs, meta, dense=dense)
    index.record_provenance(encoder.provenance())
    index.commit()
    s = docs.sparsity()
    print(f"indexed {report.indexed} documents of {split.name} into {describe(args)} (mean nnz {s['mean_nnz']:.1f}); "
          f"{len(report.failed)} failed" + (f", e.g. {next(iter(report.failed.items()))}" if report.failed else ""))
    if getattr(args, "tokens", None):
        from lsr.search.tokens import TokenStore

        if not split.doc_texts:
            raise ValueError(f"{split.name} has no document texts to take token vectors from; leave out --tokens.")
        store = TokenStore.build(split.doc_ids, encoder.encode_query_tokens(split.doc_texts))
        store.save(args.tokens)
        print(f"wrote the documents' token vectors to {args.tokens} ({store.nbytes:,} bytes)")
    if jsonl is not None:
        from lsr.exchange import write_jsonl

        write_jsonl(jsonl, split.doc_ids, docs, vocab, contents=split.doc_texts)
        print(f"exported {len(docs)} vectors to {jsonl}")


def _run_queries(searcher, queries, k: int, expand: bool, **search_options) -> None:
    from lsr.encoders.sparse import InferenceFreeEncoder

    for text in queries:
        q = searcher.encode_query(text, expand)
        kind = "inference-free" if isinstance(searcher.encoder, InferenceFreeEncoder) else \
            "expanded" if expand else "no expansion"
        print(f"\nquery: {text!r}  ({kind}, {q.nnz} terms: "
              + ", ".join(f"{t} {w:.2f}" for t, w in searcher.encoder.decode(q, 8)) + ")")
        for rank, hit in enumerate(searcher.search(text, k=k, expand=expand, **search_options), 1):
            tokens = ", ".join(f"{t} {c:.2f}" for t, c in searcher.top_tokens(hit, 5))
            caption = hit.metadata.get("caption") or hit.metadata.get("path") or ""
            print(f"  {rank}. {hit.id} score {hit.score:.3f}  [{tokens}]  {caption}")


def cmd_index(args) -> int:
    _build_index(args, Path(args.jsonl) if args.jsonl else None)
    return 0


def cmd_search(args) -> int:
    if args.encoder is not None:
        from lsr.cli.images import search_images

        return search_images(args)
    if args.model is None and not args.server_side:
        print("error: --model is required (or --encoder NAME for an image index)", file=sys.stderr)
        return 2
    if args.server_side:
        return _search_server_side(args)
    from lsr.encoders.sparse import D2SEncoder
    from lsr.search import SparseSearcher

    encoder = D2SEncoder.from_pretrained(args.model)  # a wrong model path is the commonest mistake: check it first
    if args.dense_encoder or not encoder.model.config.dense_encoder:  # older models record none: MiniLM, as before
        from lsr.encoders.registry import load_dense_encoder

        dense = load_dense_encoder(args.dense_encoder or "minilm", args.dense_encoder_path, args.device)
        encoder = D2SEncoder(encoder.model, dense)
    if args.set_mode:
        from lsr.cli.modes import search_sets

        return search_sets(args, encoder)
    backend = open_backend(args, encoder.vocab, missing_hint=f"build one with `lsr index --index {args.index}`")
    searcher = SparseSearcher(backend, encoder, **mode_resources(args))
    _run_queries(searcher, args.query, k=args.k, expand=not args.no_expansion, **search_options(args),
                 **mode_options(args))
    return 0


def _search_server_side(args) -> int:
    """`lsr search --backend opensearch --server-side`: OpenSearch encodes the words (registered model)."""
    if args.backend != "opensearch":
        raise ValueError("--server-side needs --backend opensearch (and `lsr opensearch register`).")
    backend = open_backend(args, None, missing_hint=f"build one with `lsr index --index {args.index}`")
    for text in args.query:
        print(f"\nquery: {text!r}  (encoded by OpenSearch with its registered model)")
        for rank, hit in enumerate(backend.search_text(text, k=args.k, mode=args.mode), 1):
            caption = hit.metadata.get("caption") or hit.metadata.get("path") or ""
            print(f"  {rank}. {hit.id} score {hit.score:.3f}  {caption}")
    return 0


def cmd_export(args) -> int:
    from lsr.d2s.model import D2SModel
    from lsr.exchange import write_jsonl, write_queries_tsv
    from lsr.data.sources import load_split_spec
    from lsr.vocab import Vocabulary

    vocab = Vocabulary()
    split = load_split_spec(args.split, vocab)
    model = D2SModel.from_pretrained(args.model)
    out = Path(args.out)
    write_jsonl(out / "docs.jsonl", split.doc_ids, model.encode(split.doc_emb), vocab, split.doc_texts,
                naming=args.naming, quantize=args.quantize)
    tokens = None if args.expand_queries else split.query_tokens
    write_jsonl(out / "queries.jsonl", split.query_ids, model.encode(split.query_emb, tokens), vocab,
                split.query_texts, naming=args.naming, quantize=args.quantize)
    if split.query_texts:
        write_queries_tsv(out / "queries.tsv", split.query_ids, split.query_texts)
    print(f"wrote {out}/docs.jsonl and {out}/queries.jsonl ({args.naming} token names)")
    return 0


def cmd_reproduce(args) -> int:
    from lsr.reproduce import load_rows, reproduce

    if args.list:
        for row in load_rows():
            print(f"{row['name']:<32} {row.get('command') or '(quoted, not measured here)'}")
        return 0
    outcomes = reproduce(args.only, check_only=args.check)
    for o in outcomes:
        print(f"{o.status:<9} {o.name:<32} {o.detail}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("OK", "FAIL", "NO SOURCE")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["FAIL"] else 0


def mode_resources(args) -> dict:
    """What --rerank late / itm need beside the index: token vectors, a matching head."""
    out = {}
    if args.tokens:
        from lsr.search.tokens import TokenStore

        out["tokens"] = TokenStore.load(args.tokens)
    if args.itm_model:
        from lsr.search.itm import ITMScorer

        out["itm"] = ITMScorer.from_pretrained(args.itm_model)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsr", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train on a caption-proxy subset, evaluate, index and query (offline)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--train-images", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128,
                   help="pairs per step (smaller than the full run's 512: more updates on the small subset)")
    p.add_argument("--objective", choices=("d2s", "joint"), default=None,
                   help="training objective (default: lsr train's)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train D2S, keep the best dev checkpoint, evaluate all scorers")
    p.add_argument("--out", default="runs/d2s")
    p.add_argument("--init", choices=("tied", "mlm", "random"), default="tied",
                   help="projector init: tied input word embeddings (default) or an MLM head")
    p.add_argument("--init-dir", default=None, help="local model directory for the init (default: offline MiniLM)")
    p.add_argument("--hidden-dim", type=int, default=None,
                   help="the model's hidden width (default: the init's, 384 for MiniLM), tied to the word "
                        "embeddings' principal subspace; a narrower model trains faster, with --lr scaled by 384 / "
                        "width")
    p.add_argument("--no-procrustes", action="store_true", help="skip the MiniLM->GloVe mapping baselines")
    p.add_argument("--no-baselines", action="store_true", help="skip the untrained-projection row")
    p.add_argument("--max-flops", type=float, default=5.0,
                   help="after training, choose on the dev split the smallest static-pruning threshold "
                        "(min_weight, saved with the model) whose FLOPs stay within this budget; 0 keeps all weights")
    g = p.add_argument_group("inference-free queries")
    g.add_argument("--query-encoder", choices=("d2s", "inference-free"), default="d2s",
                   help="inference-free: queries are their own tokens weighted by a learned table (no encoder "
                        "at query time); documents stay D2S vectors")
    g.add_argument("--documents", default=None, metavar="MODEL_DIR",
                   help="with inference-free: start the documents from this D2S model (default: a new projection)")
    g.add_argument("--freeze-documents", action="store_true",
                   help="with --documents: learn only the query table against the model's frozen documents")
    g.add_argument("--lr-table", type=float, default=1e-2, help="learning rate of the query table")
    add_data_args(p, ("proxy:f30k/test", "proxy:coco/test"))
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("index", help="encode a split's documents and index them (embedded or OpenSearch)")
    p.add_argument("--model", required=True)
    p.add_argument("--split", default="proxy:f30k/test", metavar="SOURCE/SPLIT")
    add_backend_args(p, searching=False)
    p.add_argument("--jsonl", default=None, help="also export the vectors as JSON lines")
    p.add_argument("--dense", action="store_true",
                   help="keep dense vectors beside the sparse ones (re-ranking, hybrid search): the frozen model's, or "
                        "the jointly trained dense head's when the model has one")
    p.add_argument("--tokens", default=None, metavar="DIR",
                   help="write the documents' token vectors here, for --rerank late")
    p.add_argument("--sets", type=int, default=None, metavar="N",
                   help="index set-valued documents instead: each the set of its first N captions (caption proxy)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="keyword-style text search over an index")
    p.add_argument("query", nargs="+")
    p.add_argument("--model", default=None, help="D2S model directory (not needed with --encoder efficientnet-labels)")
    p.add_argument("--encoder", default=None, help="search an image index built by `lsr index-images` with this encoder")
    add_backend_args(p, searching=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--no-expansion", action="store_true", help="keep only the query's own tokens")
    p.add_argument("--server-side", action="store_true",
                   help="OpenSearch encodes the words itself (neural_sparse query_text; `lsr opensearch register`)")
    p.add_argument("--dense-encoder", default=None,
                   help="query dense encoder (default: the one the model records, else minilm)")
    p.add_argument("--dense-encoder-path", default=None, help="its local weights (default: minilm's offline package)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    add_search_mode_args(p)
    p.add_argument("--tokens", default=None, metavar="DIR", help="document token vectors for --rerank late")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="export document and query vectors as pyserini/Anserini JSON lines")
    p.add_argument("--model", required=True)
    p.add_argument("--split", default="proxy:f30k/test", metavar="SOURCE/SPLIT")
    p.add_argument("--out", required=True)
    p.add_argument("--naming", choices=("wordpiece", "id"), default="wordpiece")
    p.add_argument("--quantize", type=int, default=None, help="write integer impacts round(w*Q)")
    p.add_argument("--expand-queries", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reproduce", help="check the README's results rows against results/reproduce.yaml")
    p.add_argument("--check", action="store_true", help="only compare the committed records (runs nothing)")
    p.add_argument("--only", nargs="+", default=(), metavar="NAME", help="these rows only")
    p.add_argument("--list", action="store_true", help="list the rows and their commands")
    p.set_defaults(func=cmd_reproduce)

    from lsr.cli.evaluate import add_parser as add_eval_parser
    add_eval_parser(sub)
    from lsr.cli.serve import add_parser as add_serve_parser
    add_serve_parser(sub)
    from lsr.cli.opensearch import add_parser as add_opensearch_parser
    add_opensearch_parser(sub)
    from lsr.cli.images import add_parser as add_images_parser
    add_images_parser(sub)
    from lsr.cli.encode import add_parser as add_encode_parser
    add_encode_parser(sub)
    from lsr.cli.compare import add_parser as add_compare_parser
    add_compare_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("lsr").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, ConnectionError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`lsr index | search | export`: a caption split into an index, words against it, vectors out as JSON lines.

Each command parses its flags into the application layer's values (`IndexSpec`, `EncoderSpec`, a scoring
mode) and calls `lsr.app`; what it prints is all it adds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lsr.cli.backends import (add_backend_args, add_query_args, connection_for, index_spec, open_index_from_args,
                              queries, retrieval)
from lsr.errors import InvalidInputError

def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="encode a split's documents and index them (or index a JSON-lines vector file)")
    p.add_argument("--model", default=None, help="D2S model directory (encodes --split)")
    p.add_argument("--split", default="proxy:f30k/test", metavar="SOURCE/SPLIT")
    p.add_argument("--vectors", default=None, metavar="FILE.jsonl",
                   help="index these ready-made vectors instead (pyserini JsonVectorCollection, as `lsr export` writes)")
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
    add_query_args(p)
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
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="export document and query vectors as pyserini/Anserini JSON lines")
    p.add_argument("--model", required=True)
    p.add_argument("--split", default="proxy:f30k/test", metavar="SOURCE/SPLIT")
    p.add_argument("--out", required=True)
    p.add_argument("--naming", choices=("wordpiece", "id"), default="wordpiece")
    p.add_argument("--quantize", type=int, default=None, help="write integer impacts round(w*Q)")
    p.add_argument("--expand-queries", action="store_true")
    p.set_defaults(func=cmd_export)


def add_search_mode_args(p: argparse.ArgumentParser) -> None:
    """The scoring-mode flags (`lsr.search.modes`): two-stage, hybrid, or a set index's aggregation."""
    g = p.add_argument_group("scoring modes (one per search)")
    g.add_argument("--rerank", choices=("dense", "late", "itm"), default=None,
                   help="two-stage: re-score the sparse top --candidates (dense needs an index built with --dense, "
                        "late --tokens, itm --itm-model)")
    g.add_argument("--candidates", type=int, default=100, help="stage-1 candidates for --rerank")
    g.add_argument("--hybrid", default=None, metavar="SPEC",
                   help="fuse sparse and dense: rrf, min_max[:W], l2[:W], z_score[:W] (W: the sparse weight)")
    g.add_argument("--depth", type=int, default=100, help="results per part for --hybrid")
    g.add_argument("--tokens", default=None, metavar="DIR", help="document token vectors for --rerank late")
    g.add_argument("--itm-model", default=None, help="local BLIP ITM model directory for --rerank itm")
    g.add_argument("--set-mode", choices=("max", "sum", "avg"), default=None,
                   help="search a set index (lsr index --sets N), member scores aggregated this way")
    g.add_argument("--query-set", action="store_true",
                   help="with --set-mode: the queries are phrasings of one query, their set scores summed")


def scoring_mode(args: argparse.Namespace):
    """The typed scoring mode the flags name (None: the sparse dot product)."""
    from dataclasses import replace

    from lsr.search.modes import Rerank, SetScoring, parse_mode

    chosen = [flag for flag in ("rerank", "hybrid", "set_mode") if getattr(args, flag, None) is not None]
    if len(chosen) > 1:
        raise InvalidInputError(f"choose one scoring mode per search, not {' and '.join(chosen)}")
    if args.rerank is not None:
        return Rerank(args.rerank, args.candidates)
    if args.hybrid is not None:
        return replace(parse_mode(f"hybrid:{args.hybrid}"), depth=args.depth)
    if args.set_mode is not None:
        return SetScoring(args.set_mode)
    return None


def cmd_index(args: argparse.Namespace) -> int:
    from lsr.app.indexing import index_jsonl, index_split
    from lsr.app.open import load_encoder
    from lsr.app.specs import NewIndex

    spec = index_spec(args)
    if args.vectors is not None:
        if args.model or args.dense or args.sets or args.tokens or args.jsonl:
            raise InvalidInputError("--vectors indexes ready-made vectors: leave out --model, --dense, --sets, --tokens "
                                    "and --jsonl.")
        result = index_jsonl(spec, args.vectors, overwrite=args.overwrite, connection=connection_for(args, spec))
        print(f"indexed {result.report.indexed} documents of {result.source} into {spec.describe()} (mean nnz "
              f"{result.mean_nnz:.1f}); {len(result.report.failed)} failed")
        return 0
    if args.model is None:
        raise InvalidInputError("lsr index needs --model DIR (to encode --split) or --vectors FILE.jsonl.")
    encoder = load_encoder(args.model)
    result = index_split(spec, encoder, args.split, dense=args.dense, sets=args.sets, overwrite=args.overwrite,
                         connection=connection_for(args, spec), new=NewIndex(shards=args.shards, replicas=args.replicas))
    failed = result.report.failed
    what = f"set documents ({args.sets} members each)" if args.sets else "documents"
    print(f"indexed {result.report.indexed} {what} of {result.source} into {spec.describe()} (mean nnz "
          f"{result.mean_nnz:.1f}); {len(failed)} failed" + (f", e.g. {next(iter(failed.items()))}" if failed else ""))
    if args.tokens or args.jsonl:
        _write_extras(args, encoder)
    return 0


def _write_extras(args: argparse.Namespace, encoder) -> None:
    from lsr.data.sources import load_split_spec

    split = load_split_spec(args.split, encoder.vocab)
    if args.tokens:
        from lsr.search.tokens import TokenStore

        if not split.doc_texts:
            raise InvalidInputError(f"{split.name} has no document texts to take token vectors from; leave out --tokens.")
        store = TokenStore.build(split.doc_ids, encoder.encode_query_tokens(split.doc_texts))
        store.save(args.tokens)
        print(f"wrote the documents' token vectors to {args.tokens} ({store.nbytes:,} bytes)")
    if args.jsonl:
        from lsr.exchange import write_jsonl

        docs = encoder.encode_dense(split.doc_emb)
        write_jsonl(Path(args.jsonl), split.doc_ids, docs, encoder.vocab, contents=split.doc_texts)
        print(f"exported {len(docs)} vectors to {args.jsonl}")


def cmd_search(args: argparse.Namespace) -> int:
    texts = queries(args)
    if args.server_side:
        return _search_server_side(args, texts)
    if args.encoder is not None:
        from lsr.cli.images import search_images

        return search_images(args)
    if args.model is None:
        raise InvalidInputError("--model is required (or --encoder NAME for an image index)")
    from lsr.app.open import EncoderSpec, load_encoder
    from lsr.search import SparseSearcher

    mode = scoring_mode(args)  # a wrong flag combination fails before anything is loaded
    index_spec(args)
    encoder = load_encoder(EncoderSpec(model=args.model, dense_encoder=args.dense_encoder,
                                       dense_encoder_path=args.dense_encoder_path, device=args.device))
    index = open_index_from_args(args, encoder.vocab, sets=args.set_mode is not None,
                                 missing_hint=f"build one with `lsr index --index {args.index}`")
    searcher = SparseSearcher(index, encoder, **_mode_resources(args))
    if args.query_set:
        texts = [texts]  # phrasings of one query
    print_queries(searcher, texts, k=args.k, expand=not args.no_expansion, mode=mode, retrieval=retrieval(args))
    return 0


def print_queries(searcher, texts, k: int, expand: bool = True, mode=None, retrieval=None) -> None:
    """Each query's terms, then its hits with the tokens that matched."""
    from lsr.search.modes import Retrieval, SetScoring

    retrieval = retrieval or Retrieval()
    for text in texts:
        if isinstance(text, list) or isinstance(mode, SetScoring):
            print(f"\nquery: {text!r}  (sets, {mode.members if mode else 'max'} over members)")
            hits = searcher.search(text, k=k, expand=expand, mode=mode, retrieval=retrieval)
        else:
            q = searcher.encode_query(text, expand)
            print(f"\nquery: {text!r}  ({_query_kind(searcher, expand)}, {q.nnz} terms: "
                  + ", ".join(f"{t} {w:.2f}" for t, w in searcher.encoder.decode(q, 8)) + ")")
            hits = searcher.search_vector(q, k=k, retrieval=retrieval) if mode is None else \
                searcher.search(text, k=k, expand=expand, mode=mode, retrieval=retrieval)  # the sparse case: encoded once
        if not hits:
            print("  no matches")
        for rank, hit in enumerate(hits, 1):
            tokens = ", ".join(f"{t} {c:.2f}" for t, c in hit.top_tokens(5))
            caption = hit.metadata.get("caption") or hit.metadata.get("path") or ""
            print(f"  {rank}. {hit.id} score {hit.score:.3f}  " + (f"[{tokens}]  " if tokens else "") + caption)


def _query_kind(searcher, expand: bool) -> str:
    if searcher.encoder.provenance().get("query_encoder") == "inference-free":
        return "inference-free"
    return "expanded" if expand else "no expansion"


def _search_server_side(args: argparse.Namespace, texts: list[str]) -> int:
    """OpenSearch encodes the words (a registered model)."""
    spec = index_spec(args)
    if spec.backend != "opensearch":
        raise InvalidInputError("--server-side needs an OpenSearch index (and `lsr opensearch register`).")
    index = open_index_from_args(args, missing_hint=f"build one with `lsr index --index {args.index}`")
    for text in texts:
        print(f"\nquery: {text!r}  (encoded by OpenSearch with its registered model)")
        for rank, hit in enumerate(index.search_text(text, k=args.k, mode=args.retrieval), 1):
            caption = hit.metadata.get("caption") or hit.metadata.get("path") or ""
            print(f"  {rank}. {hit.id} score {hit.score:.3f}  {caption}")
    return 0


def _mode_resources(args: argparse.Namespace) -> dict:
    """What --rerank late / itm need beside the index: token vectors, a matching head."""
    out = {}
    if args.tokens:
        from lsr.search.tokens import TokenStore

        out["tokens"] = TokenStore.load(args.tokens)
    if args.itm_model:
        from lsr.search.itm import ITMScorer

        out["itm"] = ITMScorer.from_pretrained(args.itm_model)
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from lsr.d2s.model import D2SModel
    from lsr.data.sources import load_split_spec
    from lsr.exchange import write_jsonl, write_queries_tsv
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

"""Query OpenSearch with words: index captions through `lsr.open_index("opensearch://...")`, search them with
`lsr.Searcher`, then send the same query as a plain REST request (no client library of ours in the query).

    lsr opensearch start                                   # a local node on 127.0.0.1:9200
    python examples/opensearch_words.py "a dog catching a frisbee"
    python examples/opensearch_words.py --url https://search.example:9200 --model runs/demo/model "two dogs"

The words are encoded here (the D2S model) and sent as ``neural_sparse`` ``query_tokens``. Once a model is
registered on the node (`lsr opensearch register`, see docs/guides/opensearch-words.md), `--model-id ID`
also sends the raw words as ``query_text`` and the node encodes them itself.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request

import lsr

CAPTIONS = ["a dog catches a frisbee in a park", "two men play guitars on a stage",
            "a child in a pink dress climbs stairs", "a black cat sleeps on a sofa",
            "a surfer rides a large wave", "a red bus stops at a station"]


def rest(url: str, path: str, body: dict | None = None) -> dict:
    """One JSON request to the node (basic auth from OPENSEARCH_USER / OPENSEARCH_PASSWORD when set)."""
    request = urllib.request.Request(f"{url}{path}", data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    if os.environ.get("OPENSEARCH_USER"):
        token = f"{os.environ['OPENSEARCH_USER']}:{os.environ.get('OPENSEARCH_PASSWORD', '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def address(url: str, name: str) -> str:
    """The index address of `name` on the node at `url`: opensearch://HOST:PORT/NAME (opensearch+https:// for TLS)."""
    scheme, _, host = url.rstrip("/").partition("://")
    return f"{'opensearch+https' if scheme == 'https' else 'opensearch'}://{host}/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", nargs="?", default="a dog catching a frisbee", help="the query words (one query)")
    parser.add_argument("--url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--name", default="lsr-example-words", help="the index to write (replaced, dropped at the end)")
    parser.add_argument("--model", help="a D2S model directory (default: a tiny random model, offline)")
    parser.add_argument("--model-id", help="a model registered on the node: also query with query_text")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the index after the example")
    args = parser.parse_args()
    try:
        rest(args.url, "/")
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: no OpenSearch node at {args.url} ({exc}); start one with `lsr opensearch start` "
              "or pass --url", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as cleanup:
        if args.model is None:
            from make_tiny import build_model  # examples/make_tiny.py, beside this script

            args.model = str(build_model(cleanup.enter_context(tempfile.TemporaryDirectory())))
            print("(a tiny random model: the rankings mean nothing)")
        run(args)
    return 0


def run(args: argparse.Namespace) -> None:
    encoder = lsr.load_encoder(args.model)
    where = address(args.url, args.name)

    # 1. Write: open (here: replace) the index by its address and bulk-load the caption vectors.
    index = lsr.open_index(where, overwrite=True, vocab=encoder.vocab, new=lsr.NewIndex(encoder.vocab_size))
    index.index([f"img{i}" for i in range(len(CAPTIONS))], encoder.encode_document(CAPTIONS),
                [{"caption": c} for c in CAPTIONS])
    index.record_provenance(encoder.provenance())
    index.commit()
    print(f"indexed {len(CAPTIONS)} captions into {where}")

    # 2. Search through the library: the same call as for an embedded index.
    searcher = lsr.Searcher(lsr.open_index(where, vocab=encoder.vocab), encoder)
    python_hits = searcher.search(args.query, k=args.k)
    print(f"lsr.Searcher  {args.query!r}: " + ", ".join(f"{h.id} {h.score:.3f}" for h in python_hits))

    # 3. The same query over HTTP: the words' token weights as neural_sparse query_tokens. The index's rules
    #    keep a query within what OpenSearch takes (at most 1,024 clauses, its weight precision).
    sent, _ = searcher.index.rules.apply(searcher.encode_query(args.query))
    weights = searcher.index.naming.to_features(sent)  # {WordPiece token: weight}
    body = {"size": args.k, "_source": ["caption"],
            "query": {"neural_sparse": {searcher.index.field: {"query_tokens": weights}}}}
    reply = rest(args.url, f"/{args.name}/_search", body)
    rest_hits = [(h["_id"], h["_score"], h["_source"]["caption"]) for h in reply["hits"]["hits"]]
    print(f"POST /{args.name}/_search with {len(weights)} query_tokens:")
    for doc_id, score, caption in rest_hits:
        print(f"  {doc_id}  {score:.3f}  {caption}")
    same = [h.id for h in python_hits] == [doc_id for doc_id, _, _ in rest_hits]
    print(f"same top-{args.k} as lsr.Searcher: {'yes' if same else 'no'}")

    if args.model_id:  # the node encodes the words itself (a model registered with `lsr opensearch register`)
        body["query"] = {"neural_sparse": {searcher.index.field: {"query_text": args.query, "model_id": args.model_id}}}
        reply = rest(args.url, f"/{args.name}/_search", body)
        print("query_text: " + ", ".join(f"{h['_id']} {h['_score']:.3f}" for h in reply["hits"]["hits"]))

    if not args.keep:
        index.drop()


if __name__ == "__main__":
    raise SystemExit(main())

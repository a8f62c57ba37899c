"""Words in, hits out: end-to-end text-query latency and text ingest through OpenSearch, side by side.

Query paths (top-10, one query at a time, p50 / p99 ms):
- OpenSearch `neural_sparse` `query_text`: the node calls the registered remote model (`lsr serve`);
- Python path: encode in this process (`lsr.Searcher` over `lsr.open_index("opensearch://...")`), send
  `query_tokens`;
- embedded: encode in this process, exact embedded search.
Ingest (docs/s): `_bulk` of raw captions through the `sparse_encoding` pipeline (the node calls `lsr serve`)
against `_bulk` of vectors encoded in this process (encoding time included).

Index: the Flickr30k 1k test caption-0 documents (caption proxy) encoded by `--model`; queries: test captions.

    lsr opensearch start
    python benchmarks/bench_words.py --model runs/demo/model --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embedded import timed  # noqa: E402

import lsr  # noqa: E402
from lsr import D2SEncoder, EmbeddedIndex, OpenSearchIndex  # noqa: E402
from lsr.app.specs import IndexSpec  # noqa: E402
from lsr.backends.opensearch.ml import install_ingest_pipeline, register_remote_model  # noqa: E402
from lsr.data.sources import load_split_spec  # noqa: E402


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=5).read()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("lsr serve exited")
            time.sleep(0.5)
    raise RuntimeError("lsr serve did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-docs", type=int, default=1000)
    parser.add_argument("--serve-port", type=int, default=8011)
    parser.add_argument("--url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    args = parser.parse_args()
    serve_url = f"http://127.0.0.1:{args.serve_port}"
    serve = subprocess.Popen([sys.executable, "-m", "lsr.cli", "serve", "--model", args.model,
                              "--port", str(args.serve_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(serve_url, serve)
        encoder = lsr.load_encoder(args.model)
        split = load_split_spec("proxy:f30k/test", encoder.vocab)
        docs = encoder.encode_dense(split.doc_emb)
        remote = lsr.open_index(IndexSpec.from_parts("opensearch", "bench-words", args.url), overwrite=True,
                                vocab=encoder.vocab, new=lsr.NewIndex(encoder.vocab_size))
        remote.index(split.doc_ids, docs, [{"caption": c} for c in split.doc_texts])
        remote.commit()
        model = register_remote_model(remote.client, serve_url, name=f"bench-words-{args.serve_port}")
        pipeline = install_ingest_pipeline(remote.client, model.model_id, name="bench-words-ingest")
        embedded = EmbeddedIndex()  # in memory: an index address is a directory, and this one is thrown away
        embedded.index(split.doc_ids, docs)
        rng = np.random.default_rng(0)
        texts = [split.query_texts[i] for i in rng.choice(len(split.query_texts), args.queries, replace=False)]
        python_os, python_emb = lsr.Searcher(remote, encoder), lsr.Searcher(embedded, encoder)
        print(f"index: {len(split.doc_ids)} Flickr30k test documents, model {args.model} ({encoder.name}); "
              f"{len(texts)} test captions as queries; top-10")
        rows = {
            "OpenSearch query_text (remote model -> lsr serve)": lambda t: remote.search_text(t, k=10, model_id=model.model_id),
            "Python path: encode here, OpenSearch query_tokens": lambda t: python_os.search(t, k=10, explain=False),
            "embedded: encode here, exact embedded search": lambda t: python_emb.search(t, k=10, explain=False),
            "(encode only, in this process)": lambda t: encoder.encode_query([t]),
        }
        for name, fn in rows.items():
            p50, p99 = timed(fn, texts)
            print(f"  {name:<52} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms", flush=True)
        same = np.mean([[h.id for h in remote.search_text(t, k=10, model_id=model.model_id)]
                        == [h.id for h in python_os.search(t, k=10, explain=False)] for t in texts])
        print(f"  same top-10 ids, query_text vs query_tokens: {same:.3f} of queries")
        captions = [split.query_texts[i % len(split.query_texts)] for i in range(args.ingest_docs)]
        for label, fn in (("sparse_encoding pipeline (raw captions)", lambda: ingest_pipeline(remote, pipeline, captions)),
                          ("client-side encode + bulk of vectors", lambda: ingest_vectors(remote, encoder, captions))):
            t0 = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t0
            print(f"  ingest {label:<40} {len(captions) / seconds:8.0f} docs/s ({seconds:.1f} s for {len(captions)})")
        remote.drop()
    finally:
        serve.terminate()


def ingest_pipeline(remote: OpenSearchIndex, pipeline: str, captions: list[str], chunk: int = 100) -> None:
    for lo in range(0, len(captions), chunk):
        lines = []
        for i in range(lo, min(lo + chunk, len(captions))):
            lines += [json.dumps({"index": {"_id": f"p{i}"}}), json.dumps({"id": f"p{i}", "caption": captions[i]})]
        reply = remote.client.bulk(index=remote.index_name, body="\n".join(lines) + "\n", pipeline=pipeline)
        if reply.get("errors"):
            raise RuntimeError(next(i for i in reply["items"] if "error" in i["index"]))


def ingest_vectors(remote: OpenSearchIndex, encoder: D2SEncoder, captions: list[str], chunk: int = 100) -> None:
    for lo in range(0, len(captions), chunk):
        part = captions[lo:lo + chunk]
        report = remote.index([f"v{i}" for i in range(lo, lo + len(part))], encoder.encode_document(part),
                              [{"caption": c} for c in part])
        if report.failed:
            raise RuntimeError(report.failed)


if __name__ == "__main__":
    main()

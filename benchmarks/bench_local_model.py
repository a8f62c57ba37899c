"""Words in, hits out with the query encoder INSIDE OpenSearch (a local ML Commons model) against the other paths.

One run, side by side, on one node (p50 / p99 ms, one query at a time, top-10):
- local model in the node: `neural_sparse` `query_text` + the exported TorchScript (and ONNX) module;
- remote model: `query_text`, the node calls `lsr serve` (a second process);
- Python path: encode in this process (`D2SEncoder.encode_query`), send `query_tokens`;
- `_predict` alone for each model, and encoding alone in this process;
- same top-10 ids as the Python path, for every query;
- ingest docs/s of raw captions through the `sparse_encoding` pipeline, local model vs remote model;
- node memory (resident set, JVM heap) with the models deployed.

Index: the Flickr30k 1k test caption-0 documents (caption proxy) encoded by `--model` in this process;
queries: `--queries` test captions. The node needs DJL's natives (`lsr.node.djl`, installed by
`lsr opensearch register --local` / `lsr opensearch start`).

    lsr opensearch start
    python benchmarks/bench_local_model.py --model runs/demo/model --queries 200 --out results/bench_local_model.txt
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embedded import timed  # noqa: E402
from bench_words import ingest_pipeline, wait_healthy  # noqa: E402

from lsr import D2SEncoder, OpenSearchIndex, SparseSearcher  # noqa: E402
from lsr.backends.opensearch.local_model import predict_sparse, register_local_model  # noqa: E402
from lsr.backends.opensearch.ml import install_ingest_pipeline, predict, register_remote_model  # noqa: E402
from lsr.data.sources import load_split_spec  # noqa: E402
from lsr.encoders.export import export_query_model  # noqa: E402


def node_memory(url: str, client) -> str:
    stats = client.nodes.stats(metric="jvm,process")["nodes"]
    node = next(iter(stats.values()))
    heap = node["jvm"]["mem"]["heap_used_in_bytes"] / 2**20
    rss = None
    info = client.nodes.info(metric="process")["nodes"]
    pid = next(iter(info.values()))["process"].get("id")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return f"node resident set {rss:.0f} MiB, JVM heap used {heap:.0f} MiB" if rss else f"JVM heap used {heap:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-docs", type=int, default=1000)
    parser.add_argument("--serve-port", type=int, default=8012)
    parser.add_argument("--max-terms", type=int, default=1024)
    parser.add_argument("--formats", default="torchscript,onnx")
    parser.add_argument("--work", default="/tmp/lsr-bench-local-model")
    parser.add_argument("--url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--out", default=None, help="also write the report here")
    parser.add_argument("--no-inference-free", dest="inference_free", action="store_false",
                        help="skip the SPARSE_TOKENIZE row (it needs the ML Commons plugin zip for the stock table)")
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    serve_url = f"http://127.0.0.1:{args.serve_port}"
    serve = subprocess.Popen([sys.executable, "-m", "lsr.cli", "serve", "--model", args.model,
                              "--port", str(args.serve_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        encoder = D2SEncoder.from_pretrained(args.model)
        split = load_split_spec("proxy:f30k/test", encoder.vocab)
        index = OpenSearchIndex(args.url, index="bench-local-model", vocab=encoder.vocab)
        index.create(overwrite=True)
        index.index(split.doc_ids, encoder.encode_dense(split.doc_emb), [{"caption": c} for c in split.doc_texts])
        index.commit()
        client = index.client
        say(f"before any model: {node_memory(args.url, client)}")
        local = {}
        for fmt in args.formats.split(","):
            out = Path(args.work) / fmt
            t0 = time.perf_counter()
            export_query_model(encoder, out, fmt, args.max_terms, source=args.model)
            exported = time.perf_counter() - t0
            t0 = time.perf_counter()
            local[fmt] = register_local_model(client, out, name=f"bench-local-{fmt}").model_id
            say(f"{fmt}: exported in {exported:.0f} s, uploaded + deployed in {time.perf_counter() - t0:.0f} s "
                f"({(out / 'model.zip').stat().st_size / 2**20:.0f} MiB zip); {node_memory(args.url, client)}")
        tokenize = None
        if args.inference_free:  # latency only: the stock bert-uncased IDF table, not a model of ours
            from lsr.backends.opensearch.tokenize_model import register_tokenize_model
            from lsr.encoders.inference_free import QueryTokens, stock_idf, table_to_idf_json
            from lsr.node.install import find_ml_plugin_zip

            table = stock_idf(encoder.vocab, find_ml_plugin_zip())
            tokenize = register_tokenize_model(client, {"tokenizer.json": QueryTokens(encoder.vocab).tokenizer_json(),
                                                        "idf.json": json.dumps(table_to_idf_json(table, encoder.vocab))},
                                               name="bench-local-inference-free")
        wait_healthy(serve_url, serve)
        remote = register_remote_model(client, serve_url, name=f"bench-local-remote-{args.serve_port}").model_id
        rng = np.random.default_rng(0)
        texts = [split.query_texts[i] for i in rng.choice(len(split.query_texts), args.queries, replace=False)]
        python = SparseSearcher(index, encoder)
        say(f"index: {len(split.doc_ids)} Flickr30k test documents, model {args.model} ({encoder.name}, "
            f"top {args.max_terms} terms in the exported module); {len(texts)} test captions as queries; top-10; "
            f"load average before: {os.getloadavg()[0]:.2f}")
        rows = {f"local model in the node ({fmt}), query_text": (lambda t, m=m: index.search_text(t, k=10, model_id=m))
                for fmt, m in local.items()}
        rows["remote model (node -> lsr serve), query_text"] = lambda t: index.search_text(t, k=10, model_id=remote)
        rows["Python path: encode here, query_tokens"] = lambda t: python.search(t, k=10, explain=False)
        if tokenize:
            rows["inference-free table in the node (stock IDF), query_text"] = (
                lambda t: index.search_text(t, k=10, model_id=tokenize))
        for fmt, m in local.items():
            rows[f"_predict alone: local {fmt}"] = lambda t, m=m: predict_sparse(client, m, [t])
        rows["_predict alone: remote (lsr serve)"] = lambda t: predict(client, remote, [t])
        rows["encode alone, in this process"] = lambda t: encoder.encode_query([t])
        for name, fn in rows.items():
            p50, p99 = timed(fn, texts)
            say(f"  {name:<52} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
        want = {t: [h.id for h in python.search(t, k=10, explain=False)] for t in texts}
        for fmt, m in local.items():
            same = np.mean([[h.id for h in index.search_text(t, k=10, model_id=m)] == want[t] for t in texts])
            say(f"  same top-10 ids as the Python path, local {fmt}: {same:.3f} of queries")
        same = np.mean([[h.id for h in index.search_text(t, k=10, model_id=remote)] == want[t] for t in texts])
        say(f"  same top-10 ids as the Python path, remote model: {same:.3f} of queries")
        captions = [split.query_texts[i % len(split.query_texts)] for i in range(args.ingest_docs)]
        for label, model_id in [(f"local {fmt}", m) for fmt, m in local.items()] + [("remote", remote)]:
            pipeline = install_ingest_pipeline(client, model_id, name=f"bench-local-ingest-{label.replace(' ', '-')}")
            t0 = time.perf_counter()
            ingest_pipeline(index, pipeline, captions)
            seconds = time.perf_counter() - t0
            say(f"  ingest through the sparse_encoding pipeline, {label:<16} {len(captions) / seconds:6.0f} docs/s "
                f"({seconds:.1f} s for {len(captions)})")
        say(f"  with the models deployed: {node_memory(args.url, client)}; load average after: "
            f"{os.getloadavg()[0]:.2f}")
        index.drop()
    finally:
        serve.terminate()
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

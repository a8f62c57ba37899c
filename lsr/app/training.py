"""Training from a config: train D2S on dense pairs (or an inference-free query table), evaluate every scorer
side by side on the evaluation splits, and write the model, TREC runs and `report.json`.

Used by `lsr demo` (a small subset), `lsr train` and `lsr eval` (`evaluate_all`); the lab's sweeps
(`experiments/sweep.py`) build their models with `build_model`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from lsr.d2s.model import D2SConfig, D2SModel
from lsr.d2s.static_pruning import choose_min_weight
from lsr.d2s.train import TrainConfig, train
from lsr.data.sources import load_pairs, load_split_spec
from lsr.data.split import PairedSplit
from lsr.errors import InvalidInputError
from lsr.eval.evaluate import encode_split, evaluate_dense, evaluate_dense_head, evaluate_sparse_vectors
from lsr.eval.report import format_table, gap_to_reference, write_json
from lsr.eval.trec import write_qrels, write_run
from lsr.vocab import Vocabulary, default_tokenizer_dir

log = logging.getLogger(__name__)

PROXY_DENSE_ENCODER = {"name": "minilm", "path": None}  # the caption proxy's frozen encoder (offline package)


@dataclass
class ExperimentConfig:
    data: str = "proxy:f30k"
    out_dir: str = "runs/demo"
    train_images: int | None = None  # None = the whole training split
    eval_sets: tuple[str, ...] = ("proxy:f30k/test",)
    dev_set: str = "proxy:f30k/dev"
    init_dir: str | None = None  # local model whose word embeddings / MLM head initialise the projector
    init: str = "tied"
    # the model's hidden width (None: the init's own, 384 for MiniLM); smaller trains faster (`build_model`)
    hidden_dim: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: bool = True  # also report the untrained projection
    procrustes: bool = True  # MiniLM -> GloVe mapping baselines (caption proxy only)
    # after training, choose the static-pruning threshold on the dev split for this FLOPs budget
    max_flops: float | None = None
    # the dense encoder that made the training vectors, saved with the model (`D2SConfig.dense_encoder`);
    # None: MiniLM from its offline package for proxy data, unrecorded otherwise
    dense_encoder: dict | None = None


def build_model(init: str, dense_dim: int, init_dir: str | None = None, hidden_dim: int | None = None) -> D2SModel:
    """A fresh D2S model with its projector from `init_dir` (default: the offline MiniLM directory);
    `hidden_dim` None keeps the init's own width (the embeddings' for tied and mlm, 384 for random)."""
    source = init_dir or str(default_tokenizer_dir())
    if init == "tied":
        return D2SModel.from_word_embeddings(source, dense_dim, hidden_dim)
    if init == "mlm":
        model = D2SModel.from_mlm_head(source, dense_dim)
        if hidden_dim is not None and hidden_dim != model.config.hidden_dim:
            raise InvalidInputError(f"The MLM head of {source} is {model.config.hidden_dim} wide; --hidden-dim "
                             f"{hidden_dim} needs init 'tied' (its principal subspace) or 'random'.")
        return model
    if init == "random":
        return D2SModel(D2SConfig(dense_dim=dense_dim, init="random", hidden_dim=hidden_dim or D2SConfig.hidden_dim))
    raise InvalidInputError(f"Unknown projector init {init!r}; use tied, mlm or random.")


def _warn_unscaled_lr(cfg: ExperimentConfig, model: D2SModel, lr: float, default_lr: float) -> None:
    """Warn when `--hidden-dim` narrowed the model but the projector keeps the learning rate set for the full
    width: Adam then moves its logits width / full as fast, and the vectors stay dense."""
    width, full = model.config.hidden_dim, D2SConfig.hidden_dim
    if cfg.hidden_dim is not None and lr == default_lr and width < full:
        log.warning("hidden_dim %d with the projector learning rate set for width %d (--lr %g): Adam then moves "
                    "logits about %d / %d as fast and the vectors stay dense; scale --lr by %d / width",
                    width, full, lr, width, full, full)


def evaluate_all(model: D2SModel, split: PairedSplit, out_dir: Path | None = None,
                 untrained: D2SModel | None = None) -> dict[str, dict]:
    """Dense cosine, D2S expanded and no-expansion queries (and the untrained projection) on one split."""
    rows: dict[str, dict] = {"dense cosine (teacher)": evaluate_dense(split)}
    if model.dense_head is not None:
        rows["joint dense head"] = evaluate_dense_head(model, split)
    scored = {}
    docs = model.encode(split.doc_emb)  # documents are always expanded: encode them once
    for label, tag, tokens in (("D2S sparse, expanded queries", "d2s-exp", None),
                               ("D2S sparse, no-expansion queries", "d2s-noexp", split.query_tokens)):
        queries = model.encode(split.query_emb, tokens)
        rows[label], scored[tag] = evaluate_sparse_vectors(queries, docs, split.query_doc, return_scores=True)
    if untrained is not None:
        q, d = encode_split(untrained, split, expand_queries=True)
        rows["D2S untrained projection"] = evaluate_sparse_vectors(q, d, split.query_doc)
    if out_dir is not None:
        _write_runs(out_dir, split, scored)
    return rows


def _write_runs(out_dir: Path, split: PairedSplit, scored: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_qrels(out_dir / f"{split.name}.t2i.qrels", split.qrels_t2i())
    write_qrels(out_dir / f"{split.name}.i2t.qrels", split.qrels_i2t())
    dense = split.query_emb @ split.doc_emb.T
    write_run(out_dir / f"{split.name}.dense.t2i.run", dense, split.query_ids, split.doc_ids, "dense")
    write_run(out_dir / f"{split.name}.dense.i2t.run", dense.T, split.doc_ids, split.query_ids, "dense")
    for tag, scores in scored.items():
        write_run(out_dir / f"{split.name}.{tag}.t2i.run", scores, split.query_ids, split.doc_ids, tag)
        write_run(out_dir / f"{split.name}.{tag}.i2t.run", scores.T, split.doc_ids, split.query_ids, tag)


def run_experiment(cfg: ExperimentConfig, show_progress: bool = True) -> dict:
    """Train, evaluate and write the report under `cfg.out_dir`; returns the report dict."""
    cfg = replace(cfg, train=cfg.train.resolved())  # the report records the objective's defaults it trained with
    out = Path(cfg.out_dir)
    vocab = Vocabulary()
    train_split = load_pairs(cfg.data, "train", max_images=cfg.train_images, vocab=vocab)
    dev = load_split_spec(cfg.dev_set, vocab)
    torch.manual_seed(cfg.train.seed)  # the input Linear starts random: the same seed, the same start
    model = build_model(cfg.init, train_split.dense_dim, cfg.init_dir, cfg.hidden_dim)
    model.config.dense_encoder = cfg.dense_encoder or (PROXY_DENSE_ENCODER if cfg.data.startswith("proxy") else None)
    _warn_unscaled_lr(cfg, model, cfg.train.lr, TrainConfig.lr)
    untrained = build_model(cfg.init, train_split.dense_dim, cfg.init_dir, cfg.hidden_dim) if cfg.baselines else None
    if cfg.max_flops is not None and cfg.train.select_max_flops is None:  # pick the best epoch at the budget
        cfg = replace(cfg, train=replace(cfg.train, select_max_flops=cfg.max_flops))
    result = train(model, train_split, dev, cfg.train, out_dir=out / "model", show_progress=show_progress)
    pruning = None
    if cfg.max_flops is not None:
        try:
            threshold, curve = choose_min_weight(model, dev, cfg.max_flops, curve=result.best_curve)
        except ValueError as exc:  # the trained model is still worth keeping: say so, leave it unpruned
            log.warning("static pruning skipped: %s", exc)
            threshold, curve = 0.0, None
        else:
            log.info("static pruning: min_weight %.3f keeps FLOPs <= %.2f on %s", threshold, cfg.max_flops, dev.name)
        model.config.min_weight = threshold
        model.save_pretrained(out / "model")
        pruning = {"max_flops": cfg.max_flops, "chosen_on": dev.name, "min_weight": threshold,
                   "reached": curve is not None, "curve": curve}
    report = {
        "label": "caption proxy" if cfg.data.startswith("proxy") else cfg.data,
        "config": asdict(cfg),
        "train": {"pairs": len(train_split.query_ids), "images": len(train_split.doc_ids),
                  "seconds": result.seconds, "best_epoch": result.best_epoch, "history": result.history},
        "static_pruning": pruning,
        "results": {},
    }
    for spec in cfg.eval_sets:
        split = load_split_spec(spec, vocab)
        rows = evaluate_all(model, split, out / "runs", untrained if spec == cfg.eval_sets[0] else None)
        if cfg.procrustes and spec.startswith("proxy"):
            rows.update(_procrustes_rows(train_split, split))
        report["results"][split.name] = rows
    write_json(out / "report.json", report)
    return report


def _procrustes_rows(train_split: PairedSplit, test: PairedSplit) -> dict[str, dict]:
    """MiniLM queries mapped into GloVe document space (two unrelated encoders, no joint training)."""
    from lsr.dense.evaluate import run_procrustes_eval
    from lsr.encoders.glove import GloVeEncoder

    result = run_procrustes_eval(train_split, test, GloVeEncoder())
    return {f"MiniLM->GloVe {name}": {"t2i": m["t2i"], "i2t": m["i2t"], "describe": m["describe"]}
            for name, m in result["methods"].items()}


def report_text(report: dict) -> str:
    """The printed table(s) of a report, with gaps to the dense teacher."""
    parts = [f"Results on the {report['label']} (numbers are {report['label']} numbers, not image-text "
             f"reproductions). Training: {report['train']['pairs']} pairs, best epoch {report['train']['best_epoch']}, "
             f"{report['train']['seconds']:.0f} s."]
    for name, rows in report["results"].items():
        parts.append(format_table(rows, title=f"== {name} =="))
        parts.append(gap_to_reference(rows, "dense cosine (teacher)"))
    return "\n\n".join(parts)


def split_query_tokens(split: PairedSplit, vocab: Vocabulary) -> list:
    """Each query caption's tokens as an inference-free query sees them (from its text when the split has
    texts, else from its cached token ids without special tokens)."""
    from lsr.d2s.inference_free import own_tokens
    from lsr.encoders.inference_free import QueryTokens

    if split.query_texts:
        return QueryTokens(vocab)(split.query_texts)
    return own_tokens(split.query_tokens, vocab.special_ids)


def run_inference_free(cfg: ExperimentConfig, documents: str | None, if_cfg, show_progress: bool = True) -> dict:
    """`lsr train --query-encoder inference-free`: learn the query table against a D2S model's documents
    (`documents`: its directory, or None for a new projection), frozen (``if_cfg.train_documents`` False:
    variant (b)) or learning together with the table (variant (c)); the table starts from IDF over the
    training captions. Saves an inference-free model (`InferenceFreeEncoder`) under `out_dir/model` and a
    report of the dev history and the evaluation rows."""
    from lsr.d2s.inference_free import evaluate_table, save_training, train_table
    from lsr.encoders.inference_free import idf_from_token_ids, save_table

    out = Path(cfg.out_dir)
    vocab = Vocabulary()
    train_split = load_pairs(cfg.data, "train", max_images=cfg.train_images, vocab=vocab)
    dev = load_split_spec(cfg.dev_set, vocab)
    if documents:
        model = D2SModel.from_pretrained(documents)
    else:
        if not if_cfg.train_documents:
            raise InvalidInputError("Frozen documents need a trained D2S model: pass its directory (--documents).")
        model = build_model(cfg.init, train_split.dense_dim, cfg.init_dir, cfg.hidden_dim)
        model.config.dense_encoder = cfg.dense_encoder or (PROXY_DENSE_ENCODER if cfg.data.startswith("proxy") else None)
        _warn_unscaled_lr(cfg, model, if_cfg.lr, type(if_cfg).lr)
    train_tokens = split_query_tokens(train_split, vocab)
    idf = idf_from_token_ids(train_tokens, model.config.vocab_size)
    initial = idf / idf.max()  # IDF's shape on the documents' score scale (raw IDF makes the softmax saturate)
    table, result = train_table(model, initial, train_split, train_tokens, dev, split_query_tokens(dev, vocab),
                                if_cfg, show_progress=show_progress)
    model.config.query_encoder = "inference-free"
    model.save_pretrained(out / "model")
    save_table(table, out / "model")
    save_training(out / "model", if_cfg, result)
    report = {"label": "caption proxy" if cfg.data.startswith("proxy") else cfg.data,
              "query_encoder": "inference-free", "documents": documents or "a new projection",
              "documents_trained": if_cfg.train_documents,
              "config": asdict(if_cfg), "best_epoch": result.best_epoch, "history": result.history,
              "seconds": result.seconds, "results": {}}
    for spec in cfg.eval_sets:
        split = load_split_spec(spec, vocab)
        report["results"][split.name] = evaluate_table(model, table, split, split_query_tokens(split, vocab))
    write_json(out / "report.json", report)
    return report

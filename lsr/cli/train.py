"""`lsr train`: its flags, and the two trainings it runs (D2S, or inference-free query tables)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_train_args(p: argparse.ArgumentParser) -> None:
    from lsr.d2s.inference_free import InferenceFreeConfig
    from lsr.d2s.train import OBJECTIVE_DEFAULTS, TrainConfig

    d, free = TrainConfig(), InferenceFreeConfig()

    def per_objective(name: str) -> str:  # "joint flops, d2s l1": the defaults as OBJECTIVE_DEFAULTS has them
        return ", ".join(f"{objective} {defaults[name]}" for objective, defaults in OBJECTIVE_DEFAULTS.items())

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="caption-image pairs per step")
    g.add_argument("--temperature", type=float, default=d.temperature, help="teacher softmax temperature tau")
    g.add_argument("--sparsity", choices=("l1", "flops"), default=None,
                   help=f"sparsity penalty (default: the objective's; {per_objective('sparsity')})")
    g.add_argument("--lambda-q", type=float, default=None,
                   help=f"sparsity weight on captions (default: the objective's; {per_objective('lambda_q')}; "
                        f"inference-free {free.lambda_q:g})")
    g.add_argument("--lambda-d", type=float, default=None,
                   help=f"sparsity weight on images (default: the objective's, not --lambda-q's value; "
                        f"inference-free {free.lambda_d:g})")
    g.add_argument("--sparsity-warmup", type=float, default=d.sparsity_warmup,
                   help="fraction of steps over which lambda grows quadratically")
    g.add_argument("--lr", type=float, default=d.lr, help="learning rate of projector and LayerNorm")
    g.add_argument("--lr-proj", type=float, default=d.lr_proj, help="learning rate of the input Linear")
    g.add_argument("--lr-schedule", choices=("linear", "constant"), default=d.lr_schedule)
    g.add_argument("--lr-warmup", type=float, default=d.lr_warmup)
    g.add_argument("--expansion-decay", type=float, default=d.expansion_decay,
                   help="Bernoulli expansion control: p (batches trained with no-expansion captions) falls from 1 "
                        "to 0 over this fraction of the epochs; 0 turns expansion control off")
    g.add_argument("--group-by-image", action=argparse.BooleanOptionalAction, default=d.group_by_image,
                   help="batches of whole images (all captions of batch-size / captions-per-image images; each "
                        "image projected once per batch) instead of random pairs")
    g.add_argument("--weight-average", type=float, default=None, metavar="DECAY",
                   help="validate, choose and save an exponential moving average of the weights with this decay "
                        f"(0.995: about one epoch); 0 uses the raw weights (default: the objective's; "
                        f"{per_objective('weight_average')})")
    g.add_argument("--select-on", choices=("mean_r1", "t2i_r1", "last"), default=d.select_on)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--objective", choices=("d2s", "joint"), default=d.objective,
                   help="joint (default): joint sparse + dense training with self-distillation (a trainable "
                        "dense head saved with the model); d2s: distil the frozen dense scores (Nguyen et al.)")
    g.add_argument("--joint-w-dense", type=float, default=d.joint_w_dense, help="joint: weight of s_dense in s_inter")
    g.add_argument("--joint-w-sparse", type=float, default=d.joint_w_sparse, help="joint: weight of s_sparse")
    g.add_argument("--joint-self-distill", type=float, default=d.joint_self_distill,
                   help="joint: weight of the self-distillation terms")
    g.add_argument("--joint-teacher", type=float, default=d.joint_teacher,
                   help="joint: weight of D2S distillation from the frozen teacher")
    g.add_argument("--joint-tau", type=float, default=d.joint_tau, help="joint: initial dense temperature")
    g.add_argument("--lr-head", type=float, default=d.lr_head, help="joint: learning rate of the dense head")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")


def train_config(args):
    from lsr.d2s.train import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, temperature=args.temperature,
                       sparsity=args.sparsity, lambda_q=args.lambda_q, lambda_d=args.lambda_d,
                       sparsity_warmup=args.sparsity_warmup, lr=args.lr, lr_proj=args.lr_proj,
                       lr_schedule=args.lr_schedule, lr_warmup=args.lr_warmup,
                       expansion_decay=args.expansion_decay, select_on=args.select_on,
                       seed=args.seed, device=args.device, objective=args.objective,
                       joint_w_dense=args.joint_w_dense, joint_w_sparse=args.joint_w_sparse,
                       joint_self_distill=args.joint_self_distill, joint_teacher=args.joint_teacher,
                       joint_tau=args.joint_tau, lr_head=args.lr_head, group_by_image=args.group_by_image,
                       weight_average=args.weight_average)


def add_data_args(p: argparse.ArgumentParser, default_eval: tuple[str, ...]) -> None:
    p.add_argument("--data", default="proxy:f30k",
                   help="pairs source: proxy:f30k (caption proxy), d2s:FOLDER (D2S parquet layout), npy:FOLDER")
    p.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
    p.add_argument("--dev", default="proxy:f30k/dev", help="validation split SOURCE/SPLIT for checkpoint selection")
    p.add_argument("--eval", nargs="+", default=list(default_eval), metavar="SOURCE/SPLIT",
                   help="evaluation splits, e.g. proxy:f30k/test proxy:coco/test d2s:DIR/test")


def cmd_train(args) -> int:
    from lsr.app.training import ExperimentConfig, report_text, run_experiment

    cfg = ExperimentConfig(data=args.data, out_dir=args.out, train_images=args.train_images,
                           eval_sets=tuple(args.eval), dev_set=args.dev, init=args.init, init_dir=args.init_dir,
                           hidden_dim=args.hidden_dim,
                           train=train_config(args), procrustes=not args.no_procrustes,
                           baselines=not args.no_baselines, max_flops=args.max_flops or None)
    if args.query_encoder == "inference-free":
        return train_inference_free(args, cfg)
    if args.documents or args.freeze_documents:
        raise ValueError("--documents / --freeze-documents go with --query-encoder inference-free.")
    report = run_experiment(cfg)
    print(report_text(report))
    print(f"\nmodel: {Path(args.out) / 'model'}   report: {Path(args.out) / 'report.json'}")
    return 0


def train_inference_free(args, cfg) -> int:
    from lsr.d2s.inference_free import InferenceFreeConfig
    from lsr.app.training import run_inference_free

    lambda_q = InferenceFreeConfig.lambda_q if args.lambda_q is None else args.lambda_q
    lambda_d = InferenceFreeConfig.lambda_d if args.lambda_d is None else args.lambda_d
    if_cfg = InferenceFreeConfig(epochs=args.epochs, batch_size=args.batch_size, temperature=args.temperature,
                                 lambda_q=lambda_q, lambda_d=lambda_d, sparsity_warmup=args.sparsity_warmup,
                                 lr_table=args.lr_table, lr=args.lr, lr_proj=args.lr_proj, seed=args.seed,
                                 device=args.device, train_documents=not args.freeze_documents)
    if args.freeze_documents and not args.documents:
        raise ValueError("--freeze-documents needs --documents MODEL_DIR (the frozen model's documents).")
    report = run_inference_free(cfg, args.documents, if_cfg)
    print(f"inference-free queries, best dev epoch {report['best_epoch']} (documents: {report['documents']}, "
          f"{'trained' if report['documents_trained'] else 'frozen'})")
    for name, row in report["results"].items():
        t2i = row["t2i"]
        print(f"  {name}: text->image R@1/5/10 {t2i['R@1']:.1f} / {t2i['R@5']:.1f} / {t2i['R@10']:.1f}  "
              f"q nnz {row['query_nnz']:.1f}  d nnz {row['doc_nnz']:.1f}  FLOPs {row['flops']:.2f}")
    print(f"\nmodel: {Path(args.out) / 'model'}   report: {Path(args.out) / 'report.json'}")
    return 0

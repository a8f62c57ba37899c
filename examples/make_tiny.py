"""A tiny random D2S model and an embedded index of a few captions, for trying the examples offline.

The model is untrained (random weights over the offline MiniLM encoder), so rankings mean nothing; it
only lets every example run in seconds without data or downloads. With real data, train a model with
`lsr demo` (it writes runs/demo/model and runs/demo/index) and pass those paths instead.

    python examples/make_tiny.py /tmp/lsr-tiny       # writes /tmp/lsr-tiny/model and /tmp/lsr-tiny/index
"""

from __future__ import annotations

import argparse
from pathlib import Path

CAPTIONS = [
    "a dog catches a frisbee in a park",
    "two men play guitars on a stage",
    "a child in a pink dress climbs stairs",
    "a black cat sleeps on a sofa",
    "a surfer rides a large wave",
    "people walk along a busy city street at night",
    "a red bus stops at a station",
    "a woman cooks dinner in a small kitchen",
]


def build_model(directory: str | Path, seed: int = 0) -> Path:
    """Save a random D2S model (MiniLM, 384-d, hidden 16) to `directory` and return it."""
    import torch

    from lsr import D2SConfig, D2SModel

    torch.manual_seed(seed)
    model = D2SModel(D2SConfig(dense_dim=384, hidden_dim=16, dense_encoder={"name": "minilm", "path": None},
                               min_weight=0.5))
    model.save_pretrained(directory)
    return Path(directory)


def build(root: str | Path, captions: list[str] = CAPTIONS) -> tuple[Path, Path]:
    """A tiny model under ROOT/model and an embedded index of `captions` (with dense vectors, for the
    re-ranking and hybrid modes) under ROOT/index; returns both paths."""
    import lsr

    root = Path(root)
    model_dir = build_model(root / "model")
    encoder = lsr.load_encoder(model_dir)
    index = lsr.open_index(root / "index", overwrite=True, new=lsr.NewIndex(encoder.vocab_size))
    index.index([f"img{i}" for i in range(len(captions))], encoder.encode_document(captions),
                [{"caption": c} for c in captions], dense=encoder.encode_query_dense(captions))
    index.record_provenance(encoder.provenance())
    index.commit()
    return model_dir, root / "index"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="directory to write model/ and index/ into")
    args = parser.parse_args()
    model_dir, index_dir = build(args.root)
    print(f"model: {model_dir}\nindex: {index_dir}")


if __name__ == "__main__":
    main()

"""Sources of paired dense vectors: the caption proxy, the D2S parquet layout, plain .npy files."""

from lsr.data.split import PairedSplit

__all__ = ["PairedSplit"]

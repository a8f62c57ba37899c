"""LAVIS (ALBEF / BLIP) is an optional extra: without it the encoder fails with the install line."""

from __future__ import annotations

import importlib.util
import sys

import pytest

HAS_LAVIS = importlib.util.find_spec("lavis") is not None


def test_missing_lavis_names_the_install_line(tmp_path, monkeypatch):
    from lsr.encoders.lavis import LavisEncoder

    monkeypatch.setitem(sys.modules, "lavis", None)  # behave as if it were not installed
    checkpoint = tmp_path / "ALBEF.pth"
    checkpoint.write_bytes(b"")
    with pytest.raises(ImportError, match=r"bash scripts/lavis-env.sh"):
        LavisEncoder("albef", checkpoint, tokenizer_dir=tmp_path)


def test_lavis_encoder_checks_its_inputs_first(tmp_path):
    from lsr.encoders.lavis import LavisEncoder
    from lsr.encoders.registry import load_image_encoder

    with pytest.raises(ValueError, match="family must be one of"):
        LavisEncoder("clip", tmp_path / "x.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LavisEncoder("blip", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="needs --encoder-path"):
        load_image_encoder("lavis-albef")


@pytest.mark.skipif(not HAS_LAVIS, reason="salesforce-lavis not installed here (its own environment: scripts/lavis-env.sh, tests/test_lavis_env.py)")
def test_lavis_is_importable():
    from lsr.encoders.lavis import import_lavis

    assert import_lavis().get_model_class("albef_feature_extractor") is not None

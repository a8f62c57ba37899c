"""The registered image encoders by name (no imports: the command line's help reads it)."""

IMAGE_ENCODERS: dict[str, str] = {
    "efficientnet-labels": "EfficientNet-Lite0 ImageNet classes -> class-name tokens (sparse, offline, no D2S)",
    "blip": "BLIP ITC via transformers from a local directory (dense; needs a D2S model)",
    "lavis-blip": "BLIP base via LAVIS from a local checkpoint (dense; needs a D2S model; runs in the LAVIS environment)",
    "lavis-albef": "ALBEF via LAVIS from a local checkpoint (dense; needs a D2S model; runs in the LAVIS environment)",
}

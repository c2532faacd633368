#!/usr/bin/env bash
# Set up (first run only) and start VQ-Rec Studio on http://127.0.0.1:${PORT:-8501}, opened on the sample data.
# Options: PORT=8502 ./start.sh ; VQREC_WORKSPACE=/path ./start.sh ; VQREC_ADDRESS=0.0.0.0 to listen beyond localhost.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m streamlit run app.py \
  --server.address "${VQREC_ADDRESS:-127.0.0.1}" --server.port "${PORT:-8501}" \
  --server.headless true --browser.gatherUsageStats false

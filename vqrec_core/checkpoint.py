"""Model checkpoints: a folder with ``model.safetensors`` (the pure state dict) and ``config.json``.

``config.json`` holds the model kind, its config dataclass, free metadata (e.g. the item ids of the catalog the
buffers describe) and the SHA-256 of the weights file, so a tampered or truncated checkpoint is detected before any
tensor is used. Both files are written atomically (fsutil). Loading never unpickles: safetensors only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CheckpointError
from .fsutil import atomic_write_bytes, atomic_write_json
from .models import (
    Popularity,
    SASRecID,
    SASRecIDConfig,
    TextKNN,
    TextSeq,
    TextSeqConfig,
    VQRec,
    VQRecConfig,
)

FORMAT = "vqrec-studio-checkpoint-v1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
_CONFIGS = {"vqrec": VQRecConfig, "text_seq": TextSeqConfig, "sasrec_id": SASRecIDConfig}


def save_checkpoint(model: torch.nn.Module, folder: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (VQRec, TextSeq, SASRecID, TextKNN or Popularity) to ``folder``; returns the folder."""
    folder = Path(folder)
    kind = getattr(model, "kind", None)
    if kind is None:
        raise CheckpointError(f"A {type(model).__name__} cannot be saved as a checkpoint (unknown model kind).")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    data = st_save(state)
    atomic_write_bytes(folder / WEIGHTS, data)
    cfg = dataclasses.asdict(model.cfg) if hasattr(model, "cfg") else {}
    extra = {"exclude_query": bool(model.exclude_query)} if isinstance(model, TextKNN) else {}
    atomic_write_json(folder / CONFIG, {
        "format": FORMAT, "kind": kind, "config": cfg, "extra": extra, "meta": meta or {},
        "weights_sha256": hashlib.sha256(data).hexdigest(), "n_items": int(model.n_items),
    })
    return folder


def read_config(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    path = folder / CONFIG
    if not path.exists():
        raise CheckpointError(f"'{folder}' is not a checkpoint: it has no {CONFIG}. Point to a folder written by "
                              "training (it holds config.json and model.safetensors).")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"The checkpoint file '{path}' is damaged (not valid JSON: {e}).") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a VQ-Rec Studio checkpoint (format {info.get('format')!r} if any).")
    return info


def load_checkpoint(folder: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint folder -> (model in eval mode, metadata). Raises CheckpointError if anything is off."""
    folder = Path(folder)
    info = read_config(folder)
    wpath = folder / WEIGHTS
    if not wpath.exists():
        raise CheckpointError(f"The checkpoint '{folder}' has no {WEIGHTS}; it is incomplete. Train and save again.")
    data = wpath.read_bytes()
    if hashlib.sha256(data).hexdigest() != info.get("weights_sha256"):
        raise CheckpointError(f"The weights file '{wpath}' does not match the hash recorded in {CONFIG}: it was "
                              "truncated or modified after saving. Re-train or restore the original file.")
    try:
        state = st_load(data)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for malformed headers
        raise CheckpointError(f"The weights file '{wpath}' cannot be read ({type(e).__name__}: {e}).") from None
    kind = info.get("kind")
    try:
        model = _build(kind, info, state)
        model.load_state_dict(state, strict=True)
    except CheckpointError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"The checkpoint '{folder}' does not fit a {kind} model ({type(e).__name__}: "
                              f"{e}).") from None
    model.eval()
    return model, info.get("meta", {})


def _build(kind: str, info: dict, state: dict) -> torch.nn.Module:
    if kind in _CONFIGS:
        fields = {f.name for f in dataclasses.fields(_CONFIGS[kind])}
        cfg = _CONFIGS[kind](**{k: v for k, v in info["config"].items() if k in fields})
    if kind == "vqrec":
        return VQRec(cfg, state["flat_codes"])
    if kind == "text_seq":
        return TextSeq(cfg, state["text_emb"])
    if kind == "sasrec_id":
        return SASRecID(cfg, int(state["item_embedding.weight"].shape[0]) - 1)
    if kind == "text_knn":
        return TextKNN(state["text_emb"], exclude_query=bool(info.get("extra", {}).get("exclude_query", True)))
    if kind == "pop":
        return Popularity(state["counts"])
    raise CheckpointError(f"Unknown model kind {kind!r} in the checkpoint.")

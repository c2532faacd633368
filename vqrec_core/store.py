"""The workspace: one folder on disk holding everything the app uploads, computes and trains.

Reference: DESIGN.md §4 ("artifacts live in a workspace folder on disk, named by content, written atomically;
nothing a user trained is lost on a page reload or a crash") and issue 5 (behaviour).

Layout (``root`` = $VQREC_WORKSPACE or ./workspace)::

    settings.json                     text encoder and other workspace settings
    domains/<name>/items.csv          canonical catalog: item_id, text
    domains/<name>/interactions.csv   canonical log: user_id, item_id, timestamp
    domains/<name>/meta.json          source file names, column mapping, validation report, statistics
    cache/                            embeddings, codes, UMAP maps (content-hashed by their modules)
    analyses/<key>/                   code-space analyses: tables as CSV + meta.json
    runs/<run_id>/status.json         running | finished | stopped | failed | interrupted, pid, heartbeat
    runs/<run_id>/...                 config, live curves, metrics, checkpoints (written by vqrec_core.pipeline)
    uploads/<uuid>/<sanitised name>   uploaded files, never named by the user's path

Every file is written with ``fsutil.atomic_*``. Run ids are unique (time + random suffix) and every temp file is
a ``mkstemp`` name, so two sessions never overwrite each other. A run whose status says "running" but whose
process is gone or whose heartbeat is older than ``HEARTBEAT_STALE_S`` is reported -- and rewritten -- as
"interrupted", never as finished.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from . import data as _data
from .errors import ConfigError, DataError
from .fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text

# ---------------------------------------------------------------------------------------------------- limits
# per uploaded file; data.py owns the limit (MAX_FILE_BYTES), .streamlit/config.toml server.maxUploadSize repeats it
MAX_UPLOAD_MB = int(getattr(_data, "MAX_FILE_BYTES", 100 * 2**20)) // 2**20
MAX_ITEMS = int(getattr(_data, "MAX_ITEMS", 200_000))  # catalog rows accepted (data.py owns the check)
MAX_INTERACTIONS = int(getattr(_data, "MAX_INTERACTIONS", 2_000_000))  # log rows accepted
HEARTBEAT_STALE_S = 90.0  # a "running" run without a heartbeat for this long is interrupted
SAMPLE_DOMAINS = ("beauty", "toys")
RUN_STATES = ("running", "finished", "stopped", "failed", "interrupted")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_SAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def default_encoder() -> str:
    """$VQREC_ENCODER, else the bundled MiniLM ('minilm')."""
    return os.environ.get("VQREC_ENCODER", "").strip() or "minilm"


# ---------------------------------------------------------------------------------------------------- names


def sanitize_filename(name: str, default: str = "upload") -> str:
    """A safe file name from a user-supplied one: the last path component only, no '..', only [A-Za-z0-9._-].

    The suffix (e.g. '.csv.gz') is kept so the file type can still be recognised. Never returns '', '.' or '..'.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = _SAFE_CHARS.sub("_", base).strip("._") or default
    base = base.replace("..", "_")
    if len(base) > 100:  # keep the (possibly double) suffix
        stem, dot, suffix = base.partition(".")
        base = stem[: 100 - len(suffix) - 1] + dot + suffix[-40:]
    return base


def validate_domain_name(name: str) -> str:
    """Return ``name`` stripped, or raise ConfigError: 1-40 letters, digits, '_' or '-', starting alphanumeric."""
    name = (name or "").strip()
    if not _NAME_RE.match(name):
        raise ConfigError(f"'{name}' is not a valid domain name: use 1-40 letters, digits, '_' or '-', starting "
                          "with a letter or digit (e.g. 'beauty' or 'my_shop-2024').")
    return name


def new_run_id(prefix: str = "run") -> str:
    """Unique, sortable run id: <prefix>-YYYYmmdd-HHMMSS-<8 random hex>."""
    prefix = _SAFE_CHARS.sub("-", prefix).strip("-") or "run"
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def _process_alive(pid: Optional[int], started: Optional[float]) -> bool:
    """True when process ``pid`` exists and (if ``started`` is given) was created at that time (no pid reuse)."""
    if not pid:
        return False
    try:
        import psutil

        p = psutil.Process(int(pid))
        if started is not None and abs(p.create_time() - float(started)) > 2.0:
            return False
        return p.status() != psutil.STATUS_ZOMBIE
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied, psutil missing: treat as gone
        return False


def process_identity() -> dict:
    """pid and creation time of this process, stored in a run's status so a restart can tell it is gone."""
    try:
        import psutil

        started = psutil.Process(os.getpid()).create_time()
    except Exception:  # noqa: BLE001
        started = None
    return {"pid": os.getpid(), "proc_started": started}


# ---------------------------------------------------------------------------------------------------- workspace


class Workspace:
    """A workspace folder. Cheap to construct; every method reads the disk, so two processes stay consistent."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        for sub in ("domains", "cache", "analyses", "runs", "uploads"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ folders
    @property
    def domains_dir(self) -> Path:
        return self.root / "domains"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def analyses_dir(self) -> Path:
        return self.root / "analyses"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict:
        s = _read_json(self.root / "settings.json") or {}
        s.setdefault("encoder", default_encoder())
        return s

    def save_settings(self, **updates: Any) -> dict:
        with self._lock:
            s = self.settings()
            s.update(updates)
            atomic_write_json(self.root / "settings.json", s)
        return s

    # ------------------------------------------------------------------ uploads
    def save_upload(self, data: bytes, filename: str, label: str = "file") -> Path:
        """Store an uploaded file under uploads/<uuid>/<sanitised name>; refuse empty or oversized files."""
        shown = sanitize_filename(filename)
        if data is None or len(data) == 0:
            raise DataError(f"The {label} '{shown}' is empty (0 bytes). Upload a file with a header row and data.")
        if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
            raise DataError(f"The {label} '{shown}' is {len(data) / 2**20:.1f} MB, over the {MAX_UPLOAD_MB} MB upload "
                            "limit. Upload a smaller file (e.g. gzip it: .csv.gz is accepted).")
        folder = self.uploads_dir / uuid.uuid4().hex
        return atomic_write_bytes(folder / shown, data)

    def clear_uploads(self, older_than_s: float = 24 * 3600) -> int:
        """Delete upload folders older than ``older_than_s``; returns how many were removed."""
        n, now = 0, time.time()
        for d in self.uploads_dir.iterdir():
            if d.is_dir() and now - d.stat().st_mtime > older_than_s:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        return n

    def clear_stale_temp_files(self, older_than_s: float = 3600) -> int:
        """Delete ``.*.tmp`` files that an atomic write left behind when its process was killed (nothing reads
        them; the final file names hold either the old or the new complete content). Returns how many."""
        n, now = 0, time.time()
        for f in self.root.rglob(".*.tmp"):
            try:
                if f.is_file() and now - f.stat().st_mtime > older_than_s:
                    f.unlink()
                    n += 1
            except OSError:
                pass
        return n

    # ------------------------------------------------------------------ domains
    def list_domains(self) -> list[str]:
        return sorted(p.parent.name for p in self.domains_dir.glob("*/meta.json"))

    def has_domain(self, name: str) -> bool:
        return (self.domains_dir / name / "meta.json").exists()

    def domain_meta(self, name: str) -> dict:
        meta = _read_json(self.domains_dir / validate_domain_name(name) / "meta.json")
        if meta is None:
            raise DataError(f"There is no domain called '{name}' in the workspace.")
        return meta

    def save_domain(self, domain: _data.Domain, sources: Optional[dict] = None, overwrite: bool = False) -> Path:
        """Write the domain's canonical catalog + log, then meta.json last (its presence = complete)."""
        name = validate_domain_name(domain.name)
        folder = self.domains_dir / name
        if self.has_domain(name) and not overwrite:
            raise ConfigError(f"A domain called '{name}' already exists. Choose another name or delete it first.")
        atomic_write_text(folder / "items.csv", domain.items[["item_id", "text"]].to_csv(index=False))
        atomic_write_text(folder / "interactions.csv",
                          domain.interactions[["user_id", "item_id", "timestamp"]].to_csv(index=False))
        meta = {"name": name, "created": time.time(), "sources": sources or {},
                "report": {"errors": domain.report.errors, "warnings": domain.report.warnings,
                           "info": domain.report.info},
                "stats": _data.domain_stats(domain), "version": uuid.uuid4().hex[:8]}
        atomic_write_json(folder / "meta.json", meta)
        return folder

    def domain_paths(self, name: str) -> tuple[Path, Path]:
        folder = self.domains_dir / validate_domain_name(name)
        return folder / "items.csv", folder / "interactions.csv"

    def load_domain(self, name: str) -> _data.Domain:
        """Read a stored domain back (canonical columns, so no mapping is needed). Raises DataError if missing."""
        meta = self.domain_meta(name)
        items, inter = self.domain_paths(name)
        dom = _data.load_domain(items, inter, name=name, item_id_col="item_id", text_cols=["text"],
                                user_col="user_id", inter_item_col="item_id", time_col="timestamp",
                                encoding="utf-8")
        dom.report = _data.ValidationReport(list(meta["report"].get("errors", [])),
                                            list(meta["report"].get("warnings", [])),
                                            dict(meta["report"].get("info", {})))
        return dom

    def delete_domain(self, name: str) -> None:
        folder = self.domains_dir / validate_domain_name(name)
        if not folder.exists():
            raise DataError(f"There is no domain called '{name}' to delete.")
        # meta.json first: a half-deleted folder is then no longer listed as a domain
        (folder / "meta.json").unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)

    def ensure_samples(self, prime_minilm: bool = True) -> list[str]:
        """Register the bundled sample domains on the first start (once: a deleted sample stays deleted).

        Also seeds the embedding cache with the shipped MiniLM vectors (sample_data/<d>/minilm.npy), so the first
        encoding of the samples is a cache hit. Returns the names registered now.
        """
        from .cliargs import SAMPLE_DIR

        marker = self.root / ".samples_registered"
        added: list[str] = []
        if marker.exists():
            return added
        with self._lock:
            if marker.exists():
                return added
            for name in SAMPLE_DOMAINS:
                items, inter = SAMPLE_DIR / name / "items.csv", SAMPLE_DIR / name / "interactions.csv"
                if self.has_domain(name) or not items.exists():
                    continue
                dom = _data.load_domain(items, inter, name=name)
                self.save_domain(dom, sources={"items": "sample_data/" + name + "/items.csv",
                                               "interactions": "sample_data/" + name + "/interactions.csv",
                                               "sample": True})
                added.append(name)
                if prime_minilm:
                    self.prime_sample_embeddings(name)
            atomic_write_text(marker, "sample domains registered\n")
        return added

    def prime_sample_embeddings(self, name: str) -> bool:
        """Seed the cache with sample_data/<name>/minilm.npy for the stored domain's texts (if shapes agree)."""
        import numpy as np

        from .cliargs import SAMPLE_DIR
        from .text import prime_cache

        path = SAMPLE_DIR / name / "minilm.npy"
        if not path.exists() or not self.has_domain(name):
            return False
        emb = np.load(path, allow_pickle=False)
        texts = self.load_domain(name).titles()
        if emb.shape[0] != len(texts):
            return False
        prime_cache("all-MiniLM-L6-v2", texts, emb, self.cache_dir)
        return True

    # ------------------------------------------------------------------ runs
    def run_dir(self, run_id: str) -> Path:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", run_id or "") or ".." in run_id:
            raise ConfigError(f"'{run_id}' is not a valid run id.")
        return self.runs_dir / run_id

    def create_run(self, config: dict, prefix: str = "run") -> str:
        """Reserve a new unique run folder with config.json and a 'running' status; returns the run id."""
        for _ in range(10):
            run_id = new_run_id(prefix)
            folder = self.run_dir(run_id)
            try:
                folder.mkdir(parents=True, exist_ok=False)  # atomic reservation of the id
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 10 collisions of 32 random bits
            raise ConfigError("Could not reserve a unique run id.")
        atomic_write_json(folder / "config.json", config)
        now = time.time()
        self.write_status(run_id, {"run_id": run_id, "status": "running", "started": now, "heartbeat": now,
                                   "ended": None, "message": "starting", **process_identity()})
        return run_id

    def write_status(self, run_id: str, status: dict) -> None:
        atomic_write_json(self.run_dir(run_id) / "status.json", status)

    def update_status(self, run_id: str, **fields: Any) -> dict:
        with self._lock:
            st = _read_json(self.run_dir(run_id) / "status.json") or {"run_id": run_id}
            st.update(fields)
            self.write_status(run_id, st)
        return st

    def heartbeat(self, run_id: str, message: Optional[str] = None, **fields: Any) -> None:
        upd: dict = {"heartbeat": time.time(), **fields}
        if message is not None:
            upd["message"] = message
        self.update_status(run_id, **upd)

    def run_status(self, run_id: str, now: Optional[float] = None) -> dict:
        """The run's status, with a dead or silent 'running' run rewritten to 'interrupted'."""
        path = self.run_dir(run_id) / "status.json"
        st = _read_json(path)
        if st is None:
            return {"run_id": run_id, "status": "interrupted", "message": "the run has no readable status file"}
        if st.get("status") == "running":
            now = time.time() if now is None else now
            alive = _process_alive(st.get("pid"), st.get("proc_started"))
            stale = now - float(st.get("heartbeat") or 0) > HEARTBEAT_STALE_S
            if not alive or stale:
                why = "its process is gone" if not alive else f"no heartbeat for {now - float(st['heartbeat']):.0f} s"
                st = self.update_status(run_id, status="interrupted", ended=now,
                                        message=f"interrupted: {why} (server restart or crash)")
        return st

    def list_runs(self) -> list[dict]:
        """Status of every run, newest first, with each run's config under 'config'."""
        out = []
        for folder in sorted(self.runs_dir.iterdir(), reverse=True):
            if not folder.is_dir() or not (folder / "status.json").exists():
                continue
            st = self.run_status(folder.name)
            st["config"] = _read_json(folder / "config.json") or {}
            out.append(st)
        return out

    def delete_run(self, run_id: str) -> None:
        st = self.run_status(run_id)
        if st.get("status") == "running":
            raise ConfigError(f"Run '{run_id}' is still running; stop it before deleting it.")
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # ------------------------------------------------------------------ tables (analyses, run results)
    def analysis_dir(self, key: str) -> Path:
        if not re.match(r"^[A-Za-z0-9_-]+$", key):
            raise ConfigError(f"'{key}' is not a valid analysis key.")
        return self.analyses_dir / key

    def list_analyses(self) -> list[dict]:
        out = []
        for meta in sorted(self.analyses_dir.glob("*/meta.json")):
            m = _read_json(meta)
            if m is not None:
                out.append({"key": meta.parent.name, **m})
        return sorted(out, key=lambda m: -float(m.get("created", 0)))


def save_tables(folder: str | os.PathLike, tables: dict[str, pd.DataFrame], meta: dict) -> Path:
    """Each table as <name>.csv, then meta.json (listing the tables) last: its presence means complete."""
    folder = Path(folder)
    for name, df in tables.items():
        atomic_write_text(folder / f"{name}.csv", df.to_csv(index=False))
    atomic_write_json(folder / "meta.json", {**meta, "tables": sorted(tables), "created": meta.get("created",
                                                                                                   time.time())})
    return folder


def load_tables(folder: str | os.PathLike) -> Optional[tuple[dict[str, pd.DataFrame], dict]]:
    """(tables, meta) saved by :func:`save_tables`, or None if the folder is incomplete."""
    folder = Path(folder)
    meta = _read_json(folder / "meta.json")
    if meta is None:
        return None
    tables = {}
    for name in meta.get("tables", []):
        p = folder / f"{name}.csv"
        if not p.exists():
            return None
        try:
            tables[name] = pd.read_csv(p, keep_default_na=True)
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
    return tables, meta


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def open_workspace(root: Optional[str | os.PathLike] = None, samples: bool = True) -> Workspace:
    """The workspace at ``root`` (default $VQREC_WORKSPACE or ./workspace), with the samples registered."""
    from .cliargs import default_workspace

    ws = Workspace(root or default_workspace())
    ws.clear_uploads()
    ws.clear_stale_temp_files()
    if samples:
        ws.ensure_samples()
    return ws

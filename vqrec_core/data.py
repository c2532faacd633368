"""Domains: load an item catalog + interaction log, validate them, filter, split, and describe them.

Reference: DESIGN.md §2 "Data protocol" and §5 "Data formats"; the split follows VQ-Rec / RecBole's leave-one-out
(chronological order per user; last item = test, second-to-last = validation, every earlier prefix = a training
sample; histories truncated to the last ``max_len`` items).

Deliberate choices:
- Ids are read as strings everywhere, so ``100``, ``"100"`` and ``100.0`` in different files do not silently
  disagree (a trailing ``.0`` produced by spreadsheet exports is stripped).
- Users with fewer than 3 interactions cannot be evaluated; they are reported as a warning and their
  interactions still feed training (a 2-item user gives one training pair).
- Ties in timestamps keep the row order of the file (stable sort), as upstream's files are already ordered.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import html
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from .errors import DataError

# Column names tried, in order, when the caller does not map a column.
ITEM_ID_CANDIDATES = ("item_id", "itemid", "item", "iid", "asin", "parent_asin", "product_id", "id")
TEXT_CANDIDATES = ("title", "name", "text", "description", "item_text", "product_title")
USER_CANDIDATES = ("user_id", "userid", "user", "uid", "reviewerid", "customer_id")
TIME_CANDIDATES = ("timestamp", "time", "ts", "unixreviewtime", "datetime", "date", "rating_time")

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".item", ".inter")
MAX_EXAMPLES = 5  # offending rows quoted in a message

# Limits (docs/robustness.md). Files beyond them are refused with a DataError naming the limit, before they are
# parsed, so a huge upload cannot exhaust memory. MAX_FILE_BYTES matches the app's upload cap
# (.streamlit/config.toml server.maxUploadSize = 100) and applies to the file on disk and, for .gz, to its
# decompressed content (a gzip bomb stops at the limit). Row limits bound the split: 2M interactions give ~1.6M
# training prefixes of max_len=50, i.e. ~0.7 GB of int64 histories.
MAX_FILE_BYTES = 100 * 2**20  # 100 MiB per file
MAX_ITEMS = 1_000_000  # catalog rows
MAX_INTERACTIONS = 2_000_000  # interaction-log rows
MAX_ABS_TIMESTAMP = 1e12  # seconds (~year 33,700); larger values (after the milliseconds check) are refused


# ----------------------------------------------------------------------------------------------------------------
# Report


@dataclass
class ValidationReport:
    """Errors block use of the domain; warnings inform. Each entry is one full sentence."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # e.g. detected encodings and the column mapping used

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, other: ValidationReport) -> None:
        self.errors += other.errors
        self.warnings += other.warnings
        self.info.update(other.info)

    def format(self) -> str:
        lines = [f"ERROR: {e}" for e in self.errors] + [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines) if lines else "No problems found."


def _examples(values: Sequence, n: int = MAX_EXAMPLES) -> str:
    vals = list(values)
    shown = ", ".join(repr(v) for v in vals[:n])
    return shown + (f" (and {len(vals) - n} more)" if len(vals) > n else "")


def _rows(index: Sequence[int], n: int = MAX_EXAMPLES) -> str:
    """Human row numbers: 1-based data rows (header not counted)."""
    rows = [int(i) + 1 for i in list(index)[:n]]
    more = len(index) - n
    return ", ".join(map(str, rows)) + (f" (and {more} more)" if more > 0 else "")


# ----------------------------------------------------------------------------------------------------------------
# Reading files


def detect_encoding(raw: bytes) -> str:
    """Guess the text encoding of ``raw``: BOMs, then strict UTF-8, then Windows-1252, then Latin-1 (never fails).

    Statistical detectors mislabel short Western-European files (e.g. as cp1250), so they are not used;
    other encodings can be chosen explicitly. The check decodes in slices, so it never holds a second full copy."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if raw.startswith(b"\xff\xfe") or raw.startswith(b"\xfe\xff"):
        return "utf-16"
    for enc in ("utf-8", "cp1252"):  # cp1252 = Windows Latin-1: the common non-UTF-8 encoding of Western catalogs
        if _decodes(raw, enc):
            return enc
    return "latin-1"


def _decodes(raw: bytes, enc: str, chunk: int = 8 * 2**20) -> bool:
    dec = codecs.getincrementaldecoder(enc)("strict")
    view = memoryview(raw)
    try:
        for i in range(0, len(raw), chunk):
            dec.decode(view[i:i + chunk], final=i + chunk >= len(raw))
        return True
    except UnicodeDecodeError:
        return False


def safe_upload_name(name: str) -> str:
    """Check that an uploaded file's name is a plain file name, and return it.

    Raises DataError for names with a folder part (``/`` or ``\\``), ``..``, control characters, or a leading dot,
    so an upload can never be written outside the folder the app chose (path traversal such as ``../../x.csv``)."""
    bad = (not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith(".")
           or any(ord(ch) < 32 for ch in name) or len(name) > 255)
    if bad:
        raise DataError(
            f"The file name {name!r} is not allowed: upload names must be plain file names without folders, "
            f"'..', a leading dot or control characters (e.g. 'items.csv'). Rename the file and upload it again."
        )
    return name


def _limit_error(label: str, name: str, what: str) -> DataError:
    return DataError(
        f"The {label} '{name}' is {what}, which is over the limit of {MAX_FILE_BYTES // 2**20} MiB per file. "
        f"Filter it first (e.g. a k-core or a sample of users) or split the domain."
    )


def _read_bytes_capped(path: Path, gz: bool, label: str, name: str) -> bytes:
    """The file's bytes (decompressed for .gz), refusing more than MAX_FILE_BYTES before reading them all."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _limit_error(label, name, f"{size / 2**20:.0f} MiB")
    if not gz:
        try:
            return path.read_bytes()
        except OSError as e:
            raise DataError(f"The {label} '{name}' cannot be read ({e.strerror or e}).") from None
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"The {label} '{name}' ends in .gz but is not a readable gzip file ({e}).") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _limit_error(label, name, f"more than {MAX_FILE_BYTES // 2**20} MiB once decompressed")
    return raw


def _check_rows(n: int, limit: int, label: str, name: str, what: str) -> None:
    if n > limit:
        raise DataError(
            f"The {label} '{name}' has {n:,} rows, over the limit of {limit:,} {what}. Filter it first (e.g. a "
            f"k-core or a sample of users)."
        )


def _file_kind(path: Path) -> tuple[str, bool]:
    """(suffix without .gz, gzipped?)"""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), gz


RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")


def _check_recbole_types(columns: Sequence[str], name: str, label: str, rep: ValidationReport) -> None:
    """Warn about ``name:type`` headers whose type RecBole does not define (the column is still read as text)."""
    bad = [c for c in columns if ":" in c and c.split(":", 1)[1].strip() not in RECBOLE_TYPES]
    if bad:
        rep.warnings.append(
            f"The {label} '{name}' has column header(s) with an unknown RecBole type: {_examples(bad)} (RecBole "
            f"types are {', '.join(RECBOLE_TYPES)}); the part after ':' was ignored and the column read as text."
        )


def _strip_recbole_types(columns: Sequence[str]) -> list[str]:
    """RecBole atomic headers look like ``item_id:token``; keep the name part."""
    return [c.split(":", 1)[0] if ":" in c else c for c in columns]


def _guess_separator(text: str, default: str) -> str:
    head = "\n".join(text.splitlines()[:20])
    counts = {sep: head.splitlines()[0].count(sep) if head else 0 for sep in (",", "\t", ";", "|")}
    if counts.get(default, 0) > 0:
        return default
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else default


def read_table(path: str | os.PathLike, encoding: Optional[str] = None, label: str = "file",
               display_name: Optional[str] = None) -> tuple[pd.DataFrame, ValidationReport]:
    """Read a CSV/TSV/JSONL/Parquet/RecBole atomic file into a DataFrame of strings.

    Returns the frame and a report (warnings about encoding, delimiter, skipped lines). Raises DataError when the
    file cannot be read at all. ``display_name`` is how the file is named in messages (e.g. an upload's name).
    """
    path = Path(path)
    name = display_name or path.name
    rep = ValidationReport()
    if not path.exists():
        raise DataError(f"The {label} '{name}' does not exist. Check the path.")
    kind, gz = _file_kind(path)
    if kind not in SUPPORTED_SUFFIXES:
        raise DataError(
            f"The {label} '{name}' has the unsupported type '{kind or '(none)'}'. "
            f"Use one of: {', '.join(SUPPORTED_SUFFIXES)} (optionally .gz)."
        )
    if path.is_dir():
        raise DataError(f"The {label} '{name}' is a folder, not a file.")
    if not path.is_file():  # a FIFO or device (e.g. /dev/zero) has no size to check and may never end
        raise DataError(f"The {label} '{name}' is not a regular file.")
    raw = _read_bytes_capped(path, gz, label, name)
    if not raw.strip():
        raise DataError(f"The {label} '{name}' is empty. Upload a file with a header row and data rows.")

    if kind == ".parquet":
        return _read_parquet(raw, name, label, rep), rep

    enc = encoding or detect_encoding(raw)
    try:
        codecs.lookup(enc)
    except LookupError:
        raise DataError(f"'{enc}' is not a known text encoding. Use e.g. utf-8, latin-1 or cp1252.") from None
    if enc not in ("utf-8", "utf-8-sig", "ascii"):
        rep.warnings.append(f"The {label} '{name}' is not UTF-8; it was read as {enc}.")
    rep.info[f"{label}_encoding"] = enc
    decode_error = DataError(f"The {label} '{name}' cannot be decoded as {enc}. Choose another text encoding "
                             f"(e.g. latin-1).")
    wide = codecs.lookup(enc).name.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in raw[:65536]:
        raise DataError(
            f"The {label} '{name}' looks like a binary file, not text (it contains NUL bytes). Upload a CSV, TSV, "
            f"JSON Lines or Parquet file; if it is UTF-16 text without a byte-order mark, choose the encoding utf-16."
        )
    if wide:
        try:  # the C parser reads byte streams; re-encode wide encodings to UTF-8 once
            raw = raw.decode(enc).lstrip("\ufeff").encode("utf-8")
        except UnicodeDecodeError:
            raise decode_error from None
        enc = "utf-8"
    elif enc in ("utf-8", "utf-8-sig"):
        enc = "utf-8-sig"  # tolerate a BOM

    if kind in (".jsonl", ".ndjson", ".json"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            raise decode_error from None
        df = _read_jsonl(text.lstrip("\ufeff"), name, label, rep)
    else:
        default = "," if kind == ".csv" else "\t"
        head = raw[:65536].decode(enc, errors="replace").lstrip("\ufeff")
        sep = _guess_separator(head, default)
        if sep != default:
            rep.warnings.append(
                f"The {label} '{name}' does not use the expected delimiter {default!r}; it was read with {sep!r}."
            )
        quoting = csv.QUOTE_NONE if kind in (".item", ".inter") and sep != "," else csv.QUOTE_MINIMAL
        df = _read_csv_arrow(raw, sep) if enc == "utf-8-sig" and quoting == csv.QUOTE_MINIMAL else None
        try:
            if df is None:  # the C parser: other encodings, RecBole files, and any file Arrow refused (its message
                #             names the bad line)
                df = pd.read_csv(io.BytesIO(raw), sep=sep, dtype=str, keep_default_na=False, na_values=[],
                                 encoding=enc, quoting=quoting, on_bad_lines="error",
                                 engine="python" if sep == "|" else "c")
        except UnicodeDecodeError:
            raise decode_error from None
        except pd.errors.EmptyDataError:
            raise DataError(f"The {label} '{name}' has no columns. Upload a file with a header row.") from None
        except (pd.errors.ParserError, ValueError) as e:
            raise DataError(f"The {label} '{name}' is not a well-formed table ({str(e).strip()}).") from None
        cols = [str(c).strip() for c in df.columns]
        if kind in (".item", ".inter") or any(c.split(":", 1)[-1] in RECBOLE_TYPES for c in cols if ":" in c):
            _check_recbole_types(cols, name, label, rep)
        df.columns = _strip_recbole_types(cols)
        del raw
    if len(df) == 0:
        raise DataError(f"The {label} '{name}' has a header but no data rows.")
    return df, rep


def _read_csv_arrow(raw: bytes, sep: str) -> Optional[pd.DataFrame]:
    """Every column as text with pyarrow's CSV reader (one thread, ~5x faster than pandas' C parser with
    ``dtype=str``); None when the file is not a clean UTF-8 table (the caller falls back and reports the problem)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buf = pa.py_buffer(raw)
    if raw.startswith(codecs.BOM_UTF8):
        buf = buf.slice(3)
    try:
        first = raw[3 if raw.startswith(codecs.BOM_UTF8) else 0:65536].decode("utf-8", "ignore")
        header = next(csv.reader(io.StringIO(first), delimiter=sep))
    except (StopIteration, csv.Error):
        return None
    if not header or len(set(header)) != len(header) or any(h == "" for h in header):
        return None
    try:
        table = pacsv.read_csv(
            pa.BufferReader(buf),
            read_options=pacsv.ReadOptions(use_threads=False, encoding="utf8"),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header}, null_values=[],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    if table.column_names != header:
        return None
    return table.to_pandas()


def _read_parquet(raw: bytes, name: str, label: str, rep: ValidationReport) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(raw))
        n = pf.metadata.num_rows  # checked before decompressing: Parquet compresses well, the byte cap is not enough
        _check_rows(n, max(MAX_ITEMS, MAX_INTERACTIONS), label, name, "rows")
        df = pf.read().to_pandas()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        raise DataError(f"The {label} '{name}' is not a readable Parquet file ({type(e).__name__}: {e}).") from None
    if len(df) == 0:
        raise DataError(f"The {label} '{name}' has a header but no data rows.")
    return _stringify(df, name, label, rep)


def _read_jsonl(text: str, name: str, label: str, rep: ValidationReport) -> pd.DataFrame:
    records, bad = [], []
    stripped = text.strip()
    if stripped.startswith("["):  # a plain JSON array is accepted too
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise DataError(f"The {label} '{name}' is not valid JSON ({e}).") from None
        records = [r for r in data if isinstance(r, dict)]
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                bad.append(lineno)
                continue
            if isinstance(obj, dict):
                records.append(obj)
            else:
                bad.append(lineno)
    if not records:
        raise DataError(f"The {label} '{name}' holds no JSON objects (one object per line is expected).")
    if bad:
        rep.warnings.append(
            f"The {label} '{name}' has {len(bad)} line(s) that are not JSON objects; they were skipped "
            f"(lines {_examples(bad)})."
        )
    return _stringify(pd.DataFrame.from_records(records), name, label, rep)


def _stringify(df: pd.DataFrame, name: str, label: str, rep: ValidationReport) -> pd.DataFrame:
    """Turn every scalar column into strings; nested columns (lists/dicts) are kept as-is and flagged later."""
    out = {}
    for col in df.columns:
        s = df[col]
        sample = s.dropna().head(50).tolist()
        if any(isinstance(v, (list, dict, tuple, np.ndarray)) for v in sample):
            out[str(col)] = s  # nested: mapping step decides (text lists are joined, ids are refused)
            continue
        out[str(col)] = s.map(_scalar_to_str)
    res = pd.DataFrame(out)
    res.columns = _strip_recbole_types([str(c).strip() for c in res.columns])
    return res


def _scalar_to_str(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


_TRAILING_ZERO = re.compile(r"^-?\d+\.0+$")


def _norm_ids(s: pd.Series, rep: Optional[ValidationReport] = None, name: str = "", col: str = "") -> pd.Series:
    """Ids as stripped strings; ``'3.0'`` -> ``'3'`` (spreadsheet exports), reported as a warning when it happens."""
    if s.dtype == object:
        s = s.map(_scalar_to_str)  # mixed Python types (JSON ints, floats, strings) -> one string form each
    s = s.astype(str).str.strip()
    fix = s.str.contains(_TRAILING_ZERO.pattern, regex=True)  # no back-reference: stays vectorised
    if fix.any():
        if rep is not None:
            rep.warnings.append(
                f"{int(fix.sum())} id(s) in column '{col}' of '{name}' are written as decimals "
                f"({_examples(s[fix].unique(), 3)}); they were read as whole numbers so they match the other file."
            )
        s = s.copy()
        s[fix] = s[fix].str.replace(r"\.0+$", "", regex=True)
    return s


def _refuse_nested(df: pd.DataFrame, col: str, what: str, name: str) -> None:
    if df[col].dtype == object and df[col].map(lambda v: isinstance(v, (list, dict, tuple, np.ndarray))).any():
        raise DataError(f"The {what} column '{col}' in '{name}' holds nested values (lists or records); ids must be "
                        f"plain values. Flatten the file or map another column.")


# ----------------------------------------------------------------------------------------------------------------
# Column mapping


def _pick(columns: Sequence[str], wanted: Optional[str], candidates: Sequence[str], what: str, name: str,
          flag: str, required: bool = True) -> Optional[str]:
    if wanted:
        if wanted in columns:
            return wanted
        raise DataError(
            f"The column '{wanted}' given as the {what} is not in '{name}'. Its columns are: {', '.join(columns)}."
        )
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    if required:
        raise DataError(
            f"'{name}' has no {what} column (looked for {', '.join(candidates[:5])}...). Its columns are: "
            f"{', '.join(columns)}. Name the right one with {flag}."
        )
    return None


def _text_of(df: pd.DataFrame, cols: Sequence[str], name: str, rep: Optional[ValidationReport] = None) -> pd.Series:
    parts = []
    for c in cols:
        s = df[c]
        if s.dtype == object and s.map(lambda v: isinstance(v, dict)).any():
            raise DataError(f"The text column '{c}' in '{name}' holds nested records (key/value objects), not text; "
                            f"choose a plain text column with --text-cols or flatten the file.")
        if rep is not None and s.dtype == object and s.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            rep.warnings.append(f"The text column '{c}' in '{name}' holds lists; their elements were joined with "
                                f"spaces.")
        parts.append(s.map(lambda v: " ".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray))
                           else ("" if v is None else str(v))))
    text = parts[0]
    for p in parts[1:]:
        text = text.str.cat(p, sep=" ")
    amp = text.str.contains("&", regex=False)  # unescape only rows that can hold an entity
    if amp.any():
        text = text.copy()
        text[amp] = text[amp].map(html.unescape)
    return text.str.replace(r"\s+", " ", regex=True).str.strip()


def _time_error(rep: ValidationReport, s: pd.Series, message: str) -> pd.Series:
    """Record a timestamp error; the placeholder times returned are never used (the report blocks the domain)."""
    rep.errors.append(message)
    return pd.Series(np.zeros(len(s), dtype=np.int64), index=s.index)


def _parse_time(s: pd.Series, name: str, col: str, rep: ValidationReport) -> pd.Series:
    """Numbers (Unix seconds or milliseconds) or date strings -> int64 seconds. Unparseable rows are an error."""
    s = s.astype(str).str.strip()
    missing = s.eq("")
    try:  # fast path: every value is a plain number (vectorised cast, no per-row Python)
        num = s.astype("float64")
    except (ValueError, TypeError):
        num = pd.to_numeric(s, errors="coerce")
    numeric_share = num[~missing].notna().mean() if (~missing).any() else 1.0
    num = num.where(np.isfinite(num.to_numpy(dtype="float64", na_value=np.nan)))  # 'nan'/'inf' are not times
    if numeric_share >= 0.5:  # a numeric column: the non-numeric values are the offenders
        vals, bad = num, num.isna() & ~missing
    else:  # a column of dates: the values no date parser understands are the offenders
        dt = pd.to_datetime(s.where(~missing), errors="coerce", utc=True, format="mixed")
        bad = dt.isna() & ~missing
        vals = (dt - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    if bad.any():
        idx = np.flatnonzero(bad.to_numpy())
        return _time_error(rep, s,
            f"The timestamp column '{col}' in '{name}' has {len(idx)} value(s) that are neither numbers nor "
            f"dates: rows {_rows(idx)} (e.g. {_examples(s[bad].tolist(), 3)}). Fix them or map no timestamp "
            f"column to use the row order.")
    if missing.any():
        idx = np.flatnonzero(missing.to_numpy())
        return _time_error(rep, s,
            f"The timestamp column '{col}' in '{name}' is empty in {len(idx)} row(s): rows {_rows(idx)}. "
            f"Fill them or map no timestamp column to use the row order.")
    vals = vals.astype("float64")
    if (vals < 0).any():
        idx = np.flatnonzero((vals < 0).to_numpy())
        rep.warnings.append(
            f"The timestamp column '{col}' in '{name}' has {len(idx)} negative value(s) (rows {_rows(idx)}); "
            f"they are kept as times before 1970."
        )
    if len(vals) and vals.abs().median() > 1e11:
        rep.warnings.append(
            f"The timestamps in '{name}' look like milliseconds; they were converted to seconds."
        )
        vals = vals // 1000
    out_of_range = vals.abs() > MAX_ABS_TIMESTAMP
    if out_of_range.any():
        idx = np.flatnonzero(out_of_range.to_numpy())
        return _time_error(rep, s,
            f"The timestamp column '{col}' in '{name}' has {len(idx)} value(s) too large to be Unix times in "
            f"seconds or milliseconds: rows {_rows(idx)} (e.g. {_examples(s[out_of_range].tolist(), 3)}).")
    return vals.round().astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Domain


@dataclass
class Domain:
    """One catalog + one interaction log. Item ``i`` of the domain is row ``i`` of ``items``."""

    name: str
    items: pd.DataFrame  # item_id (str), text (str)
    interactions: pd.DataFrame  # user_id (str), item_id (str), timestamp (int64)
    report: ValidationReport = field(default_factory=ValidationReport)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def item_index(self) -> pd.Series:
        """item_id -> 0-based item index."""
        return pd.Series(np.arange(len(self.items), dtype=np.int64), index=self.items["item_id"].to_numpy())

    def titles(self) -> list[str]:
        return self.items["text"].tolist()


def check_domain(
    items_path: str | os.PathLike,
    interactions_path: str | os.PathLike,
    name: Optional[str] = None,
    item_id_col: Optional[str] = None,
    text_cols: Optional[Sequence[str]] = None,
    user_col: Optional[str] = None,
    inter_item_col: Optional[str] = None,
    time_col: Optional[str] = None,
    encoding: Optional[str] = None,
    items_name: Optional[str] = None,
    interactions_name: Optional[str] = None,
) -> tuple[Optional[Domain], ValidationReport]:
    """Load and validate a domain. Never raises for bad input: returns (None or Domain, report).

    The domain is returned whenever the report has no errors. ``*_name`` are display names for messages.
    """
    rep = ValidationReport()
    iname = items_name or Path(items_path).name
    lname = interactions_name or Path(interactions_path).name
    try:
        items_raw, r = read_table(items_path, encoding, "item catalog", iname)
        rep.extend(r)
        inter_raw, r = read_table(interactions_path, encoding, "interaction log", lname)
        rep.extend(r)
    except DataError as e:
        rep.errors.append(str(e))
        return None, rep
    dom_name = name or Path(items_path).parent.name or Path(items_path).stem
    dom, r = domain_from_frames(items_raw, inter_raw, iname, lname, name=dom_name, item_id_col=item_id_col,
                                text_cols=text_cols, user_col=user_col, inter_item_col=inter_item_col,
                                time_col=time_col)
    rep.extend(r)
    if dom is not None:
        dom.report = rep
    return dom, rep


def domain_from_frames(
    items_raw: pd.DataFrame,
    inter_raw: pd.DataFrame,
    items_name: str = "items",
    interactions_name: str = "interactions",
    name: Optional[str] = None,
    item_id_col: Optional[str] = None,
    text_cols: Optional[Sequence[str]] = None,
    user_col: Optional[str] = None,
    inter_item_col: Optional[str] = None,
    time_col: Optional[str] = None,
) -> tuple[Optional[Domain], ValidationReport]:
    """Map and validate two frames as returned by :func:`read_table` (the second half of :func:`check_domain`)."""
    rep = ValidationReport()
    iname, lname = items_name, interactions_name
    try:
        _check_rows(len(items_raw), MAX_ITEMS, "item catalog", iname, "items")
        _check_rows(len(inter_raw), MAX_INTERACTIONS, "interaction log", lname, "interactions")
        items, inter = _map_columns(items_raw, inter_raw, iname, lname, item_id_col, text_cols, user_col,
                                    inter_item_col, time_col, rep)
    except DataError as e:
        rep.errors.append(str(e))
        return None, rep
    if rep.errors:
        return None, rep
    _validate(items, inter, iname, lname, rep)
    if rep.errors:
        return None, rep
    items = items.drop_duplicates("item_id", keep="first").reset_index(drop=True)
    inter = inter.drop_duplicates(keep="first").reset_index(drop=True)
    return Domain(name or Path(iname).stem, items, inter, rep), rep


def load_domain(items_path, interactions_path, name=None, **mapping) -> Domain:
    """Like :func:`check_domain` but raises DataError (whose message lists every error) when unusable."""
    dom, rep = check_domain(items_path, interactions_path, name=name, **mapping)
    if dom is None:
        err = DataError("This domain cannot be used:\n" + "\n".join(f"- {e}" for e in rep.errors))
        err.report = rep  # type: ignore[attr-defined]
        raise err
    return dom


def _map_columns(items_raw, inter_raw, iname, lname, item_id_col, text_cols, user_col, inter_item_col, time_col,
                 rep: ValidationReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    icols = list(items_raw.columns)
    id_c = _pick(icols, item_id_col, ITEM_ID_CANDIDATES, "item id", iname, "--item-id-col")
    if text_cols:
        missing = [c for c in text_cols if c not in icols]
        if missing:
            raise DataError(
                f"The text column(s) {', '.join(missing)} are not in '{iname}'. Its columns are: {', '.join(icols)}."
            )
        tcols = list(text_cols)
    else:
        t = _pick([c for c in icols if c != id_c], None, TEXT_CANDIDATES, "text", iname, "--text-cols")
        tcols = [t]
    _refuse_nested(items_raw, id_c, "item id", iname)
    items = pd.DataFrame({"item_id": _norm_ids(items_raw[id_c], rep, iname, id_c),
                          "text": _text_of(items_raw, tcols, iname, rep)})

    lcols = list(inter_raw.columns)
    u_c = _pick(lcols, user_col, USER_CANDIDATES, "user id", lname, "--user-col")
    it_c = _pick([c for c in lcols if c != u_c], inter_item_col, ITEM_ID_CANDIDATES, "item id", lname,
                 "--inter-item-col")
    t_c = _pick([c for c in lcols if c not in (u_c, it_c)], time_col, TIME_CANDIDATES, "timestamp", lname,
                "--time-col", required=False)
    for col, what in ((u_c, "user id"), (it_c, "item id")):
        _refuse_nested(inter_raw, col, what, lname)
    inter = pd.DataFrame({"user_id": _norm_ids(inter_raw[u_c], rep, lname, u_c),
                          "item_id": _norm_ids(inter_raw[it_c], rep, lname, it_c)})
    if t_c is None:
        rep.warnings.append(
            f"'{lname}' has no timestamp column; the order of its rows is used as the order of each user's items."
        )
        inter["timestamp"] = np.arange(len(inter), dtype=np.int64)
    else:
        inter["timestamp"] = _parse_time(inter_raw[t_c], lname, t_c, rep).to_numpy()
    rep.info["mapping"] = {"item_id": id_c, "text": tcols, "user": u_c, "interaction_item": it_c, "timestamp": t_c}
    return items, inter


def _validate(items: pd.DataFrame, inter: pd.DataFrame, iname: str, lname: str, rep: ValidationReport) -> None:
    empty_id = items["item_id"].eq("")
    if empty_id.any():
        rep.errors.append(f"'{iname}' has {int(empty_id.sum())} row(s) without an item id: rows "
                          f"{_rows(np.flatnonzero(empty_id.to_numpy()))}.")
    dup = items["item_id"].duplicated(keep=False) & ~empty_id
    if dup.any():
        d = items[dup]
        conflicting = d.groupby("item_id")["text"].nunique()
        conflicting = conflicting[conflicting > 1].index.tolist()
        msg = f"'{iname}' lists {d['item_id'].nunique()} item id(s) more than once ({_examples(d['item_id'].unique())})"
        if conflicting:
            msg += f"; {len(conflicting)} of them with different texts ({_examples(conflicting)})"
        rep.warnings.append(msg + "; the first row of each is used.")
    text_empty = items["text"].eq("")
    if text_empty.all():
        rep.errors.append(f"Every item in '{iname}' has empty text, so there is nothing to encode. Map a text column "
                          f"that has content (e.g. the title).")
    elif text_empty.any():
        rep.warnings.append(f"{int(text_empty.sum())} item(s) in '{iname}' have empty text (rows "
                            f"{_rows(np.flatnonzero(text_empty.to_numpy()))}); they are encoded from an empty string.")
    empty_u = inter["user_id"].eq("") | inter["item_id"].eq("")
    if empty_u.any():
        rep.errors.append(f"'{lname}' has {int(empty_u.sum())} row(s) with an empty user or item id: rows "
                          f"{_rows(np.flatnonzero(empty_u.to_numpy()))}.")
    known = pd.Index(items["item_id"]).unique()
    pos = known.get_indexer(inter["item_id"])  # [N] -1 = not in the catalog (hash lookup, no per-row Python)
    unknown_mask = pd.Series(pos < 0, index=inter.index) & ~inter["item_id"].eq("")
    if unknown_mask.any():
        unknown = inter.loc[unknown_mask, "item_id"].unique()
        rep.errors.append(
            f"'{lname}' names {len(unknown)} item id(s) that are not in the catalog '{iname}': "
            f"{_examples(unknown)} (rows {_rows(np.flatnonzero(unknown_mask.to_numpy()))}). Check that both files "
            f"belong to the same domain and that the id columns are mapped correctly."
        )
    if rep.errors:
        return
    dups = inter.duplicated(keep="first")
    if dups.any():
        rep.warnings.append(f"'{lname}' has {int(dups.sum())} duplicate row(s) (same user, item and time; rows "
                            f"{_rows(np.flatnonzero(dups.to_numpy()))}); duplicates are dropped.")
    counts = inter[~dups.to_numpy()].groupby("user_id").size()
    short = counts[counts < 3]
    if len(short) == len(counts):
        rep.errors.append(f"No user in '{lname}' has 3 or more interactions, so no user can be evaluated with "
                          f"leave-one-out. Upload a longer log.")
    elif len(short):
        rep.warnings.append(
            f"{len(short)} of {len(counts)} users in '{lname}' have fewer than 3 interactions ({_examples(short.index)}"
            f"); they cannot be evaluated and only feed training."
        )
    unused = len(known) - len(np.unique(pos))
    if unused:
        rep.warnings.append(f"{unused} item(s) of '{iname}' never occur in '{lname}'; they stay in the catalog and "
                            f"are ranked like every other item.")


# ----------------------------------------------------------------------------------------------------------------
# Filtering, splitting, statistics


def k_core(domain: Domain, k: int = 5, drop_unused_items: bool = True) -> Domain:
    """Iteratively keep users and items with at least ``k`` interactions (DESIGN.md: optional 5-core)."""
    inter = domain.interactions
    while True:
        uc = inter.groupby("user_id")["item_id"].transform("size")
        ic = inter.groupby("item_id")["user_id"].transform("size")
        keep = (uc >= k) & (ic >= k)
        if keep.all():
            break
        inter = inter[keep]
    if len(inter) == 0:
        raise DataError(f"No interactions survive {k}-core filtering of '{domain.name}'. Use a smaller k.")
    items = domain.items
    if drop_unused_items:
        items = items[items["item_id"].isin(set(inter["item_id"]))].reset_index(drop=True)
    return Domain(domain.name, items, inter.reset_index(drop=True), domain.report)


@dataclass
class SeqSamples:
    """A batch-able set of (history, next item) samples; see docs/CONTRACTS.md."""

    user: np.ndarray  # object [n] user id per sample
    seq: np.ndarray  # int64 [n, max_len] item index + 1, left-aligned, 0-padded
    length: np.ndarray  # int64 [n] real items in seq, 1..max_len
    target: np.ndarray  # int64 [n] 0-based item index

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, idx) -> SeqSamples:
        return SeqSamples(self.user[idx], self.seq[idx], self.length[idx], self.target[idx])


@dataclass
class Split:
    n_items: int
    max_len: int
    train: SeqSamples
    valid: SeqSamples
    test: SeqSamples
    train_item_mask: np.ndarray  # bool [n_items]
    user_items: dict  # user id -> int64 array of item indices, chronological

    @property
    def n_eval_users(self) -> int:
        return len(self.test)


def user_sequences(domain: Domain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chronological item indices of all users, flattened: (users [U], offsets [U+1], items [N])."""
    inter = domain.interactions
    item_idx = pd.Index(domain.items["item_id"]).get_indexer(inter["item_id"])  # [N], -1 = not in the catalog
    if (item_idx < 0).any():
        raise DataError(f"Interactions of '{domain.name}' name items missing from its catalog.")
    uinv, users = pd.factorize(inter["user_id"], sort=True)  # hash-based, much faster than np.unique on strings
    users = np.asarray(users, dtype=object)
    order = np.lexsort((np.arange(len(inter)), inter["timestamp"].to_numpy(), uinv))  # stable on ties
    items = item_idx.astype(np.int64)[order]
    counts = np.bincount(uinv, minlength=len(users))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return users, offsets, items


def _gather(items: np.ndarray, start: np.ndarray, end: np.ndarray, users: np.ndarray, targets: np.ndarray,
            max_len: int, items_pad: Optional[np.ndarray] = None) -> SeqSamples:
    """History items[max(start, end-max_len):end] per sample, left-aligned and shifted by +1.

    ``items_pad`` = items + 1 followed by one 0 (the padding sentinel); indices past a history point at it, so one
    gather fills both the items and the padding."""
    if items_pad is None:
        items_pad = np.concatenate([items + 1, [0]]).astype(np.int64)
    sentinel = len(items_pad) - 1
    idt = np.int32 if len(items_pad) < 2**31 else np.int64  # half the index bandwidth on ordinary sizes
    length = np.minimum(end - start, max_len).astype(np.int64)  # [n]
    first = (end - length).astype(idt)  # [n]
    j = np.arange(max_len, dtype=idt)[None, :]  # [1, L]
    src = first[:, None] + j  # [n, L]
    src[j >= length[:, None].astype(idt)] = sentinel  # [n, L] padding positions -> the 0 sentinel
    seq = items_pad[src]  # [n, L] int64
    return SeqSamples(users, seq, length, targets.astype(np.int64))


def split_leave_one_out(domain: Domain, max_len: int = 50) -> Split:
    """Chronological leave-one-out with prefix expansion (DESIGN.md §2).

    For a user with items i_1..i_n (n >= 3): test = (i_1..i_{n-1} -> i_n), valid = (i_1..i_{n-2} -> i_{n-1}),
    train = (i_1..i_{t-1} -> i_t) for t = 2..n-2. Users with n < 3 only give training pairs t = 2..n.
    """
    if max_len < 1:
        raise DataError("max_len must be at least 1.")
    users, off, items = user_sequences(domain)
    n_u = np.diff(off)  # [U]
    evaluable = n_u >= 3
    if not evaluable.any():
        raise DataError(f"No user of '{domain.name}' has 3 or more interactions; nothing can be evaluated.")
    # training targets: positions 1..n-3 (0-based) for evaluable users, 1..n-1 for short users
    last_train = np.where(evaluable, n_u - 3, n_u - 1)  # [U] last training target position (inclusive)
    n_train = np.maximum(last_train, 0)  # [U] count of positions 1..last_train
    u_rep = np.repeat(np.arange(len(users)), n_train)
    pos = np.arange(n_train.sum()) - np.repeat(np.cumsum(n_train) - n_train, n_train) + 1  # 1..last_train
    start = off[u_rep]
    pad = np.concatenate([items + 1, [0]]).astype(np.int64)  # [N + 1] model ids, then the padding sentinel
    train = _gather(items, start, start + pos, users[u_rep], items[start + pos], max_len, pad)

    eu = np.flatnonzero(evaluable)
    s, e = off[eu], off[eu + 1]
    valid = _gather(items, s, e - 2, users[eu], items[e - 2], max_len, pad)
    test = _gather(items, s, e - 1, users[eu], items[e - 1], max_len, pad)

    mask = np.zeros(domain.n_items, dtype=bool)
    train_end = np.where(evaluable, off[1:] - 2, off[1:])  # exclusive end of each user's training part
    idx_u = np.repeat(np.arange(len(users)), n_u)  # [N] user of each interaction
    in_train = np.arange(len(items)) < train_end[idx_u]  # [N]
    mask[items[in_train]] = True
    user_items = {u: items[off[k]:off[k + 1]] for k, u in enumerate(users)}
    return Split(domain.n_items, max_len, train, valid, test, mask, user_items)


def domain_stats(domain: Domain) -> dict:
    """Users, items, interactions, sequence and text length, density, time range."""
    inter = domain.interactions
    seq_len = inter.groupby("user_id").size()
    text_words = domain.items["text"].str.split().str.len().fillna(0)
    ts = inter["timestamp"]
    return {
        "domain": domain.name,
        "users": int(inter["user_id"].nunique()),
        "items": int(domain.n_items),
        "interactions": int(len(inter)),
        "density": float(len(inter) / max(1, inter["user_id"].nunique() * domain.n_items)),
        "seq_len_mean": float(seq_len.mean()),
        "seq_len_median": float(seq_len.median()),
        "seq_len_max": int(seq_len.max()),
        "evaluable_users": int((seq_len >= 3).sum()),
        "text_words_mean": float(text_words.mean()),
        "text_chars_mean": float(domain.items["text"].str.len().mean()),
        "empty_texts": int(domain.items["text"].eq("").sum()),
        "time_min": int(ts.min()),
        "time_max": int(ts.max()),
    }

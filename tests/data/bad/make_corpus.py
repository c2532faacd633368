"""Regenerate the bad-input corpus in this folder: ``python tests/data/bad/make_corpus.py``.

Every file is tiny and deterministic; README.md says what each one is and what must happen. Cases that need big
files (the 100 MiB limit, a gzip bomb), checkpoints or an unusual file name are generated inside
tests/test_bad_inputs.py instead of being committed.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

TITLES = ["Red lipstick", "Blue lipstick", "Toy truck", "Toy car", "Face cream", "Puzzle 500 pieces",
          "Wooden doll", "Nail polish"]
GOOD_ITEMS = "item_id,title\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TITLES, start=1))
# three users with 3-4 interactions each, timestamps ascending per user
LOG_ROWS = [("u1", 1, 10), ("u1", 2, 20), ("u1", 3, 30), ("u1", 4, 40), ("u2", 5, 11), ("u2", 6, 21),
            ("u2", 7, 31), ("u3", 8, 12), ("u3", 1, 22), ("u3", 2, 32)]


def log(rows=LOG_ROWS, header="user_id,item_id,timestamp") -> str:
    return header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def write(name: str, data: str | bytes) -> None:
    p = HERE / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def main() -> None:
    write("good_items.csv", GOOD_ITEMS)
    write("good_interactions.csv", log())
    write("empty.csv", b"")
    write("header_only.csv", "item_id,title\n")
    write("wrong_delimiter.csv", GOOD_ITEMS.replace(",", ";"))
    write("missing_item_id.csv", "code,title\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TITLES, 1)))
    write("missing_text.csv", "item_id,price\n" + "".join(f"{i},{i}.99\n" for i in range(1, 9)))
    write("missing_user.csv", log(header="buyer,item_id,timestamp"))
    write("missing_log_item.csv", log(header="user_id,thing,timestamp"))
    write("missing_timestamp.csv", "user_id,item_id\n" + "".join(f"{u},{i}\n" for u, i, _ in LOG_ROWS))
    write("duplicate_ids.csv", GOOD_ITEMS + "3,Toy truck XL (different title)\n")
    write("unknown_items.csv", log(LOG_ROWS + [("u1", 98, 50), ("u2", 99, 51)]))
    write("all_titles_empty.csv", "item_id,title\n" + "".join(f"{i},\n" for i in range(1, 9)))
    write("latin1.csv", ("item_id,title\n" + "".join(f"{i},Crème brûlée {t}\n" for i, t in enumerate(TITLES, 1)))
          .encode("latin-1"))
    write("utf16_bom.csv", ("item_id,title\n" + "".join(f"{i},Café {t}\n" for i, t in enumerate(TITLES, 1)))
          .encode("utf-16"))  # Python's utf-16 codec writes a BOM
    mixed = [1, "2", 3.0, " 4 ", "5.0", 6, 7, 8]
    write("mixed_type_ids.jsonl", "".join(json.dumps({"item_id": i, "title": t}) + "\n"
                                          for i, t in zip(mixed, TITLES, strict=True)))
    write("timestamps_words.csv", log([(u, i, "soon" if k == 4 else "later" if k == 7 else t)
                                       for k, (u, i, t) in enumerate(LOG_ROWS)]))
    write("timestamps_iso_dates.csv", log([(u, i, (pd.Timestamp("2021-03-01") + pd.Timedelta(days=t)).date())
                                           for u, i, t in LOG_ROWS]))
    write("timestamps_negative.csv", log([(u, i, t - 35) for u, i, t in LOG_ROWS]))
    write("timestamps_milliseconds.csv", log([(u, i, 1_600_000_000_000 + t * 1000) for u, i, t in LOG_ROWS]))
    write("timestamps_missing.csv", log([(u, i, "" if k in (2, 5) else t) for k, (u, i, t) in enumerate(LOG_ROWS)]))
    write("one_interaction_user.csv", log(LOG_ROWS + [("u4", 5, 99)]))
    write("broken_line.jsonl", "".join(json.dumps({"item_id": i, "title": t}) + "\n" for i, t in enumerate(TITLES, 1))
          + '{"item_id": 9, "title": "cut off\n')  # a 9th item whose line is broken (the log never names it)
    pd.DataFrame({"item_id": [str(i) for i in range(1, 9)],
                  "title": [{"en": t, "de": t} for t in TITLES]}).to_parquet(HERE / "nested_text.parquet")
    pd.DataFrame({"item_id": [[i, i + 100] for i in range(1, 9)], "title": TITLES}).to_parquet(
        HERE / "nested_ids.parquet")
    write("wrong_type_suffix.item", "item_id:tokn\ttitle:text\n"
          + "".join(f"{i}\t{t}\n" for i, t in enumerate(TITLES, 1)))
    write("truncated.csv.gz", gzip.compress(GOOD_ITEMS.encode() * 50)[:60])
    write("ragged.csv", GOOD_ITEMS + "9,Extra,column,here\n")
    write("binary.csv", bytes(range(256)) * 4)
    write("unsupported.xlsx", b"PK\x03\x04 not really a spreadsheet")
    write("tiny_items.csv", "item_id,title\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TITLES[:6], 1)))
    write("tiny_interactions.csv", log([r for r in LOG_ROWS if r[1] <= 6]))


if __name__ == "__main__":
    main()

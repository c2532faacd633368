"""Data: the domains in the workspace (report, statistics, preview, delete) and adding a domain from two uploads."""

import hashlib

import pandas as pd
import streamlit as st

from app_support import load_domain, setup_page, show_error
from vqrec_core import data as vdata
from vqrec_core.errors import VQRecError
from vqrec_core.store import MAX_INTERACTIONS, MAX_ITEMS, MAX_UPLOAD_MB, sanitize_filename, validate_domain_name

ws = setup_page("Data", ":material/folder_open:")
st.title("Data")
st.caption("Each domain is one item catalog + one interaction log. Item ids are local to their domain.")

ENCODINGS = ["auto-detect", "utf-8", "latin-1", "cp1252", "utf-16"]
NONE_TIME = "(none: use the row order)"

tab_list, tab_add = st.tabs(["Domains in the workspace", "Add a domain"])

# ------------------------------------------------------------------------------------------------ existing domains
with tab_list:
    names = ws.list_domains()
    if not names:
        st.info("The workspace has no domains yet. Add one in the next tab, or restore the bundled samples.")
        if st.button("Restore the sample domains (beauty, toys)", key="restore_samples"):
            (ws.root / ".samples_registered").unlink(missing_ok=True)
            try:
                ws.ensure_samples()
                st.rerun()
            except VQRecError as e:
                show_error(e)
    else:
        name = st.selectbox("Domain", names, key="data_domain")
        meta = ws.domain_meta(name)
        s = meta.get("stats", {})
        cols = st.columns(5)
        for c, (label, key) in zip(cols, (("items", "items"), ("users", "users"), ("interactions", "interactions"),
                                          ("evaluable users (3+ items)", "evaluable_users"),
                                          ("mean sequence length", "seq_len_mean")), strict=True):
            v = s.get(key)
            c.metric(label, f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if v is not None else "-")
        rep = meta.get("report", {})
        st.markdown("**Validation report**")
        if not rep.get("warnings") and not rep.get("errors"):
            st.success("No problems found.")
        for w in rep.get("warnings", []):
            st.warning(w)
        mapping = rep.get("info", {}).get("mapping")
        src = meta.get("sources", {})
        st.caption(f"Source files: `{src.get('items', '?')}` and `{src.get('interactions', '?')}`"
                   + (f" · column mapping: {mapping}" if mapping else ""))
        with st.expander("All statistics"):
            st.dataframe(pd.DataFrame([s]).T.rename(columns={0: "value"}).astype(str), width="stretch")
        try:
            dom = load_domain(ws, name)
            c1, c2 = st.columns(2)
            c1.markdown("**Catalog preview** (item_id, text)")
            c1.dataframe(dom.items.head(50), hide_index=True, width="stretch", height=300)
            c2.markdown("**Log preview** (user_id, item_id, timestamp)")
            c2.dataframe(dom.interactions.head(50), hide_index=True, width="stretch", height=300)
        except VQRecError as e:
            show_error(e)
        with st.expander(f"Delete '{name}'"):
            st.write("Deletes the stored catalog and log. Runs and analyses that used the domain stay on disk.")
            sure = st.checkbox(f"Yes, delete the domain '{name}'", key="confirm_delete")
            if st.button("Delete domain", key="delete_domain", disabled=not sure, type="primary"):
                try:
                    ws.delete_domain(name)
                    st.session_state.pop("data_domain", None)
                    st.rerun()
                except VQRecError as e:
                    show_error(e)

# ------------------------------------------------------------------------------------------------ add a domain
with tab_add:
    st.info(f"Upload limits: **{MAX_UPLOAD_MB} MB per file**, catalogs up to **{MAX_ITEMS:,} items**, logs up to "
            f"**{MAX_INTERACTIONS:,} interactions**. Formats: CSV, TSV, JSON Lines, Parquet, RecBole .item / .inter "
            "(optionally .gz). The log needs a user column and an item column; a timestamp column is optional.")
    new_name = st.text_input("Domain name", key="new_name", placeholder="e.g. my_shop",
                             help="1-40 letters, digits, '_' or '-'.")
    c1, c2 = st.columns(2)
    up_items = c1.file_uploader("Item catalog (id + text columns)", key="items_upload")
    up_inter = c2.file_uploader("Interaction log (user, item, timestamp)", key="inter_upload")
    encoding = st.selectbox("Character encoding of the files", ENCODINGS, key="file_encoding",
                            help="auto-detect tries UTF-8, then Windows-1252, then Latin-1.")
    enc = None if encoding == "auto-detect" else encoding

    def _stored(up, label: str):
        """Save an upload once (sanitised name in a fresh folder) and read its table; (path, df) or None."""
        if up is None:
            return None
        data = up.getvalue()
        key = f"upload:{label}:{hashlib.sha256(data).hexdigest()[:16]}:{sanitize_filename(up.name)}:{enc}"
        if key not in st.session_state:
            try:
                path = ws.save_upload(data, up.name, label)
                df, rep = vdata.read_table(path, enc, label, display_name=sanitize_filename(up.name))
                st.session_state[key] = (path, df, rep)
            except VQRecError as e:
                st.session_state[key] = e
        if sanitize_filename(up.name) != up.name:
            st.warning(f"The file name {up.name!r} was stored as {sanitize_filename(up.name)!r}: folder parts and "
                       "unusual characters are never used in workspace paths.")
        val = st.session_state[key]
        if isinstance(val, VQRecError):
            show_error(val)
            return None
        return val

    items_t = _stored(up_items, "item catalog")
    inter_t = _stored(up_inter, "interaction log")

    def _default(cols, candidates):
        low = [c.lower() for c in cols]
        for cand in candidates:
            if cand in low:
                return low.index(cand)
        return 0

    if items_t is not None and inter_t is not None:
        ipath, idf, irep = items_t
        lpath, ldf, lrep = inter_t
        icols, lcols = list(map(str, idf.columns)), list(map(str, ldf.columns))
        st.markdown("**Map the columns**")
        m1, m2 = st.columns(2)
        id_col = m1.selectbox("Catalog: item id column", icols, index=_default(icols, vdata.ITEM_ID_CANDIDATES),
                              key="map_item_id")
        text_default = [icols[_default(icols, vdata.TEXT_CANDIDATES)]] if len(icols) > 1 else icols
        text_default = [c for c in text_default if c != id_col] or [c for c in icols if c != id_col][:1]
        text_cols = m1.multiselect("Catalog: text column(s), joined with spaces", icols, default=text_default,
                                   key="map_text")
        user_col = m2.selectbox("Log: user column", lcols, index=_default(lcols, vdata.USER_CANDIDATES),
                                key="map_user")
        item_default = (lcols.index(id_col) if id_col in lcols
                        else _default(lcols, vdata.ITEM_ID_CANDIDATES) if any(
                            c.lower() in vdata.ITEM_ID_CANDIDATES for c in lcols)
                        else next((i for i, c in enumerate(lcols) if c != user_col), 0))
        item_col = m2.selectbox("Log: item column", lcols, index=item_default, key="map_inter_item")
        time_opts = [NONE_TIME] + lcols
        low = [c.lower() for c in lcols]
        t_idx = next((low.index(c) + 1 for c in vdata.TIME_CANDIDATES if c in low), 0)
        time_col = m2.selectbox("Log: timestamp column", time_opts, index=t_idx, key="map_time")
        p1, p2 = st.columns(2)
        p1.caption(f"Catalog: {len(idf):,} rows")
        p1.dataframe(idf.head(8), hide_index=True, width="stretch")
        p2.caption(f"Log: {len(ldf):,} rows")
        p2.dataframe(ldf.head(8), hide_index=True, width="stretch")

        mapping = dict(item_id_col=id_col, text_cols=text_cols or None, user_col=user_col, inter_item_col=item_col,
                       time_col=None if time_col == NONE_TIME else time_col, encoding=enc)
        check_key = (str(ipath), str(lpath), repr(sorted(mapping.items())))
        if st.button("Check the files", key="check_domain", type="primary"):
            problems = (["Choose at least one text column for the catalog (e.g. the title)."] if not text_cols
                        else [])
            if user_col == item_col:
                problems.append(f"The log's user column and item column are both '{user_col}'; choose two "
                                "different columns.")
            if time_col in (user_col, item_col):
                problems.append(f"The timestamp column '{time_col}' is also the user or item column.")
            if problems:
                st.session_state["checked"] = (check_key, None, vdata.ValidationReport(errors=problems))
            else:
                with st.spinner("Validating…"):
                    rep = vdata.ValidationReport()
                    rep.extend(irep)
                    rep.extend(lrep)
                    dom, r = vdata.domain_from_frames(idf, ldf, sanitize_filename(up_items.name),
                                                      sanitize_filename(up_inter.name), name=new_name or "new_domain",
                                                      **{k: v for k, v in mapping.items() if k != "encoding"})
                    rep.extend(r)
                    if dom is not None:
                        dom.report = rep
                st.session_state["checked"] = (check_key, dom, rep)
        checked = st.session_state.get("checked")
        if checked is not None and checked[0] == check_key:
            _, dom, rep = checked
            st.markdown("**Validation report**")
            for e in rep.errors:
                st.error(e)
            for w in rep.warnings:
                st.warning(w)
            if dom is not None:
                if not rep.warnings:
                    st.success("No problems found.")
                stats = vdata.domain_stats(dom)
                st.dataframe(pd.DataFrame([stats]), hide_index=True, width="stretch")
                if st.button("Save the domain", key="save_domain", type="primary"):
                    try:
                        dom.name = validate_domain_name(new_name)
                        ws.save_domain(dom, sources={"items": sanitize_filename(up_items.name),
                                                     "interactions": sanitize_filename(up_inter.name),
                                                     "mapping": {k: v for k, v in mapping.items()}})
                        st.session_state.pop("checked", None)
                        st.success(f"Saved the domain '{dom.name}' ({dom.n_items:,} items). It is now listed in "
                                   "the first tab and on the Codes and Train pages.")
                    except VQRecError as e:
                        show_error(e)
            else:
                st.error("The domain cannot be used until the errors above are fixed.")
    elif up_items is not None or up_inter is not None:
        st.caption("Upload both files to map the columns.")

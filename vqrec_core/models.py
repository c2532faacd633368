"""Sequential recommenders as plain ``nn.Module``s: VQ-Rec, a text-adaptor model, SASRec-ID, text-kNN, popularity.

Reference: Hou et al., "Learning Vector-Quantized Item Representation for Transferable Sequential Recommenders"
(WWW 2023) and its RecBole-based code (RUCAIBox/VQ-Rec); SASRec (Kang & McAuley 2018) for the encoder; UniSRec
(Hou et al., KDD 2022) for the mixture-of-experts text adaptor.

Every scorer exposes the same interface: ``n_items`` and ``score_batch(seq [B, L], length [B]) -> [B, n_items]``
(sequences are left-aligned item index + 1, 0-padded on the right, see docs/CONTRACTS.md). Neural models also expose
``encode`` (sequence -> s) and ``item_matrix`` (all item vectors) so evaluation can compute the item matrix once.

Deliberate deviations from upstream: CPU-sized defaults (h=64 instead of 300, dropout 0.2 instead of 0.5); the item
vector is computed with ``F.embedding_bag(mode="mean")`` over the one code table (same maths as gathering D rows and
averaging, without materialising [B, L, D, h]); the catalog (flat code ids or text vectors) is a persistent buffer so a
checkpoint is self-contained and can be swapped per domain with ``set_catalog``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------------------------------------------------
# Configs


@dataclass
class EncoderConfig:
    h: int = 64  # hidden size h (upstream 300)
    n_layers: int = 2  # L, causal transformer layers
    n_heads: int = 2  # attention heads
    ffn: int = 256  # inner size of the GELU feed-forward block
    dropout: float = 0.2  # hidden + attention dropout (upstream 0.5)
    max_len: int = 50  # maximum sequence length (learned positions)


@dataclass
class VQRecConfig(EncoderConfig):
    D: int = 32  # code digits per item
    M: int = 256  # codewords per digit (M = 2**b)
    tau: float = 0.07  # temperature of cosine scores


@dataclass
class TextSeqConfig(EncoderConfig):
    text_dim: int = 384  # d, dimension of the frozen text vectors (MiniLM: 384)
    n_experts: int = 4  # adaptor experts (UniSRec: 8); 1 = a single whitened linear projection
    tau: float = 0.07  # temperature of cosine scores


@dataclass
class SASRecIDConfig(EncoderConfig):
    pass


# --------------------------------------------------------------------------------------------------------------------
# Shared encoder


def init_weights(module: nn.Module) -> None:
    """SASRec/RecBole init: N(0, 0.02) for Linear and Embedding weights, zero biases, LayerNorm = identity."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()


class SeqEncoder(nn.Module):
    """Item vectors + learned positions -> LayerNorm -> dropout -> L causal layers -> hidden at the last real item."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.position = nn.Embedding(cfg.max_len, cfg.h)
        self.input_norm = nn.LayerNorm(cfg.h, eps=1e-12)
        self.input_dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            d_model=cfg.h, nhead=cfg.n_heads, dim_feedforward=cfg.ffn, dropout=cfg.dropout,
            activation="gelu", batch_first=True, norm_first=False, layer_norm_eps=1e-12,
        )
        self.layers = nn.TransformerEncoder(layer, num_layers=cfg.n_layers, enable_nested_tensor=False)

    def forward(self, item_vecs: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        B, L, _ = item_vecs.shape  # [B, L, h]
        if L > self.cfg.max_len:
            raise ValueError(f"sequence length {L} exceeds max_len {self.cfg.max_len}")
        pos = torch.arange(L, device=item_vecs.device)  # [L]
        x = item_vecs + self.position(pos).unsqueeze(0)  # [B, L, h]
        x = self.input_dropout(self.input_norm(x))  # [B, L, h]
        causal = torch.triu(torch.full((L, L), float("-inf"), device=x.device), diagonal=1)  # [L, L]
        # Right padding + causal mask: real positions never see padding, so no key-padding mask is needed.
        x = self.layers(x, mask=causal)  # [B, L, h]
        last = (length.clamp(min=1) - 1).long()  # [B]
        return x[torch.arange(B, device=x.device), last]  # [B, h]


def _trim(seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Drop right-padding columns that no row in the batch uses."""
    L = int(length.max().item()) if length.numel() else 1
    return seq[:, : max(L, 1)]  # [B, L']


class NeuralScorer(nn.Module):
    """Common scoring plumbing: s = encode(seq), scores = score(s, item_matrix())."""

    n_items: int

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:  # -> [B, h]
        raise NotImplementedError

    def item_matrix(self) -> torch.Tensor:  # -> [n_items, h]
        raise NotImplementedError

    def score(self, s: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # [B, h] x [n, h] -> [B, n]
        raise NotImplementedError

    def score_batch(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.score(self.encode(seq, length), self.item_matrix())  # [B, n_items]

    # Evaluation path: score(s, items) == query(s) @ item_operand(items), with the item side prepared once.
    def query(self, s: torch.Tensor) -> torch.Tensor:  # [B, h] -> [B, h]
        return s

    def item_operand(self, items: torch.Tensor) -> torch.Tensor:  # [n, h] -> [h, n], contiguous
        return items.T.contiguous()

    def scoring_fn(self):
        """A function (seq, length) -> scores [B, n_items] for full-ranking evaluation (call under no_grad/eval).

        The item side (matrix, normalisation, transpose) is computed once here, not per batch of users, and any
        per-score scaling is folded into the [B, h] query, so each batch costs one matmul. Equal to ``score_batch``
        up to float rounding.
        """
        items_t = self.item_operand(self.item_matrix())  # [h, n_items]
        return lambda seq, length: self.query(self.encode(seq, length)) @ items_t  # [B, n_items]


def cosine_scores(s: torch.Tensor, items: torch.Tensor, tau: float) -> torch.Tensor:
    return F.normalize(s, dim=-1) @ F.normalize(items, dim=-1).T / tau  # [B, n]


class CosineScorer(NeuralScorer):
    """Scores = cos(s, item) / tau (VQ-Rec, TextSeq); evaluation normalises the items once and divides the query."""

    cfg: VQRecConfig | TextSeqConfig

    def score(self, s: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return cosine_scores(s, items, self.cfg.tau)  # [B, n]

    def query(self, s: torch.Tensor) -> torch.Tensor:
        return F.normalize(s, dim=-1) / self.cfg.tau  # [B, h]

    def item_operand(self, items: torch.Tensor) -> torch.Tensor:
        return F.normalize(items, dim=-1).T.contiguous()  # [h, n]


# --------------------------------------------------------------------------------------------------------------------
# VQ-Rec


class VQRec(CosineScorer):
    """text -> code -> representation: item vector = mean of its D code embeddings from one table."""

    kind = "vqrec"

    def __init__(self, cfg: VQRecConfig, flat_codes: np.ndarray | torch.Tensor):
        super().__init__()
        self.cfg = cfg
        self.code_embedding = nn.Embedding(cfg.D * (cfg.M + 1), cfg.h, padding_idx=0)  # row 0 = padding
        self.encoder = SeqEncoder(cfg)
        self.apply(init_weights)
        with torch.no_grad():
            self.code_embedding.weight[0].zero_()
        self.register_buffer("flat_codes", torch.zeros(0, cfg.D, dtype=torch.long), persistent=True)
        self.set_catalog(flat_codes)

    @property
    def n_items(self) -> int:
        return int(self.flat_codes.shape[0])

    def set_catalog(self, flat_codes: np.ndarray | torch.Tensor) -> None:
        """Swap the item -> flat-code-id table (codes.flat_code_ids output, int64 [n_items, D])."""
        fc = torch.as_tensor(np.asarray(flat_codes), dtype=torch.long)  # [n, D]
        if fc.ndim != 2 or fc.shape[1] != self.cfg.D:
            raise ValueError(f"flat codes must be [n_items, {self.cfg.D}], got {tuple(fc.shape)}")
        if fc.numel() and (int(fc.min()) < 1 or int(fc.max()) >= self.cfg.D * (self.cfg.M + 1)):
            raise ValueError("flat code ids out of range for this code table")
        self.flat_codes = fc.to(self.code_embedding.weight.device)

    def code_vectors(self, flat_ids: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the D code embeddings for each row of flat ids [N, D] -> [N, h]."""
        w = self.code_embedding.weight if table is None else table  # [D*(M+1), h]
        return F.embedding_bag(flat_ids, w, mode="mean")  # [N, h]

    def item_matrix(self, table: torch.Tensor | None = None) -> torch.Tensor:
        return self.code_vectors(self.flat_codes, table)  # [n_items, h]

    def seq_item_vectors(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        B, L = seq.shape  # [B, L]
        ids = self.flat_codes[(seq - 1).clamp(min=0)]  # [B, L, D]
        vec = self.code_vectors(ids.reshape(B * L, -1), table).reshape(B, L, -1)  # [B, L, h]
        return vec * (seq > 0).unsqueeze(-1)  # [B, L, h]

    def encode(self, seq: torch.Tensor, length: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        seq = _trim(seq, length)  # [B, L']
        return self.encoder(self.seq_item_vectors(seq, table), length)  # [B, h]


# --------------------------------------------------------------------------------------------------------------------
# Text -> representation (UniSRec-style adaptor)


class WhitenedLinear(nn.Module):
    """(x - b) W: one whitened linear projection (UniSRec's PWLayer)."""

    def __init__(self, d_in: int, d_out: int, dropout: float):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(d_in))
        self.dropout = nn.Dropout(dropout)
        self.lin = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.dropout(x - self.bias))  # [..., d_out]


class MoEAdaptor(nn.Module):
    """Softmax-gated mixture of whitened linear projections (UniSRec). One expert = a plain linear adaptor."""

    def __init__(self, d_in: int, d_out: int, n_experts: int, dropout: float):
        super().__init__()
        self.experts = nn.ModuleList(WhitenedLinear(d_in, d_out, dropout) for _ in range(n_experts))
        self.gate = nn.Parameter(torch.zeros(d_in, n_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = torch.softmax(x @ self.gate, dim=-1).unsqueeze(-1)  # [..., E, 1]
        out = torch.stack([e(x) for e in self.experts], dim=-2)  # [..., E, h]
        return (gates * out).sum(dim=-2)  # [..., h]


class TextSeq(CosineScorer):
    """text -> representation: frozen text vectors through a trainable adaptor into the same encoder."""

    kind = "text_seq"

    def __init__(self, cfg: TextSeqConfig, text_emb: np.ndarray | torch.Tensor):
        super().__init__()
        self.cfg = cfg
        self.adaptor = MoEAdaptor(cfg.text_dim, cfg.h, cfg.n_experts, cfg.dropout)
        self.encoder = SeqEncoder(cfg)
        self.apply(init_weights)
        self.register_buffer("text_emb", torch.zeros(0, cfg.text_dim), persistent=True)
        self.set_catalog(text_emb)

    @property
    def n_items(self) -> int:
        return int(self.text_emb.shape[0])

    def set_catalog(self, text_emb: np.ndarray | torch.Tensor) -> None:
        t = torch.as_tensor(np.asarray(text_emb), dtype=torch.float32)  # [n, d]
        if t.ndim != 2 or t.shape[1] != self.cfg.text_dim:
            raise ValueError(f"text vectors must be [n_items, {self.cfg.text_dim}], got {tuple(t.shape)}")
        self.text_emb = t.to(self.gate_device())

    def gate_device(self) -> torch.device:
        return self.adaptor.gate.device

    def item_vectors(self, idx: torch.Tensor) -> torch.Tensor:
        return self.adaptor(self.text_emb[idx])  # [..., h]

    def item_matrix(self) -> torch.Tensor:
        return self.adaptor(self.text_emb)  # [n_items, h]

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        seq = _trim(seq, length)  # [B, L']
        vec = self.item_vectors((seq - 1).clamp(min=0)) * (seq > 0).unsqueeze(-1)  # [B, L', h]
        return self.encoder(vec, length)  # [B, h]


# --------------------------------------------------------------------------------------------------------------------
# SASRec with item IDs


class SASRecID(NeuralScorer):
    """SASRec with a learned item-ID embedding and dot-product scores (target domain only)."""

    kind = "sasrec_id"

    def __init__(self, cfg: SASRecIDConfig, n_items: int):
        super().__init__()
        self.cfg = cfg
        self.item_embedding = nn.Embedding(n_items + 1, cfg.h, padding_idx=0)  # row 0 = padding
        self.encoder = SeqEncoder(cfg)
        self.apply(init_weights)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    @property
    def n_items(self) -> int:
        return int(self.item_embedding.num_embeddings - 1)

    def item_matrix(self) -> torch.Tensor:
        return self.item_embedding.weight[1:]  # [n_items, h]

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        seq = _trim(seq, length)  # [B, L']
        return self.encoder(self.item_embedding(seq), length)  # [B, h]

    def score(self, s: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return s @ items.T  # [B, n]


# --------------------------------------------------------------------------------------------------------------------
# Non-neural baselines behind the same interface


class TextKNN(nn.Module):
    """Scores = cosine of each item's text vector with the last history item's (the extreme of text bias).

    The query item itself is excluded (score -inf) so the list holds its nearest *other* items.
    """

    kind = "text_knn"

    def __init__(self, text_emb: np.ndarray | torch.Tensor, exclude_query: bool = True):
        super().__init__()
        t = F.normalize(torch.as_tensor(np.asarray(text_emb), dtype=torch.float32), dim=-1)  # [n, d]
        self.register_buffer("text_emb", t)
        self.exclude_query = exclude_query

    @property
    def n_items(self) -> int:
        return int(self.text_emb.shape[0])

    def score_batch(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        B = seq.shape[0]
        last = seq[torch.arange(B), (length.clamp(min=1) - 1).long()] - 1  # [B] 0-based item index
        scores = self.text_emb[last] @ self.text_emb.T  # [B, n]
        if self.exclude_query:
            scores[torch.arange(B), last] = float("-inf")
        return scores

    def scoring_fn(self):
        return self.score_batch


class Popularity(nn.Module):
    """Scores = number of training interactions of each item (same list for every user)."""

    kind = "pop"

    def __init__(self, counts: np.ndarray | torch.Tensor):
        super().__init__()
        self.register_buffer("counts", torch.as_tensor(np.asarray(counts), dtype=torch.float32))  # [n]

    @property
    def n_items(self) -> int:
        return int(self.counts.shape[0])

    def score_batch(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(seq.shape[0], -1).clone()  # [B, n]

    def scoring_fn(self):
        return self.score_batch


def popularity_counts(user_items: dict, n_items: int) -> np.ndarray:
    """Interaction counts over the training part of each history (all but the last two items when n >= 3)."""
    counts = np.zeros(n_items, dtype=np.float64)
    for items in user_items.values():
        items = np.asarray(items, dtype=np.int64)
        part = items[:-2] if len(items) >= 3 else items
        np.add.at(counts, part, 1.0)
    return counts

"""Match & lexicon: a batch cut in chunks, in order, each item what a worker needs."""

from __future__ import annotations

from services.scorer.steps.lexicon import ChunkItem, chunks
from tests.scorer.steps.chunks import NOW, pairs


def test_a_batch_is_cut_in_chunks_in_order() -> None:
    batch = pairs([f"Acme {i}" for i in range(5)])
    cut = chunks(batch, 2, NOW)
    assert [[m.id for m in c.mentions] for c in cut] == [["s0", "s1"], ["s2", "s3"], ["s4"]]
    assert all(c.now == NOW for c in cut)
    m, raw = batch[4]
    assert cut[2].items == [ChunkItem(m.source, m.id, m.text, raw, m.lang)]
    assert chunks([], 2, NOW) == []

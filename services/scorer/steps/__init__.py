"""The scorer's steps, one module each, chained in ``services.scorer.pipeline.build_pipeline``:
decode → match & lexicon (worker processes) → route → transformer batch → write batch →
produce; the ``ConsumerLoop`` commits last. Each module has a pure core (where the unit
tests go) and a thin async shell (``abstract.NextStep``)."""

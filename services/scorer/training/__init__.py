"""Fine-tuning the transformer that gives ambiguous mentions a second opinion.

Only ``train`` needs torch (the ``[train]`` extra, best kept in its own virtualenv); it
is imported lazily, so the serving install and ``make run`` never pull torch in. The
data loading, metrics and model card parts are plain Python, shared with the benchmarks.
"""

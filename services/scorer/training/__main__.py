"""``python -m services.scorer.training train …``: the same as ``sentimon model train``,
for a training virtualenv that has only the ``[train]`` extra."""

from services.scorer.training.cli import model

model()

"""The networks an ensemble can be made of: named recipes over the explicit families.

An ensemble (``model.members``, set by the ``accurate`` preset of ``autorec``) trains one
network per name listed here and blends their predictions (:mod:`aerec.ensemble`). Each
recipe is a family kind and the settings it changes from that family's defaults; everything
else (training defaults, refit) is the family's own. Kept apart from :mod:`aerec.ensemble`,
which needs torch and the estimator, so that the parameter check in
:mod:`aerec.models.families` can name the valid members without importing either.

Why these members: on a validation carve of ML-100K ``u1.base`` (docs/benchmarks.md,
"Accuracy"), I-AutoRec networks that differ only in their seed or width blend to within
0.001 RMSE of the best single one (their L-BFGS solutions are nearly the same function);
networks that read the data differently (user rows, kernelised local weights without the bias
model) make different errors, and it is those errors a blend averages out. The ``accurate``
preset lists ``i-autorec``, ``u-autorec``, ``i-kernel`` and (since 2026-12-07) ``i-dae``, a
denoising network trained with Adam, whose errors differ again; ``i-autorec-mask`` did not
improve their blend and is here for ``model.members`` only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MEMBERS", "member_names"]

MEMBERS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # The default model: item rows, 500 sigmoid units over the bias model, L-BFGS, refit.
    "i-autorec": ("autorec", {}, {}),
    # The same with the 0/1 pattern of observed cells as a second input (who rated the item).
    "i-autorec-mask": ("autorec", {"mask_input": True}, {}),
    # User rows: a user's ratings of every item in, all items out.
    "u-autorec": ("autorec", {"orientation": "user"}, {}),
    # Item rows through two hidden layers of 500 with kernelised weights, no bias model under
    # it (GLocal-K's local kernel network, its ML-100K settings: aerec.models.kernel). Its
    # validation RMSE creeps down over plateaus of several epochs (best epoch 21-28 on u1..u3),
    # so it keeps early stopping's patience of 6 epochs where the family's default is 4 (which
    # stopped it at epoch 10-19).
    "i-kernel": ("autorec", {"hidden": [500, 500], "kernel_dim": 5, "l2": 20.0, "kernel_l2": 0.006,
                             "baseline": False}, {"patience": 6}),
    # Item rows, 500 sigmoid units over the bias model, trained with Adam on inputs of which half
    # the observed ratings are dropped at each step (the denoising family with input_dropout 0.5):
    # alone it is no better than I-AutoRec, but its errors differ (validation study in
    # docs/benchmarks.md, "How the members were chosen").
    "i-dae": ("dae", {"input_dropout": 0.5, "baseline": True}, {}),
}
"""Member name -> (family kind, the model settings and the training settings that differ from
the family's defaults)."""


def member_names() -> str:
    return ", ".join(MEMBERS)

"""The one table of model families, rating models and top-N models alike.

Each family is a :class:`~aerec.models.family.Family` record with its ``feedback`` (``"explicit"``:
predicts ratings; ``"implicit"``: ranks items from positives), presets, defaults and a
one-line summary. The records are written where their networks live
(:mod:`aerec.models.families`, :mod:`aerec.models.implicit_families`); this module gathers them, and
the estimators, the command line, ``tune`` and the docs look families up here only.

>>> from aerec.registry import families, get_family
>>> sorted(f.kind for f in families("implicit"))[:2]
['cdae', 'ease']
>>> get_family("autorec").feedback
'explicit'
"""

from __future__ import annotations

import dataclasses

from aerec.config import Config
from aerec.errors import ConfigError
from aerec.models.implicit_families import IMPLICIT_FAMILIES, default_implicit_kind
from aerec.models.families import DEFAULT_EXPLICIT, FAMILIES as EXPLICIT_FAMILIES
from aerec.models.family import FEEDBACK, Family

__all__ = ["FEEDBACK", "REGISTRY", "default_kind", "families", "feedback_of", "family_names", "get_family",
           "hyper_parameters", "is_implicit_kind"]


def _gather(*tables: dict[str, Family]) -> dict[str, Family]:
    """One dict by kind; a kind defined twice would make lookups ambiguous, so it is refused."""
    registry: dict[str, Family] = {}
    for table in tables:
        for kind, family in table.items():
            if kind in registry:
                raise RuntimeError(f"model family {kind!r} is defined twice "
                                   f"({registry[kind].feedback}, {family.feedback})")
            registry[kind] = family
    return registry


REGISTRY: dict[str, Family] = _gather(EXPLICIT_FAMILIES, IMPLICIT_FAMILIES)
"""Every model family by kind, explicit first, each in the order it was defined."""


def families(feedback: str | None = None) -> list[Family]:
    """The families of ``feedback`` (``"explicit"``, ``"implicit"``; None: all), in definition order."""
    if feedback is not None and feedback not in FEEDBACK:
        raise ConfigError(f"feedback must be one of {', '.join(FEEDBACK)}; got {feedback!r}")
    return [f for f in REGISTRY.values() if feedback is None or f.feedback == feedback]


def feedback_of(kind: str | None) -> str | None:
    """The feedback of family ``kind`` (``"explicit"`` or ``"implicit"``), None for an unknown kind."""
    family = REGISTRY.get(str(kind)) if kind is not None else None
    return family.feedback if family is not None else None


def is_implicit_kind(kind: str | None) -> bool:
    """Whether ``kind`` names a top-N (implicit-feedback) family."""
    return feedback_of(kind) == "implicit"


def get_family(kind: str, feedback: str | None = None) -> Family:
    """The family ``kind``; with ``feedback``, one learning from that feedback only.

    An unknown kind, or one learning from the other feedback, is a :class:`ConfigError` that lists what exists
    and says which estimator (and command-line flag) the kind belongs to.
    """
    family = REGISTRY.get(kind) if isinstance(kind, str) else None
    explicit = ", ".join(sorted(EXPLICIT_FAMILIES))
    implicit = ", ".join(sorted(IMPLICIT_FAMILIES))
    if family is None:
        if feedback == "implicit":
            raise ConfigError(f"unknown implicit model {kind!r}; choose one of {implicit}")
        raise ConfigError(f"unknown model {kind!r}; rating models: {explicit}; top-N models (--implicit): {implicit}")
    if feedback is not None and family.feedback != feedback:
        if family.feedback == "implicit":
            raise ConfigError(f"{kind!r} is a top-N model for implicit feedback, not a rating model: use "
                              "ImplicitRecommender (on the command line: aerec train --implicit --model "
                              f"{kind})")
        raise ConfigError(f"{kind!r} is a rating model, not a top-N one: use Recommender (on the command "
                          f"line: aerec train --model {kind}, without --implicit)")
    return family


def family_names(feedback: str) -> str:
    """The kinds of ``feedback``'s families for help texts, the default first:
    ``"autorec, sae, deep, dae, sparse"``."""
    default = default_kind(implicit=feedback == "implicit")
    kinds = [f.kind for f in families(feedback)]
    return ", ".join(sorted(kinds, key=lambda kind: kind != default))  # a stable sort keeps the rest in order


def default_kind(*, implicit: bool, n_items: int | None = None) -> str:
    """The family ``aerec train`` uses without ``--model``: the strongest default for the data's
    kind (AutoRec for ratings; for implicit data EASE, or Mult-VAE past 20,000 items, where
    EASE's items x items matrices grow too large for a default)."""
    return default_implicit_kind(n_items) if implicit else DEFAULT_EXPLICIT


def hyper_parameters(kind: str) -> set[str]:
    """The hyper-parameter names of family ``kind`` (empty for an unknown kind: the family
    lookup then says what is wrong). ``Recommender(kind, hidden=..., epochs=...)`` sends these
    keywords to the model table and the others to ``train`` or ``run``."""
    try:
        params = get_family(kind).resolve(Config(model={"kind": kind}))[0]
    except (ConfigError, KeyError, ValueError):
        return set()
    return {f.name for f in dataclasses.fields(params)}

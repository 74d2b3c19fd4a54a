"""The record every model family is described by, explicit and implicit alike.

A :class:`Family` says how to resolve a run's settings (family defaults, then a preset, then
the user's values) and how to build the family's network. The families themselves are listed
in :mod:`aerec.models.families` (rating models) and :mod:`aerec.models.implicit_families` (top-N
models); :mod:`aerec.registry` gathers both into the one table callers look families up in.
This module imports neither, so both can build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from aerec.config import Config, RunConfig, TrainConfig, build_train_config, check_fields, coerce_value
from aerec.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CHECKPOINT_BUDGET", "FEEDBACK", "Family"]

FEEDBACK = ("explicit", "implicit")
"""What a family's model does: predict ratings (explicit) or rank items from positives (implicit)."""

# Every model's checkpoints take at most 5 % of its training time (train.checkpoint_budget):
# the default model's L-BFGS state makes a checkpoint of ML-100K 160 MB, 0.3-0.4 s to write,
# checksum and fsync, about as long as an epoch (docs/training.md, "Checkpoints").
CHECKPOINT_BUDGET = 0.05


@dataclass(frozen=True)
class Family:
    """A model family: its name, the feedback it learns from, parameter defaults, training defaults,
    presets and source.

    ``feedback`` is ``"explicit"`` (a rating model: :class:`~aerec.recommender.Recommender`) or
    ``"implicit"`` (a top-N model: :class:`~aerec.implicit.ImplicitRecommender`).
    ``params_cls`` is the hyper-parameter dataclass; ``builder`` makes the network from the
    resolved parameters (explicit: ``builder(params, n_inputs)``, default ``params.build``;
    implicit: ``builder(params, n_items, n_users)``, none for closed-form families).
    """

    kind: str
    feedback: str
    summary: str
    source: str
    params: dict[str, Any]
    train: dict[str, Any]
    params_cls: type
    presets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    builder: Callable[..., nn.Module] | None = None

    def __post_init__(self) -> None:
        if self.feedback not in FEEDBACK:
            raise ValueError(f"family {self.kind!r}: feedback must be one of {', '.join(FEEDBACK)}; "
                             f"got {self.feedback!r}")

    def resolve_params(self, values: dict[str, Any]) -> Any:
        """Family defaults, then the preset's, then ``values`` -> a checked params object."""
        values = dict(values)
        values.pop("kind", None)
        preset = values.pop("preset", None)
        merged = dict(self.params)
        if preset is not None:
            merged.update(self.preset(preset).get("model", {}))
        check_fields(self.params_cls, values, f"model ({self.kind})")
        # User values get the same type checks as [train] ones ("model.l2 must be a number").
        defaults = self.params_cls()
        merged.update({k: coerce_value(v, getattr(defaults, k), f"model.{k}") for k, v in values.items()})
        try:
            return self.params_cls(**merged)
        except ConfigError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: hidden = [inf]
            raise ConfigError(f"model ({self.kind}): a setting has the wrong type or value ({exc}); got {values}") from None

    def resolve(self, config: Config) -> tuple[Any, TrainConfig, RunConfig]:
        """``config``'s (model params, TrainConfig, RunConfig) after this family's defaults and preset."""
        params = self.resolve_params(config.model)
        train = build_train_config(self.resolve_train(config.model.get("preset"), config.train))
        return params, train, config.resolve_run()

    def resolve_train(self, preset: str | None, values: dict[str, Any]) -> dict[str, Any]:
        merged = {"checkpoint_budget": CHECKPOINT_BUDGET, **self.train}
        if preset is not None:
            merged.update(self.preset(preset).get("train", {}))
        merged.update(values)
        return merged

    def preset(self, name: str) -> dict[str, dict[str, Any]]:
        if not isinstance(name, str) or name not in self.presets:  # a TOML list or table is no name
            known = ", ".join(sorted(self.presets)) or "none"
            raise ConfigError(f"model {self.kind!r} has no preset {name!r}; its presets: {known}")
        return self.presets[name]

    def build(self, params: Any, n_inputs: int) -> nn.Module:
        try:
            return (self.builder or type(params).build)(params, n_inputs)
        except (RuntimeError, MemoryError, OverflowError, TypeError) as exc:
            # torch's answers to model.hidden = [10**12] (cannot allocate) or [2**63] (overflow).
            text = str(exc)
            if "allocate" not in text and "Overflow" not in text and not isinstance(exc, MemoryError):
                raise
            sizes = getattr(params, "hidden", "?")
            raise TrainingError(
                f"a {self.kind} network with {n_inputs} inputs and hidden layers {sizes} does not fit in memory "
                f"({text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__}); use smaller model.hidden"
            ) from None

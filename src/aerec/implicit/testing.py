"""Where the implicit contract tests were first published; they now live in
:mod:`aerec.testing.implicit`, beside the contract every estimator shares. Kept so that
``from aerec.implicit.testing import ImplicitContract`` keeps working."""

from aerec.testing.implicit import ImplicitContract, PlantedImplicit, planted_implicit

__all__ = ["ImplicitContract", "PlantedImplicit", "planted_implicit"]

"""One family registry for every model kind (aerec.registry): rating and top-N families, their
presets and defaults, looked up from one place by the estimators, the CLI, tune and the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import aerec
from aerec.errors import ConfigError
from aerec.registry import FEEDBACK, REGISTRY, default_kind, families, feedback_of, get_family, hyper_parameters

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_family_is_registered_once_with_its_feedback():
    explicit = [f.kind for f in families("explicit")]
    implicit = [f.kind for f in families("implicit")]
    assert explicit == ["sae", "autorec", "deep", "dae", "sparse"]
    assert set(implicit) == {"multvae", "multdae", "cdae", "recvae", "ease", "easedae", "popularity"}
    assert list(REGISTRY) == explicit + implicit and set(FEEDBACK) == {"explicit", "implicit"}
    assert all(REGISTRY[k].summary and REGISTRY[k].source for k in REGISTRY)
    assert feedback_of("autorec") == "explicit" and feedback_of("ease") == "implicit" and feedback_of("nope") is None
    with pytest.raises(ConfigError, match="feedback must be one of"):
        families("ratings")


def test_defaults_and_presets_come_from_the_registry():
    assert default_kind(implicit=False) == "autorec"
    assert default_kind(implicit=True) == "easedae" and default_kind(implicit=True, n_items=50_000) == "multvae"
    assert default_kind(implicit=True, n_items=20_000) == "easedae" and default_kind(implicit=True, n_items=20_001) == "multvae"
    assert {"i-autorec", "u-autorec"} <= set(get_family("autorec").presets)
    assert "paper" in get_family("multvae").presets
    assert {"hidden", "l2"} <= hyper_parameters("autorec") and hyper_parameters("no-such-model") == set()


def test_a_lookup_names_the_right_estimator_for_the_other_feedback():
    with pytest.raises(ConfigError, match="top-N model for implicit feedback.*ImplicitRecommender"):
        get_family("multvae", "explicit")
    with pytest.raises(ConfigError, match="rating model, not a top-N one: use Recommender"):
        get_family("autorec", "implicit")
    with pytest.raises(ConfigError, match="unknown model 'nope'; rating models: .*top-N models"):
        get_family("nope")
    with pytest.raises(ConfigError, match="top-N model for implicit feedback"):
        aerec.Recommender("ease")
    with pytest.raises(ConfigError, match="rating model, not a top-N one"):
        aerec.ImplicitRecommender("autorec")


def test_each_estimator_fits_the_families_of_its_feedback():
    for family in families():
        estimator = aerec.Recommender if family.feedback == "explicit" else aerec.ImplicitRecommender
        assert estimator.feedback == family.feedback
        assert estimator(family.kind).family is family


def test_the_docs_describe_every_registered_family():
    text = (DOCS / "models.md").read_text(encoding="utf-8") + (DOCS / "implicit.md").read_text(encoding="utf-8")
    missing = [kind for kind in REGISTRY if f"`{kind}`" not in text]
    assert not missing, f"docs/models.md or docs/implicit.md should describe {missing}"


def test_the_registry_loads_no_estimator():
    # The families sit a layer below the estimators: looking one up builds no model class.
    code = ("import sys, aerec.registry\n"
            "print([m for m in ('aerec.base', 'aerec.recommender', 'aerec.implicit.recommender') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_listing_the_families_loads_no_heavy_library():
    # The command line's help and the docs read the registry; it must not cost torch's import.
    code = ("import sys, aerec.registry\n"
            "print([m for m in ('torch', 'numpy', 'scipy', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

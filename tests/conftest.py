"""Test-session settings shared by every test module."""

import os

import pytest
from hypothesis import settings

# Every run checks the same examples, so a red build always reproduces (CI may not set $CI).
# HYPOTHESIS_EXPLORE=1 lets hypothesis search new examples instead.
settings.register_profile("fixed", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_EXPLORE") else "fixed")


@pytest.fixture(scope="session", autouse=True)
def fresh_feature_cache(tmp_path_factory):
    """Features are computed from the real models in every run, never read from a user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTATLAS_CACHE", str(tmp_path_factory.mktemp("feature-cache")))
    yield
    mp.undo()

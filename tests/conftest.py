"""Test-session settings shared by every test module."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def fresh_feature_cache(tmp_path_factory):
    """Features are computed from the real models in every run, never read from a user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTATLAS_CACHE", str(tmp_path_factory.mktemp("feature-cache")))
    yield
    mp.undo()

"""Test-session settings shared by every test module."""

import os

import pytest
from hypothesis import settings

# CI explores the same examples every run, so a red build always reproduces; locally
# hypothesis keeps searching new ones.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def fresh_feature_cache(tmp_path_factory):
    """Features are computed from the real models in every run, never read from a user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTATLAS_CACHE", str(tmp_path_factory.mktemp("feature-cache")))
    yield
    mp.undo()

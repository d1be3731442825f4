"""Shared test fixtures: locating ``../shared`` (the released-layout fixtures) and tiny models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    env = os.environ.get("ALIGNGPT_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "fixtures").is_dir():
        pytest.fail(f"the reference fixtures are missing: {path}/fixtures (set ALIGNGPT_SHARED)")
    return path


@pytest.fixture(scope="session")
def official_tiny(shared) -> Path:
    return shared / "fixtures" / "official-tiny"


@pytest.fixture(scope="session")
def llava15_tiny(shared) -> Path:
    return shared / "fixtures" / "llava15-tiny"


@pytest.fixture(autouse=True)
def _pil_truncation_default():
    """Each test starts from PIL's default (truncated images refused). Importing lmms-eval's task
    module sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` for the whole process, which would
    otherwise let later tests' truncated images through."""
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    yield
    ImageFile.LOAD_TRUNCATED_IMAGES = False

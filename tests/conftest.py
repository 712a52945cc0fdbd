"""Shared fixtures. Browser fixtures live in tests/browser.py (imported by e2e tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
sys.path.insert(0, str(ROOT))

from pyscript_app import network as nw  # noqa: E402


@pytest.fixture(scope="session")
def export():
    """The committed export: (network, testset)."""
    return nw.read_export_dir(SITE / "model")


@pytest.fixture(scope="session")
def network(export):
    return export[0]


@pytest.fixture(scope="session")
def testset(export):
    return export[1]


@pytest.fixture(scope="session")
def manifest(network):
    return network.manifest

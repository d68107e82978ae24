"""Options for the deploy tests (make deploy-check runs them):

    .venv/bin/python -m pytest Tests/deploy --clusterd-bin .build/debug/clusterd
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clusterd-bin", default=".build/debug/clusterd", help="clusterd binary to run as the pods")
    parser.addoption("--helm-bin", default=os.path.join(os.path.dirname(sys.executable), "helm"),
                     help="helm, to render the chart (default: the venv's, see scripts/ensure-deploy-tools.sh)")


@pytest.fixture(scope="session")
def clusterd_bin(request: pytest.FixtureRequest) -> str:
    path = os.path.abspath(request.config.getoption("--clusterd-bin"))
    if not os.access(path, os.X_OK):
        pytest.exit(f"clusterd binary not found: {path}", returncode=2)
    return path


@pytest.fixture(scope="session")
def helm_bin(request: pytest.FixtureRequest) -> str:
    path = request.config.getoption("--helm-bin")
    if not os.access(path, os.X_OK):
        pytest.exit(f"helm not found: {path} (run scripts/ensure-deploy-tools.sh)", returncode=2)
    return path

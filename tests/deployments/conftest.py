"""Deployment tests: prefect.yaml, deployments/serve.py, `crmbooks up`, pause/resume schedules."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: starts real processes (a Prefect server); run with the default suite")

"""What every benchmark returns: rows of figures, some with a target."""
from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass
class Row:
    name: str
    value: float
    unit: str
    target: str = ""  # e.g. "<= 300"; empty: for information
    passed: bool | None = None


@dataclass
class Context:
    args: argparse.Namespace
    dataset: dict  # what datasets.json records for this database
    reused: bool


def at_most(name: str, value: float, unit: str, limit: float) -> Row:
    return Row(name, value, unit, f"<= {limit:,.0f}", value <= limit)


def at_least(name: str, value: float, unit: str, limit: float) -> Row:
    return Row(name, value, unit, f">= {limit:,.0f}", value >= limit)

"""The condition language shared by segments, rule tags, exports and the API:
JSON → `parse` (validated typed nodes) → `compile_condition` (a Q over Profile)."""
from .compile import compile_condition
from .parse import parse

__all__ = ["compile_condition", "parse"]

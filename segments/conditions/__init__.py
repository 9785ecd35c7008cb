"""The condition language shared by segments, rule tags, exports and the API:
JSON → `parse` (validated typed nodes) → `compile_condition` (a Q over Profile), and
`explain` (which nodes one customer meets, described in the reader's language)."""
from .compile import compile_condition
from .explain import Explanation, describe, explain
from .parse import parse

__all__ = ["Explanation", "compile_condition", "describe", "explain", "parse"]

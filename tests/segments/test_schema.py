"""Nothing wrong is silent: every valid definition of the condition tests, mutated the ways
people get definitions wrong (a misspelled key, an extra key, a wrong type), is refused,
and one of the messages names the node that was changed."""
import copy

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.conditions import parse

from .test_conditions import CASES, people  # noqa: F401  (the fixture the definitions need)

pytestmark = pytest.mark.django_db
VALID = [definition for definition, _members in CASES]


def node_paths(data, path: str = "") -> list[tuple[str, dict]]:
    """(path as the parser writes it, node) for every object in a definition: conditions,
    windows, comparisons, filters and sequence steps."""
    found = []
    if isinstance(data, dict):
        found.append((path, data))
        for key, value in data.items():
            found += node_paths(value, f"{path}{key}.")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += node_paths(value, f"{path.rstrip('.')}[{index}].")
    return found


def mutate(definition: dict, data) -> tuple[dict, str]:
    """A copy of `definition` with one node broken, and the path the refusal must name."""
    broken = copy.deepcopy(definition)
    path, node = data.draw(st.sampled_from(node_paths(broken)))
    how = data.draw(st.sampled_from(["extra", "typo", "type"]))
    keys = sorted(key for key in node if key not in ("value",))
    if how == "typo" and keys:
        key = data.draw(st.sampled_from(keys))
        wrong = key[:-1] + ("x" if key[-1] != "x" else "y")
        node[wrong] = node.pop(key)
        renamed_kind = key in ("all", "any", "not", "field", "tag", "tags", "tag_category", "event", "sequence",
                               "consent", "segment")
        return broken, path if renamed_kind else f"{path}{wrong}"  # a renamed kind key: an unknown condition
    if how == "type" and "op" in node:
        node["op"] = data.draw(st.sampled_from([7, None, ["eq"], {"op": "eq"}]))
        return broken, f"{path}op"
    extra = data.draw(st.sampled_from(["withn", "label", "note", "op2", "values"]))
    node[extra] = 1
    return broken, f"{path}{extra}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_definition_is_refused_naming_the_changed_node(people, data):  # noqa: F811
    definition = data.draw(st.sampled_from(VALID))
    parse(definition)  # valid as it stands
    broken, path = mutate(definition, data)

    with pytest.raises(ValidationError) as error:
        parse(broken)

    shown = path.rstrip(".") or "$"
    assert any(message.startswith(shown) for message in error.value.messages), (broken, shown, error.value.messages)

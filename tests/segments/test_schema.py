"""Nothing wrong is silent: every valid definition of the condition tests, mutated the ways
people get definitions wrong (a misspelled key, an extra key, a wrong type), is refused,
and one of the messages names the node that was changed. Campaign behaviour conditions
are mutated too: the hand-worked ones, and ones drawn from the generated test's narrowed
campaign schema, alone or inside groups."""
import copy

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from segments.conditions import parse
from segments.conditions.schema import KINDS

from .test_campaign_conditions import cases as campaign_cases
from .test_campaign_conditions import shop  # noqa: F401  (the campaigns and messages they name)
from .test_conditions import CASES, people  # noqa: F401  (the fixture the definitions need)
from .test_schema_generated import campaign_shapes, one_of

pytestmark = pytest.mark.django_db
VALID = [definition for definition, _members in CASES]
# Values of the wrong type for the keys that take a text (a campaign also takes its id).
WRONG_TYPES = {"op": [7, None, ["eq"], {"op": "eq"}], "action": [7, None, ["sent"], {"action": "sent"}],
               "channel": [1, False, ["sms"]], "without": [2, None, ["clicked"]],
               "campaign": [None, 1.5, True, ["any"], {"id": 1}]}


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
        return broken, path if key in KINDS else f"{path}{wrong}"  # a renamed kind key: an unknown condition
    typed = sorted(key for key in node if key in WRONG_TYPES)
    if how == "type" and typed:
        key = data.draw(st.sampled_from(typed))
        node[key] = data.draw(st.sampled_from(WRONG_TYPES[key]))
        return broken, f"{path}{key}"
    extra = data.draw(st.sampled_from(["withn", "label", "note", "op2", "values"]))
    node[extra] = 1
    return broken, f"{path}{extra}"


def assert_refused_naming(broken: dict, path: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse(broken)
    shown = path.rstrip(".") or "$"
    assert any(message.startswith(shown) for message in error.value.messages), (broken, shown, error.value.messages)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_definition_is_refused_naming_the_changed_node(people, data):  # noqa: F811
    definition = data.draw(st.sampled_from(VALID))
    parse(definition)  # valid as it stands
    assert_refused_naming(*mutate(definition, data))


@pytest.fixture
def campaign_definitions(shop):  # noqa: F811
    """Campaign conditions: the hand-worked cases, and conditions drawn from the narrowed
    campaign schema (campaigns named by id, by id as text, by name, or "any"), alone, in
    an "all"/"any" group beside another, or under "not". (Built once per test: making the
    schema's strategy is the slow part.)"""
    drawn = from_schema(one_of(*campaign_shapes([shop["shoes"], shop["news"], str(shop["flash"]), "双十一短信"])))
    leaves = st.one_of(st.sampled_from([definition for definition, _members in campaign_cases(shop)]), drawn)
    return st.one_of(leaves, st.builds(lambda c: {"all": c}, st.lists(leaves, min_size=1, max_size=2)),
                     st.builds(lambda c: {"any": c}, st.lists(leaves, min_size=1, max_size=2)),
                     st.builds(lambda c: {"not": c}, leaves))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_campaign_definition_is_refused_naming_the_changed_node(campaign_definitions, data):
    definition = data.draw(campaign_definitions, label="definition")
    parse(definition)  # valid as it stands
    assert_refused_naming(*mutate(definition, data))

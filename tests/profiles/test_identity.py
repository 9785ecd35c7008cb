"""The identity resolver (profiles.identity) on its own: no database."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.identity import CONFLICT, CREATE, MERGE, UPDATE, Decision, deciding_keys, resolve

STRONG = {"crm_id", "phone", "email"}
PHONE, PHONE2, EMAIL, CRM = ("phone", "+8613800138000"), ("phone", "+8613900139000"), ("email", "a@example.com"), (
    "crm_id", "C1")
TABLET, LAPTOP = ("device_id", "tablet-1"), ("device_id", "laptop-1")


def one(keys, owners, **options) -> Decision:
    [decision] = resolve([keys], owners, STRONG, **options)
    return decision


# --- one record ------------------------------------------------------------------------------

def test_nobody_holds_the_keys_a_new_person_with_all_of_them():
    assert one([PHONE, EMAIL], {}) == Decision(CREATE, group=0, new_keys=(PHONE, EMAIL))


def test_a_known_customer_gets_the_keys_nobody_holds():
    assert one([PHONE, EMAIL], {PHONE: 7}) == Decision(UPDATE, profile_id=7, new_keys=(EMAIL,))
    assert one([PHONE, EMAIL], {PHONE: 7, EMAIL: 7}) == Decision(UPDATE, profile_id=7)


def test_a_shared_device_links_nobody_and_stays_with_its_holder():
    # a new person on the family tablet: created without the tablet
    assert one([PHONE, TABLET], {TABLET: 3}) == Decision(CREATE, group=0, new_keys=(PHONE,))
    # a known person on it: theirs stays theirs, the tablet stays where it is
    assert one([PHONE, TABLET], {PHONE: 5, TABLET: 3}) == Decision(UPDATE, profile_id=5)


def test_weak_keys_decide_only_without_a_strong_key():
    assert one([TABLET], {TABLET: 3}) == Decision(UPDATE, profile_id=3)
    assert one([TABLET, LAPTOP], {TABLET: 3}) == Decision(UPDATE, profile_id=3, new_keys=(LAPTOP,))


def test_strong_keys_of_two_customers_are_a_conflict_named_by_precedence():
    owners = {PHONE: 1, CRM: 2}
    decision = one([PHONE, CRM], owners, precedence=["crm_id", "phone"])
    assert decision == Decision(CONFLICT, profile_ids=(2, 1), keys=(CRM, PHONE))
    # without a precedence, the record's own order
    assert one([PHONE, CRM], owners).keys == (PHONE, CRM)


def test_a_conflict_is_merged_when_the_entry_point_merges():
    assert one([PHONE, CRM, EMAIL], {PHONE: 4, CRM: 2}, on_conflict=MERGE) == Decision(
        MERGE, profile_ids=(2, 4), new_keys=(EMAIL,))


def test_weak_keys_of_two_customers_conflict_or_merge_when_nothing_strong_is_there():
    owners = {TABLET: 1, LAPTOP: 2}
    assert one([TABLET, LAPTOP], owners).action == CONFLICT
    assert one([TABLET, LAPTOP], owners, on_conflict=MERGE).profile_ids == (1, 2)
    # with a strong key the devices say nothing
    assert one([PHONE, TABLET, LAPTOP], owners, on_conflict=MERGE) == Decision(CREATE, group=0, new_keys=(PHONE,))


def test_merge_order_follows_precedence_then_id():
    decision = one([PHONE, CRM], {PHONE: 1, CRM: 9}, precedence=["crm_id"], on_conflict=MERGE)
    assert decision.profile_ids == (9, 1)


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError):
        resolve([[PHONE]], {}, STRONG, on_conflict="ignore")


# --- a batch ---------------------------------------------------------------------------------

def test_records_sharing_a_new_strong_key_are_one_new_person():
    decisions = resolve([[PHONE], [EMAIL], [PHONE, CRM]], {}, STRONG)
    assert [d.action for d in decisions] == [CREATE] * 3
    assert decisions[0].group == decisions[2].group != decisions[1].group


def test_a_new_key_links_a_record_to_a_known_customer():
    decisions = resolve([[CRM, PHONE], [PHONE]], {CRM: 8}, STRONG)
    assert decisions == [Decision(UPDATE, profile_id=8, new_keys=(PHONE,)), Decision(UPDATE, profile_id=8,
                                                                                      new_keys=(PHONE,))]


def test_a_device_alone_joins_the_person_who_brings_it_with_a_strong_key():
    decisions = resolve([[TABLET], [PHONE, TABLET]], {}, STRONG)
    assert decisions[0].group == decisions[1].group
    assert set(decisions[0].new_keys + decisions[1].new_keys) == {PHONE, TABLET}


def test_a_new_device_two_people_bring_goes_to_one_of_them_known_first():
    decisions = resolve([[PHONE, TABLET], [CRM, TABLET]], {CRM: 4}, STRONG)
    assert decisions == [Decision(CREATE, group=0, new_keys=(PHONE,)), Decision(UPDATE, profile_id=4,
                                                                                 new_keys=(TABLET,))]


def test_records_linked_to_two_customers_in_one_batch_conflict_or_merge():
    records = [[CRM, EMAIL], [EMAIL, PHONE]]
    owners = {CRM: 1, PHONE: 2}
    assert [d.action for d in resolve(records, owners, STRONG)] == [CONFLICT, CONFLICT]
    assert [d.profile_ids for d in resolve(records, owners, STRONG, on_conflict=MERGE)] == [(1, 2), (1, 2)]


def test_a_record_sharing_only_a_stored_key_with_a_conflict_is_not_one():
    decisions = resolve([[CRM], [CRM, PHONE]], {CRM: 1, PHONE: 2}, STRONG)
    assert [d.action for d in decisions] == [UPDATE, CONFLICT]


# --- properties ------------------------------------------------------------------------------

KEYS = [("phone", str(n)) for n in range(4)] + [("crm_id", str(n)) for n in range(3)] + [
    ("device_id", str(n)) for n in range(3)] + [("anonymous_id", str(n)) for n in range(2)]
records_strategy = st.lists(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True), min_size=1,
                            max_size=8)
owners_strategy = st.dictionaries(st.sampled_from(KEYS), st.integers(min_value=1, max_value=4), max_size=6)
PRECEDENCE = ["crm_id", "phone"]


def canonical(decisions: list[Decision]) -> list:
    """The decisions with new groups named by their first record, and new keys as sets."""
    names: dict[int, int] = {}
    for index, decision in enumerate(decisions):
        if decision.action == CREATE:
            names.setdefault(decision.group, index)
    return [(d.action, d.profile_id, names.get(d.group), frozenset(d.new_keys), d.profile_ids, d.keys)
            for d in decisions]


@settings(max_examples=300, deadline=None)
@given(records_strategy, owners_strategy, st.sampled_from([CONFLICT, MERGE]), st.randoms(use_true_random=False))
def test_the_order_of_the_records_does_not_matter(records, owners, policy, rng):
    strong = {"phone", "crm_id"}
    decisions = canonical(resolve(records, owners, strong, precedence=PRECEDENCE, on_conflict=policy))
    order = list(range(len(records)))
    rng.shuffle(order)
    shuffled = resolve([records[i] for i in order], owners, strong, precedence=PRECEDENCE, on_conflict=policy)
    back: list = [None] * len(records)
    for position, i in enumerate(order):
        back[i] = shuffled[position]
    assert canonical(back) == decisions


def apply(decisions: list[Decision], owners: dict) -> dict:
    """What the writers do with the decisions: merges into the first id, new people, new keys."""
    owners = dict(owners)
    survivor: dict[int, int] = {}
    for decision in decisions:
        if decision.action == MERGE:
            first, *rest = decision.profile_ids
            while first in survivor:
                first = survivor[first]
            for pid in rest:
                while pid in survivor:
                    pid = survivor[pid]
                if pid != first:
                    survivor[pid] = first

    def follow(pid):
        while pid in survivor:
            pid = survivor[pid]
        return pid

    owners = {key: follow(pid) for key, pid in owners.items()}
    new_ids = {}
    for decision in decisions:
        if decision.action == CONFLICT:
            continue
        if decision.action == CREATE:
            pid = new_ids.setdefault(decision.group, 1000 + len(new_ids))
        elif decision.action == UPDATE:
            pid = follow(decision.profile_id)
        else:
            pid = follow(decision.profile_ids[0])
        for key in decision.new_keys:
            assert owners.get(key, pid) == pid, f"{key} given to two people"
            owners[key] = pid
    return owners


@settings(max_examples=300, deadline=None)
@given(records_strategy, owners_strategy, st.sampled_from([CONFLICT, MERGE]))
def test_resolving_again_after_applying_changes_nothing(records, owners, policy):
    strong = {"phone", "crm_id"}
    first = resolve(records, owners, strong, precedence=PRECEDENCE, on_conflict=policy)
    again = resolve(records, apply(first, owners), strong, precedence=PRECEDENCE, on_conflict=policy)
    for before, after in zip(first, again):
        if before.action == CONFLICT:  # reported, not written: still a conflict
            assert after.action == CONFLICT
        else:
            assert after.action == UPDATE and after.new_keys == (), (before, after)


@settings(max_examples=200, deadline=None)
@given(records_strategy, owners_strategy)
def test_a_decided_customer_holds_one_of_the_deciding_keys_or_none_does(records, owners):
    strong = {"phone", "crm_id"}
    for keys, decision in zip(records, resolve(records, owners, strong)):
        held = {owners[key] for key in deciding_keys(keys, strong) if key in owners}
        if decision.action == UPDATE and held:
            assert held == {decision.profile_id}
        if decision.action == CONFLICT:
            assert decision.keys[0] != decision.keys[1]


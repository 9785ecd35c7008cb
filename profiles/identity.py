"""Who incoming records are: the one identity resolver the ways in use (file imports, the
API's upsert, API and SDK event batches, merges by identities). Pure: it sees keys and
the ids of the customers who hold them, never the database, so that the rules below live
here alone and can be tested by themselves.

A record is what one row, request or event brings: its identity keys, each a normalised
(kind, value). The rules:

* Strong kinds (`IdentityKind.merge_on`) decide between customers. Weak ones (device ids,
  an SDK's anonymous id) decide only for a record that has no strong key; a weak key that
  someone else holds is a shared device: it stays where it is, and links nobody.
* A record whose deciding keys belong to nobody is a new person; one whose deciding keys
  belong to one customer updates them; one whose deciding keys belong to several is a
  conflict — reported (`CONFLICT`: imports) or merged (`MERGE`: the API and event batches).
* Records of one batch that share a key nobody holds yet are one person: a strong key
  links any two records that carry it, a weak one links a record without strong keys to
  whoever else brings it. A new weak key that several people bring goes to one of them
  (a customer already known before a new one, then the smallest key): never to two.
  Merging, a record that links new people joins them as it would merge customers.

The decisions do not depend on the order of the records (only the numbering of new
groups does), and applying them then resolving the same records again finds every record
updating its customer with nothing new to add.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

Key = tuple[str, str]

CREATE, UPDATE, CONFLICT, MERGE = "create", "update", "conflict", "merge"


@dataclass(slots=True)
class Decision:
    action: str  # CREATE, UPDATE, CONFLICT or MERGE
    profile_id: int | None = None  # UPDATE: the customer
    group: int | None = None  # CREATE: the new person; records of one group are one person
    new_keys: tuple[Key, ...] = ()  # the record's keys its person (the survivor, after a merge) should get
    profile_ids: tuple[int, ...] = ()  # MERGE and CONFLICT: the customers, in precedence order, then by id
    keys: tuple[Key, Key] | None = None  # CONFLICT: two keys naming different customers (the record's first)


def strong_keys(keys: Sequence[Key], strong: Collection[str]) -> list[Key]:
    return [key for key in keys if key[0] in strong]


def deciding_keys(keys: Sequence[Key], strong: Collection[str]) -> list[Key]:
    """The keys that say who a record is: its strong ones, or all when it has none."""
    return strong_keys(keys, strong) or list(keys)


class _Sets:
    """Union-find (over record positions, or over people)."""

    def __init__(self):
        self.parent: dict = {}

    def root(self, i):
        parent = self.parent
        while parent.get(i, i) != i:
            parent[i] = parent.get(parent[i], parent[i])
            i = parent[i]
        return i

    def join(self, i, j) -> None:
        a, b = self.root(i), self.root(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def resolve(records: Sequence[Sequence[Key]], owners: Mapping[Key, int], strong: Collection[str], *,
            precedence: Sequence[str] = (), on_conflict: str = CONFLICT, link: bool = True) -> list[Decision]:
    """One decision per record (see the module's docstring). `owners`: the stored holder of
    each key the records bring (keys nobody holds are left out). `precedence`: kinds in the
    order they are trusted, for a conflict's message and a merge's order. `on_conflict`:
    CONFLICT or MERGE, for a record whose deciding keys name several customers. `link`:
    False decides each record by itself, as if it came alone (rows that must name a
    customer already known: an import's events and consent)."""
    if on_conflict not in (CONFLICT, MERGE):
        raise ValueError(f"on_conflict must be {CONFLICT!r} or {MERGE!r}")
    records = [list(dict.fromkeys(keys)) for keys in records]
    # People are ("known", profile id) or ("new", label: the smallest key that makes them);
    # merging joins them.
    people = _Sets()
    person: dict[int, tuple | None] = {}  # linked records → their person; None: a conflict
    members: dict[int, list[int]] = {}
    # Most records share no new key with another (an import defers those that would):
    # each is decided by itself, and only the others are linked below.
    brought: set[Key] = set()
    shared: set[Key] = set()  # new keys more than one record brings
    for keys in records if link else ():
        for key in keys:
            if key not in owners:
                if key in brought:
                    shared.add(key)
                brought.add(key)
    first_pass, weak_only = [], []
    root_of: dict[int, int] = {}
    for i, keys in enumerate(records):
        deciding = [key for key in keys if key[0] in strong] or keys
        if shared and not shared.isdisjoint(keys):
            (first_pass if deciding is not keys else weak_only).append(i)
            continue
        held = {owners[key] for key in deciding if key in owners}
        if len(held) == 1:
            person[i] = ("known", held.pop())
        elif held:
            person[i] = _one([("known", pid) for pid in sorted(held)], people, on_conflict)
        else:
            person[i] = ("new", min(deciding) if deciding else ("", str(i)))
        root_of[i] = i

    # 1. Records with a strong key, linked by strong keys nobody holds yet.
    for root, indices in _linked(records, first_pass, lambda key: key[0] in strong and key not in owners,
                                 offset=len(records)):
        found = sorted({("known", owners[key]) for i in indices for key in records[i]
                        if key[0] in strong and key in owners})
        if not found:
            found = [("new", min(key for i in indices for key in records[i] if key[0] in strong))]
        person[root], members[root] = _one(found, people, on_conflict), indices
    # A weak key nobody holds, that several bring with strong keys of their own, goes to
    # one of them: a known customer first, then the smallest id or key.
    claimed: dict[Key, tuple] = {}
    for root, indices in members.items():
        if person[root] is not None:
            for key in {key for i in indices for key in records[i] if key[0] not in strong and key not in owners}:
                if key not in claimed or person[root] < claimed[key]:
                    claimed[key] = person[root]

    # 2. Records without a strong key: their keys decide, the claimed ones too; linked by
    #    weak keys that nobody holds or claims.
    for root, indices in _linked(records, weak_only, lambda key: key not in owners and key not in claimed,
                                 offset=2 * len(records)):
        keys = {key for i in indices for key in records[i]}
        found = sorted({("known", owners[key]) for key in keys if key in owners} |
                       {claimed[key] for key in keys if key in claimed})
        person[root] = _one(found or [("new", min(keys) if keys else ("", str(root)))], people, on_conflict)
        members[root] = indices

    # 3. The decisions, each person as they stand after the merges.
    joined: dict[tuple, set[tuple]] = {}
    for node in people.parent:
        root = people.root(node)
        joined.setdefault(root, {root}).add(node)
    finals: dict[tuple, tuple] = {}

    def final(node: tuple) -> tuple:
        if not joined:  # nobody merged
            return ("known", (node[1],)) if node[0] == "known" else node
        if node not in finals:
            together = joined.get(people.root(node), (node,))
            known = tuple(sorted(pid for kind, pid in together if kind == "known"))
            finals[node] = ("known", known) if known else ("new", min(label for _kind, label in together))
        return finals[node]

    rank = {kind: position for position, kind in enumerate(precedence)}
    root_of.update({i: root for root, indices in members.items() for i in indices})
    decisions: list[Decision] = []
    groups: dict[tuple, int] = {}  # new people, numbered in batch order
    for i, keys in enumerate(records):
        root = root_of[i]
        if person[root] is None:
            decisions.append(_conflict(keys, members.get(root, [i]), records, owners, claimed, strong, rank))
            continue
        node = person[root]
        if not joined and not claimed:  # the usual case: nobody merged, no key disputed
            new_keys = tuple(key for key in keys if key not in owners)
            if node[0] == "known":
                decisions.append(Decision(UPDATE, profile_id=node[1], new_keys=new_keys))
            else:
                decisions.append(Decision(CREATE, group=groups.setdefault(node, len(groups)), new_keys=new_keys))
            continue
        target = final(node)
        new_keys = tuple(key for key in keys if key not in owners and (
            key not in claimed or final(claimed[key]) == target))
        if target[0] == "new":
            decisions.append(Decision(CREATE, group=groups.setdefault(target, len(groups)), new_keys=new_keys))
        elif len(target[1]) == 1:
            decisions.append(Decision(UPDATE, profile_id=target[1][0], new_keys=new_keys))
        else:
            decisions.append(Decision(MERGE, new_keys=new_keys,
                                      profile_ids=_ranked(target[1], keys, owners, strong, rank)))
    return decisions


def _linked(records, indices: list[int], links, offset: int = 0):
    """(root, records) of the groups of these records that share a key `links` accepts."""
    sets, first_with = _Sets(), {}
    for i in indices:
        for key in records[i]:
            if links(key):
                if key in first_with:
                    sets.join(i, first_with[key])
                else:
                    first_with[key] = i
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(sets.root(i) + offset, []).append(i)
    return groups.items()


def _one(found: list[tuple], people: _Sets, on_conflict: str) -> tuple | None:
    """The one person these are, merging them if allowed; None for a conflict."""
    if len(found) > 1:
        if on_conflict == CONFLICT:
            return None
        for other in found[1:]:
            people.join(found[0], other)
    return found[0]


def _owner_of(key: Key, owners: Mapping[Key, int], claimed: Mapping[Key, tuple]):
    return owners[key] if key in owners else claimed.get(key)


def _conflict(keys, indices, records, owners, claimed, strong, rank) -> Decision:
    """The record's deciding keys with an owner, most trusted first (the record's order among
    equals), then its group's: the first key and the first naming someone else."""
    held = [key for key in deciding_keys(keys, strong) if _owner_of(key, owners, claimed) is not None]
    held.sort(key=lambda key: rank.get(key[0], len(rank)))
    others = sorted({key for i in indices for key in deciding_keys(records[i], strong)
                     if key not in held and _owner_of(key, owners, claimed) is not None},
                    key=lambda key: (rank.get(key[0], len(rank)), key))
    held += others
    first = held[0]
    other = next(key for key in held if _owner_of(key, owners, claimed) != _owner_of(first, owners, claimed))
    pids = []
    for key in held:
        owner = owners.get(key)
        if owner is not None and owner not in pids:
            pids.append(owner)
    return Decision(CONFLICT, profile_ids=tuple(pids), keys=(first, other))


def _ranked(pids: tuple[int, ...], keys, owners, strong, rank) -> tuple[int, ...]:
    """Profile ids by the precedence of the best key naming each, then by id (the older first)."""
    best = {pid: len(rank) for pid in pids}
    for key in deciding_keys(keys, strong):
        pid = owners.get(key)
        if pid in best:
            best[pid] = min(best[pid], rank.get(key[0], len(rank)))
    return tuple(sorted(pids, key=lambda pid: (best[pid], pid)))

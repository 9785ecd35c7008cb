"""One line as marketers write it → a definition in the condition language.

    上海+女性+喜欢运动鞋+高购买频率      95后女性、高消费、偏好口红
    近30天下单2次以上，30天内没下单      women in Shanghai who like sneakers, high spend

The line is cut into words (jieba, with the lexicon's phrases), the words matched to the
lexicon (longest phrase first), then split into terms at "and" connectors (+ , 、 ， 和 且
and…) and each term into alternatives at "or" ones (或 / or). Each alternative is read left
to right: entities are conditions by themselves; verbs, categories, numbers, units and
comparisons are assembled into behaviour, spend, age and generation conditions; 不 / 非 /
没有 / not negate what follows. Terms are ANDed; values of one single-valued field
(上海、北京) are ORed, since a customer lives in one city.

Nothing is dropped silently: what is not understood comes back with its span (and "did
you mean" from homophones and near misses), and a word with several meanings (a tag and a
city called the same) comes back with its choices; the definition uses the first unless
the caller chose another (`choose`: the choices' keys)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _

from . import lexicon as lx
from .lexicon import Lexicon, Meaning, normalise

MAX_LENGTH = 300  # characters: a line, not a document
SINGLE_VALUED = ("city", "province", "gender", "lifecycle_stage")
CHINESE_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
NUMBER = re.compile(r"^(\d+(?:\.\d+)?)([kKwW]?)$")
GENERATION_WORD = re.compile(r"^(\d{2})后$")


@dataclass
class Atom:
    start: int
    end: int
    text: str
    meanings: list[Meaning] = field(default_factory=list)
    number: Decimal | None = None
    generation: int | None = None  # "95后" as one word

    def has(self, role: str) -> bool:
        if role == "num":
            return self.number is not None
        return any(m.role == role for m in self.meanings)

    def value(self, role: str):
        return next(m.value for m in self.meanings if m.role == role)

    @property
    def known(self) -> bool:
        return bool(self.meanings) or self.number is not None or self.generation is not None


@dataclass
class Result:
    query: str
    definition: dict | None = None
    understood: list[dict] = field(default_factory=list)
    unknown: list[dict] = field(default_factory=list)
    ambiguities: list[dict] = field(default_factory=list)
    suggestions: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    milliseconds: float = 0.0

    def as_dict(self) -> dict:
        return {"query": self.query, "definition": self.definition, "understood": self.understood,
                "unknown": self.unknown, "ambiguities": self.ambiguities, "suggestions": self.suggestions,
                "errors": self.errors}


def quick_parse(line: str, *, choose: tuple[str, ...] | list[str] = (), user=None, partner=None,
                validate: bool = True) -> Result:
    """The definition a line of text describes, with what was not understood, the
    ambiguities and suggestions. `choose`: keys of the meanings picked for ambiguous words;
    `partner`: a partner asking (segments shared with it only); `user`: the staff member
    (the definition is validated for them)."""
    started = time.perf_counter()
    line = (line or "")[:MAX_LENGTH]
    lexicon = lx.lexicon_for_partner(partner) if partner is not None else lx.lexicon_current()
    result = Result(query=line)
    text = _same_length_nfkc(line)
    atoms = _atoms(text, lexicon)
    reader = _Reader(lexicon, set(choose), result, text)
    conditions = []
    for term in _terms(atoms):
        alternatives = [reader.alternative(part) for part in term]
        alternatives = [found for found in alternatives if found]
        if not alternatives:
            continue
        conditions.extend(_or_between_neighbours(alternatives))
    conditions = _merge_single_valued(conditions)
    if conditions:
        result.definition = {"all": conditions}
    reader.report_unknown()
    if validate and result.definition is not None:
        _validate(result, user)
    result.milliseconds = (time.perf_counter() - started) * 1000
    return result


def _same_length_nfkc(text: str) -> str:
    """Full-width forms folded (＋ → +, ３０ → 30), character by character, so that every
    span still points into the line as typed."""
    import unicodedata

    folded = []
    for char in text:
        normal = unicodedata.normalize("NFKC", char)
        folded.append(normal if len(normal) == 1 else char)
    return "".join(folded)


# --- words → atoms ------------------------------------------------------------------------

def _chinese_number(text: str) -> int | None:
    """一 … 九十九 (三十, 十五, 两): the numbers of windows and counts."""
    if not text or any(char not in CHINESE_DIGITS and char != "十" for char in text):
        return None
    if "十" not in text:
        return CHINESE_DIGITS[text] if len(text) == 1 else None
    tens, _sep, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    return (CHINESE_DIGITS[tens] if tens else 1) * 10 + (CHINESE_DIGITS[ones] if ones else 0)


def _atoms(text: str, lexicon: Lexicon) -> list[Atom]:
    words = [(word, start, end) for word, start, end in lx.tokens(text)]
    words = _join_thousands(words)
    atoms, i = [], 0
    while i < len(words):
        word, start, end = words[i]
        if not word.strip():
            i += 1
            continue
        match = None
        for j in range(min(len(words), i + lexicon.longest), i, -1):
            if not words[j - 1][0].strip():
                continue
            key = normalise(text[start:words[j - 1][2]])
            if key in lexicon.phrases:
                match = (j, key)
                break
        if match:
            j, key = match
            atoms.append(Atom(start, words[j - 1][2], text[start:words[j - 1][2]], list(lexicon.phrases[key])))
            i = j
            continue
        atoms.extend(_word_atoms(word, start, end, lexicon))
        i += 1
    return atoms


def _join_thousands(words):
    """"5", ",", "000" → "5000": a thousands separator is not a connector."""
    joined = []
    for word in words:
        if (len(joined) >= 2 and re.fullmatch(r"\d{3}", word[0]) and joined[-1][0] == ","
                and re.fullmatch(r"\d+", joined[-2][0]) and joined[-2][2] == joined[-1][1]
                and joined[-1][2] == word[1]):
            first = joined[-2]
            joined[-2:] = [(first[0] + word[0], first[1], word[2])]
        else:
            joined.append(word)
    return joined


def _word_atoms(word: str, start: int, end: int, lexicon: Lexicon) -> list[Atom]:
    """A word jieba cut that is no phrase: a number, 95后, or Chinese text covered by
    phrases character by character (what is left is unknown)."""
    number = NUMBER.match(word)
    if number:
        value = Decimal(number.group(1)) * lx.MULTIPLIERS.get(number.group(2).lower(), 1)
        return [Atom(start, end, word, number=value)]
    generation = GENERATION_WORD.match(word)
    if generation:
        return [Atom(start, end, word, generation=int(generation.group(1)))]
    chinese = _chinese_number(word)
    if chinese is not None:
        return [Atom(start, end, word, number=Decimal(chinese))]
    if not lx.has_han(word):
        return [Atom(start, end, word)]
    atoms, i = [], 0
    while i < len(word):
        for j in range(len(word), i, -1):
            key = normalise(word[i:j])
            if key in lexicon.phrases:
                atoms.append(Atom(start + i, start + j, word[i:j], list(lexicon.phrases[key])))
                i = j
                break
        else:
            if atoms and not atoms[-1].known and atoms[-1].end == start + i:
                atoms[-1] = Atom(atoms[-1].start, start + i + 1, atoms[-1].text + word[i])
            else:
                atoms.append(Atom(start + i, start + i + 1, word[i]))
            i += 1
    return atoms


def _terms(atoms: list[Atom]) -> list[list[list[Atom]]]:
    """Atoms split at "and" connectors into terms, and each term at "or" into alternatives.
    "+" right after a number is "or more" (2+ 次), "and" between numbers a range."""
    terms, term, part = [], [], []
    for index, atom in enumerate(atoms):
        before = atoms[index - 1] if index else None
        after = atoms[index + 1] if index + 1 < len(atoms) else None
        if atom.has(lx.CMP_AFTER) and atom.text == "+" and before is not None and before.has("num") \
                and before.end == atom.start:
            atom.meanings = [m for m in atom.meanings if m.role == lx.CMP_AFTER]
            part.append(atom)
        elif atom.has(lx.RANGE) and before is not None and after is not None and before.has("num") \
                and after.has("num"):
            atom.meanings = [m for m in atom.meanings if m.role == lx.RANGE]
            part.append(atom)
        elif atom.has(lx.OR) and not _entity_meanings(atom):
            term.append(part)
            part = []
        elif atom.has(lx.AND) and not _entity_meanings(atom):
            term.append(part)
            terms.append(term)
            term, part = [], []
        else:
            part.append(atom)
    term.append(part)
    terms.append(term)
    return [[part for part in term if part] for term in terms if any(term)]


def _entity_meanings(atom: Atom) -> list[Meaning]:
    return [m for m in atom.meanings if m.role == lx.ENTITY]


# --- atoms → conditions -------------------------------------------------------------------

class _Reader:
    def __init__(self, lexicon: Lexicon, chosen: set[str], result: Result, text: str):
        self.lexicon, self.chosen, self.result, self.text = lexicon, chosen, result, text
        self.unknown: list[tuple[int, int]] = []

    def alternative(self, atoms: list[Atom]) -> list[dict]:
        """The conditions of one alternative of one term, read left to right."""
        found: list[dict] = []
        negate: Atom | None = None
        window: dict | None = None
        count: dict | None = None  # "at least 2" before the verb it counts
        last_event: dict | None = None
        unknown_before = len(self.unknown)
        i = 0
        while i < len(atoms):
            atom = atoms[i]
            read = (self._generation(atoms, i) or self._age(atoms, i) or self._window(atoms, i)
                    or self._count(atoms, i))
            if read and read[0] == "window":
                _kind, value, j = read
                if last_event is not None and "within" not in last_event and last_event.get("event"):
                    last_event["within"] = value
                    self._understood(atoms[i].start, atoms[j - 1].end, _("time window"))
                else:
                    window = value
                i = j
                continue
            if read and read[0] == "count":
                _kind, value, j = read
                if j < len(atoms) and atoms[j].has(lx.VERB):
                    count = value
                    i = j
                    continue
                read = None
            if read:
                _kind, condition, j = read
                found.append(self._negated(condition, negate))
                self._understood(atoms[i].start, atoms[j - 1].end, _("age") if _kind == "age" else _("born"))
                negate, i = None, j
                continue
            if atom.has(lx.NEG) and not _entity_meanings(atom):
                negate = atom
                i += 1
                continue
            if atom.has(lx.VERB):
                condition, j = self._behaviour(atoms, i, window, count)
                window = count = None
                condition = self._negated(condition, negate)
                last_event = condition if "event" in condition else None
                found.append(condition)
                self._understood((negate or atom).start, atoms[j - 1].end, _("behaviour"))
                negate, i = None, j
                continue
            if atom.has(lx.SPEND):
                read = self._spend(atoms, i, window)
                if read:
                    condition, j = read
                    window = None
                    found.append(self._negated(condition, negate))
                    self._understood((negate or atom).start, atoms[j - 1].end, _("spend"))
                    negate, i = None, j
                    continue
            if atom.has(lx.PREFER) and i + 1 < len(atoms) and not _entity_meanings(atom):
                after = atoms[i + 1]
                if after.has(lx.PRODUCT):
                    j = i + 2 + (1 if i + 2 < len(atoms) and atoms[i + 2].has(lx.PREFER_AFTER) else 0)
                    found.append(self._negated(self._interest(after.value(lx.PRODUCT)), negate))
                    self._understood(atom.start, atoms[j - 1].end, _("interest"))
                    negate, i = None, j
                    continue
                if _entity_meanings(after):
                    i += 1  # 喜欢 + a tag or category: the tag or category
                    continue
            if _entity_meanings(atom):
                found.append(self._negated(self._entity(atom), negate))
                negate = None
                i += 1
                continue
            if atom.has(lx.PRODUCT):
                j = i + 1 + (1 if i + 1 < len(atoms) and atoms[i + 1].has(lx.PREFER_AFTER) else 0)
                found.append(self._negated(self._interest(atom.value(lx.PRODUCT)), negate))
                self._understood(atom.start, atoms[j - 1].end, _("interest"))
                negate, i = None, j
                continue
            if atom.has(lx.FILLER) or (atom.meanings and atom.has(lx.WINDOW_AFTER) and not found):
                i += 1
                continue
            self.unknown.append((atom.start, atom.end))
            i += 1
        if negate is not None:
            self.unknown.append((negate.start, negate.end))
        if window is not None and not found:
            self.unknown.append((atoms[0].start, atoms[-1].end))
        if len(self.unknown) > unknown_before and atoms:
            # A near miss of a whole phrase (女姓 for 女性): the whole term is shown, not a part.
            start, end = atoms[0].start, atoms[-1].end
            if self._suggest(self.text[start:end], strong_only=True):
                self.unknown[unknown_before:] = [(start, end)]
                self.result.understood = [u for u in self.result.understood
                                          if not (start <= u["start"] and u["end"] <= end)]
                return []
        return found

    # -- pieces

    def _understood(self, start: int, end: int, label) -> None:
        self.result.understood.append({"start": start, "end": end, "text": self.text[start:end], "label": str(label)})

    def _entity(self, atom: Atom) -> dict:
        meanings = _distinct(_entity_meanings(atom))
        meanings.sort(key=lambda m: lx.PRIORITY.get(m.kind, 99))
        chosen = next((m for m in meanings if m.key in self.chosen), meanings[0])
        if len(meanings) > 1:
            self.result.ambiguities.append({
                "start": atom.start, "end": atom.end, "text": atom.text, "chosen": chosen.key,
                "choices": [{"key": m.key, "label": _meaning_label(m)} for m in meanings],
            })
        self._understood(atom.start, atom.end, _meaning_label(chosen))
        return _copy(chosen.value)

    def _interest(self, category: str) -> dict:
        """喜欢运动鞋 / 偏好口红: the interest tag fed by the category, else having viewed it."""
        tags = self.lexicon.interests.get(category, [])
        if len(tags) == 1:
            return {"tag": tags[0], "op": "has"}
        if tags:
            return {"tags": sorted(tags), "op": "has_any"}
        return {"event": "product_view", "where": [{"property": "category", "op": "eq", "value": category}]}

    @staticmethod
    def _negated(condition: dict, negate: Atom | None) -> dict:
        if negate is None:
            return condition
        flips = {"eq": "ne", "in": "not_in", "has": "has_not", "granted": "not_granted"}
        if "field" in condition and condition["op"] in ("eq", "in"):
            return {**condition, "op": flips[condition["op"]]}
        if "tag" in condition and condition["op"] == "has":
            return {**condition, "op": "has_not"}
        if "consent" in condition and condition["op"] == "granted":
            return {**condition, "op": "not_granted"}
        if "segment" in condition and condition["op"] == "in":
            return {**condition, "op": "not_in"}
        if "not" in condition:
            return condition["not"]
        return {"not": condition}

    # -- patterns (each returns None or (kind, value, next index))

    @staticmethod
    def _at(atoms, i, role) -> bool:
        return i < len(atoms) and atoms[i].has(role)

    def _generation(self, atoms, i):
        atom = atoms[i]
        if atom.generation is not None:
            return ("generation", _generation(atom.generation), i + 1)
        j = i + 1 if self._at(atoms, i, lx.GENERATION_BEFORE) else i
        if self._at(atoms, j, "num") and (j > i or self._at(atoms, j + 1, lx.GENERATION)):
            number = atoms[j].number
            if j > i and number >= 1900 and number == int(number):  # born after 1995
                return ("generation", {"field": "birth_year", "op": "gt", "value": int(number)}, j + 1)
            if number == int(number) and 0 <= number < 100 and (j > i or atoms[j].end == atoms[j + 1].start):
                return ("generation", _generation(int(number)), j + 1 if j > i else j + 2)
        return None

    def _age(self, atoms, i):
        j, op = i, None
        if self._at(atoms, j, lx.AGE_BEFORE):
            j += 1
        if self._at(atoms, j, lx.CMP_BEFORE):
            op, j = atoms[j].value(lx.CMP_BEFORE), j + 1
        if not self._at(atoms, j, "num"):
            return None
        low = atoms[j].number
        j += 1
        high = None
        if self._at(atoms, j, lx.RANGE) and self._at(atoms, j + 1, "num"):
            high, j = atoms[j + 1].number, j + 2
        aged_before = j > i and atoms[i].has(lx.AGE_BEFORE)
        if not self._at(atoms, j, lx.AGE) and not aged_before:
            return None
        if self._at(atoms, j, lx.AGE):
            j += 1
        if self._at(atoms, j, lx.CMP_AFTER):
            op, j = atoms[j].value(lx.CMP_AFTER), j + 1
        low = int(low)
        if high is not None:
            condition = {"field": "age", "op": "between", "value": sorted([low, int(high)])}
        elif op in ("gt", "gte"):
            condition = {"field": "age", "op": "gte", "value": low + (1 if op == "gt" else 0)}
        elif op in ("lt", "lte"):
            condition = {"field": "age", "op": "lte", "value": low - (1 if op == "lt" else 0)}
        else:
            condition = {"field": "age", "op": "between", "value": [low, low]}
        return ("age", condition, j)

    def _window(self, atoms, i):
        j = i + 1 if self._at(atoms, i, lx.WINDOW_BEFORE) else i
        if self._at(atoms, j, lx.SPAN):
            unit, amount = atoms[j].value(lx.SPAN)
            j += 1
        elif self._at(atoms, j, "num") and self._at(atoms, j + 1, lx.UNIT_TIME):
            amount, unit = int(atoms[j].number), atoms[j + 1].value(lx.UNIT_TIME)
            j += 2
        else:
            return None
        if self._at(atoms, j, lx.WINDOW_AFTER):
            j += 1
        if unit == "years":
            unit, amount = "months", amount * 12
        return ("window", {unit: max(1, amount)}, j)

    def _count(self, atoms, i):
        j, op = i, None
        if self._at(atoms, j, lx.CMP_BEFORE):
            op, j = atoms[j].value(lx.CMP_BEFORE), j + 1
        if not self._at(atoms, j, "num"):
            return None
        value = int(atoms[j].number)
        j += 1
        unit = self._at(atoms, j, lx.UNIT_TIMES)
        if unit:
            j += 1
        if self._at(atoms, j, lx.CMP_AFTER):
            op, j = atoms[j].value(lx.CMP_AFTER), j + 1
        if not (op or unit or self._at(atoms, j, lx.VERB)):
            return None
        return ("count", {"op": op or "gte", "value": value}, j)

    def _behaviour(self, atoms, i, window, count):
        condition = {"event": atoms[i].value(lx.VERB)}
        j = i + 1
        products = []
        while True:
            if self._at(atoms, j, lx.PRODUCT):
                products.append(atoms[j].value(lx.PRODUCT))
                j += 1
                continue
            read = self._count(atoms, j) if count is None else None
            if read:
                count, j = read[1], read[2]
                continue
            read = self._window(atoms, j) if window is None else None
            if read:
                window, j = read[1], read[2]
                continue
            if self._at(atoms, j, lx.FILLER) and (self._at(atoms, j + 1, lx.PRODUCT)):
                j += 1
                continue
            break
        if products:
            products = list(dict.fromkeys(products))
            condition["where"] = [{"property": "category", "op": "eq", "value": products[0]} if len(products) == 1
                                  else {"property": "category", "op": "in", "value": products}]
        if count is not None:
            condition["count"] = count
        if window is not None:
            condition["within"] = window
        return condition, j

    def _spend(self, atoms, i, window):
        j, op = i + 1, None
        if self._at(atoms, j, lx.CMP_BEFORE):
            op, j = atoms[j].value(lx.CMP_BEFORE), j + 1
        if self._at(atoms, j, lx.UNIT_MONEY):
            j += 1
        if not self._at(atoms, j, "num"):
            return None
        amount = atoms[j].number
        j += 1
        if self._at(atoms, j, lx.MULTIPLIER):
            amount, j = amount * atoms[j].value(lx.MULTIPLIER), j + 1
        if self._at(atoms, j, lx.UNIT_MONEY):
            j += 1
        if self._at(atoms, j, lx.CMP_AFTER):
            op, j = atoms[j].value(lx.CMP_AFTER), j + 1
        if window is None:
            read = self._window(atoms, j)
            if read:
                window, j = read[1], read[2]
        value = int(amount) if amount == int(amount) else float(amount)
        if window is not None:
            return {"event": "order", "sum": {"op": op or "gte", "value": value}, "within": window}, j
        return {"field": "total_spent", "op": op or "gte", "value": value}, j

    # -- what was not understood

    def report_unknown(self) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(self.unknown):
            if merged and start <= merged[-1][1] + (1 if self.text[merged[-1][1]:start].isspace() else 0):
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:
            text = self.text[start:end]
            suggestions = self._suggest(text)
            self.result.unknown.append({"start": start, "end": end, "text": text, "suggestions": suggestions})
            for suggestion in suggestions[:1]:
                self.result.suggestions.append({"start": start, "end": end, "text": text, "replacement": suggestion})

    def _suggest(self, text: str, strong_only: bool = False) -> list[str]:
        """Phrases the text may have meant: the same pinyin (女姓 → 女性), then near misses
        (Shangai → Shanghai, 喜欢运动衣 → 喜欢运动鞋). `strong_only`: homophones and very
        close matches alone."""
        from pypinyin import lazy_pinyin
        from rapidfuzz import fuzz, process

        key = normalise(text)
        if not key or key in self.lexicon.phrases:
            return []
        found: list[str] = []
        if lx.has_han(key):
            spelled = "".join(lazy_pinyin(key))
            found += [p for p in self.lexicon.pinyin.get(spelled, []) if normalise(p) != key]
            if len(key) >= 2:
                cutoff = 90 if strong_only else 88
                found += [match for match, _score, _i in process.extract(
                    spelled, self.lexicon.spellings, scorer=fuzz.ratio, score_cutoff=cutoff, limit=3)
                    for match in self.lexicon.pinyin[match]]
            if len(key) >= 4:
                found += [match for match, _score, _i in process.extract(
                    key, self.lexicon.shown_list, scorer=fuzz.ratio, score_cutoff=80 if strong_only else 75,
                    limit=3)]
        elif len(key) >= 3:
            cutoff = 90 if strong_only else 75
            found += [match for match, _score, _i in process.extract(
                key, self.lexicon.latin, scorer=fuzz.ratio,
                score_cutoff=cutoff, limit=3, processor=str.casefold)]
        return list(dict.fromkeys(found))[:3]


def _generation(two_digits: int) -> dict:
    """95后 → born 1995–1999; 90后 → 1990–1999; 00后 → 2000–2009."""
    year = (1900 if two_digits >= 30 else 2000) + two_digits
    end = year - year % 10 + 9
    return {"field": "birth_year", "op": "between", "value": [year, end]}


def _distinct(meanings: list[Meaning]) -> list[Meaning]:
    seen, distinct = set(), []
    for meaning in meanings:
        if meaning.key not in seen:
            seen.add(meaning.key)
            distinct.append(meaning)
    return distinct


def _meaning_label(meaning: Meaning) -> str:
    name = meaning.label
    if isinstance(name, dict):
        name = name["zh"] if (translation.get_language() or "").startswith("zh") else name["en"]
    return f"{lx.KIND_LABELS.get(meaning.kind, meaning.kind)}：{name}"


def _copy(condition: dict) -> dict:
    import copy

    return copy.deepcopy(condition)


def _or_between_neighbours(alternatives: list[list[dict]]) -> list[dict]:
    """或 joins the conditions next to it, the rest of the term stays ANDed: 上海或北京女性
    is (上海 or 北京) and 女性, 女性上海或北京 the same."""
    conditions, group = list(alternatives[0][:-1]), [alternatives[0][-1]]
    for found in alternatives[1:]:
        group.append(found[0])
        if len(found) > 1:
            conditions.append(_any(group))
            conditions.extend(found[1:-1])
            group = [found[-1]]
    conditions.append(_any(group) if len(group) > 1 else group[0])
    return conditions


def _any(conditions: list[dict]) -> dict:
    merged = _merge_single_valued(conditions)
    return merged[0] if len(merged) == 1 else {"any": merged}


def _merge_single_valued(conditions: list[dict]) -> list[dict]:
    """上海、北京 (or 上海或北京): one customer lives in one city, so several values of a
    single-valued field mean any of them: {"field": "city", "op": "in", "value": [...]}."""
    merged: list[dict] = []
    positions: dict[str, int] = {}
    for condition in conditions:
        name = condition.get("field")
        if name in SINGLE_VALUED and condition.get("op") in ("eq", "in"):
            values = condition["value"] if condition["op"] == "in" else [condition["value"]]
            if name in positions:
                earlier = merged[positions[name]]
                known = earlier["value"] if earlier["op"] == "in" else [earlier["value"]]
                union = list(dict.fromkeys([*known, *values]))
                merged[positions[name]] = {"field": name, "op": "in", "value": union} if len(union) > 1 else earlier
                continue
            positions[name] = len(merged)
        merged.append(condition)
    return merged


def _validate(result: Result, user) -> None:
    from segments.builder import validation_errors
    from segments.conditions import parse

    try:
        parse(result.definition, user=user)
    except ValidationError as error:
        result.errors = validation_errors(error)

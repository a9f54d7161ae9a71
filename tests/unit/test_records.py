"""shared.records.Record against typing.NamedTuple, which it stands in for: the same class bodies, made by
each, must behave alike (fields, defaults, methods, equality, copies, errors)."""

from __future__ import annotations

import copy
import pickle
import textwrap
import typing
from typing import Any

import pytest

from shared.records import Record

# Each body is made twice, as `class R(Base)` with Base = typing.NamedTuple, then Record.
BODIES = {
    "one field": """
        a: int
    """,
    "fields only": """
        a: int
        b: str
    """,
    "defaults": """
        a: int
        b: str | None = None
        c: tuple = ()
    """,
    "docstring and methods": '''
        """A documented record."""
        a: int
        b: int = 2

        def total(self) -> int:
            return self.a + self.b

        @property
        def double(self) -> int:
            return 2 * self.a

        @classmethod
        def zero(cls) -> "R":
            return cls(0, 0)

        def __repr__(self) -> str:
            return f"R<{self.a}>"
    ''',
    "annotations as text": """
        a: "int"
        b: "list[str] | None" = None
    """,
    "a class attribute that is not a field": """
        a: int
        LIMIT = 3
    """,
    "no fields": """
        LIMIT = 3
    """,
}

# Bodies both refuse, and how.
REFUSED = {
    "no default after a default": ("a: int = 1\nb: int", TypeError),
    "_replace overridden": ("a: int\ndef _replace(self): pass", AttributeError),
    "__new__ overridden": ("a: int\ndef __new__(cls): pass", AttributeError),
    "__slots__ set": ("a: int\n__slots__ = ()", AttributeError),
    "a field named with an underscore": ("_a: int", ValueError),
}

# Ways to make an instance (of the "defaults" body: a, b=None, c=()), each tried first on a class not used yet
# (the first instance compiles `__new__`) and then again: the value made, or the exception's type.
CALLS = {
    "positional": ((1, "x", (2,)), {}),
    "defaults": ((1,), {}),
    "keywords": ((), {"c": (3,), "a": 1}),
    "mixed": ((1,), {"b": "y"}),
    "missing": ((), {"b": "y"}),
    "too many": ((1, 2, 3, 4), {}),
    "twice": ((1,), {"a": 2}),
    "unknown keyword": ((1,), {"d": 4}),
    "nothing": ((), {}),
}


def _make(body: str, base: Any) -> Any:
    namespace: dict[str, Any] = {"Base": base, "__name__": "records_under_test"}
    exec(f"class R(Base):\n{textwrap.indent(textwrap.dedent(body), '    ')}", namespace)  # our own constants
    return namespace["R"]


def _made(r: Any) -> dict[str, Any]:
    """What can be observed of a made class and two of its instances."""
    args = tuple(range(len(r._fields) - len(r._field_defaults)))
    one, two = r(*args), r(*args)
    return {
        "fields": r._fields,
        "defaults": r._field_defaults,
        "names": (r.__name__, r.__qualname__, r.__module__, r.__doc__),
        "bases": [b.__name__ for b in r.__mro__],
        "attributes": sorted(
            k for k in vars(r) if not k.startswith("__") or k in ("__repr__", "__slots__", "__replace__")
        ),
        "method names": (r.__new__.__doc__, r.__getnewargs__.__name__, r.__repr__.__name__),
        "annotation names": list(r.__annotations__),
        "instance": (repr(one), one == two, hash(one) == hash(two), tuple(one), one._asdict()),
        "replaced": tuple(one._replace(**{name: "x" for name in r._fields[:1]})),
        "replaced with an unknown field": _outcome(one._replace, (), {"unknown": 1}),
        "repr of a subclass that iterates otherwise": repr(type("S", (r,), {"__iter__": lambda s: iter("?")})(*args)),
        "made": tuple(r._make(tuple(one))),
        "made from one value too few": _outcome(r._make, (tuple(one)[:-1],), {}),
        "copies": (copy.copy(one) == one, copy.deepcopy(one) == one),
        "no new attributes": _refuses_attribute(one),
        "methods": (one.total(), one.double) if hasattr(r, "total") else None,
        "class attribute": getattr(one, "LIMIT", None),
        "classmethod": tuple(r.zero()) if hasattr(r, "zero") else None,
    }


def _refuses_attribute(instance: Any) -> bool:
    try:
        instance.extra = 1
    except AttributeError:
        return True
    return False


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES)
def test_a_record_is_made_as_typing_makes_it(body: str) -> None:
    assert _made(_make(body, Record)) == _made(_make(body, typing.NamedTuple))


@pytest.mark.parametrize(("body", "error"), REFUSED.values(), ids=REFUSED)
def test_a_body_typing_refuses_is_refused(body: str, error: type[Exception]) -> None:
    for base in (typing.NamedTuple, Record):
        with pytest.raises(error):
            _make(body, base)


def test_records_made_here_pickle_as_their_module_names_them() -> None:
    from shared.sign_service import SignatureRequest

    request = SignatureRequest(procedure="SimpleAesEncryptPreset", class_id=3)
    assert pickle.loads(pickle.dumps(request)) == request


def test_a_record_is_not_made_from_another_base() -> None:
    with pytest.raises(TypeError, match="from Record alone"):

        class Both(Record, Exception):  # type: ignore[misc]
            a: int


def _outcome(make: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    try:
        made = make(*args, **kwargs)
    except Exception as e:  # the outcome compared is the exception's type
        return type(e)
    # each field read by its name too (a default must not stand in for the value given)
    return (type(made).__name__, tuple(made), made._asdict(), tuple(getattr(made, name) for name in made._fields))


@pytest.mark.parametrize(("args", "kwargs"), CALLS.values(), ids=CALLS)
@pytest.mark.parametrize("via", ["class", "subclass"])
def test_instances_are_made_as_typing_makes_them(args: tuple[Any, ...], kwargs: dict[str, Any], via: str) -> None:
    outcomes = []
    for base in (typing.NamedTuple, Record):
        r = _make(BODIES["defaults"], base)
        make = r if via == "class" else type("Sub", (r,), {"__slots__": ()})
        outcomes.append([_outcome(make, args, kwargs), _outcome(make, args, kwargs), _outcome(r, (1,), {})])
    assert outcomes[0] == outcomes[1]

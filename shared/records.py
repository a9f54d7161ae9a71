"""Typed records: `class Settings(Record)` is a typing.NamedTuple to mypy, made at run time without `typing`.

Importing `typing` (with the `contextlib` it imports) is ~3 ms of a function's cold start, and
typing.NamedTuple compiles each annotation given as text (`from __future__ import annotations`). Nor is the
class made by collections.namedtuple, which compiles each record's `__new__` when the class is made: ~70 µs a
record, 1.5-2 ms of the sign function's cold start for its 18 (7 of them settings of other functions, never
made there). The class made here is the one namedtuple makes (a tuple with the same field descriptors and
methods), and its `__new__` is namedtuple's, compiled at the record's first instance (until then
inspect.signature shows `(*args, **kwargs)`). tests/unit/test_records.py builds the same classes with this and
with typing.NamedTuple and compares them.
"""

__all__ = ["Record"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    import sys
    from collections import _tuplegetter  # namedtuple's field descriptor (a C one, with a fallback there)
    from keyword import iskeyword

    # As typing.NamedTuple treats the class body (CPython 3.10-3.13): these names it refuses, these it skips.
    _PROHIBITED = frozenset(
        [
            "__new__",
            "__init__",
            "__slots__",
            "__getnewargs__",
            "_fields",
            "_field_defaults",
            "_make",
            "_replace",
            "_asdict",
            "_source",
        ]
    )
    _SPECIAL = frozenset(("__module__", "__name__", "__annotations__"))

    class _RecordType(type):
        def __new__(cls, name, bases, namespace):
            if not bases:  # Record itself
                return super().__new__(cls, name, bases, namespace)
            if bases != (Record,):
                raise TypeError("a Record is made from Record alone")
            annotations = namespace.get("__annotations__")
            if annotations is None:
                annotations = _deferred_annotations(namespace)
            defaults = []
            for field in annotations:
                if field in namespace:
                    defaults.append(namespace[field])
                elif defaults:
                    raise TypeError(f"Non-default namedtuple field {field} cannot follow default field(s)")
            record = _record_class(name, tuple(annotations), tuple(defaults), namespace["__module__"])
            record.__annotations__ = dict(annotations)
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in record._fields:
                    setattr(record, key, value)
            return record

    def _record_class(name, fields, defaults, module):
        """The class collections.namedtuple(name, fields, defaults=defaults, module=module) makes."""
        for field in fields:
            if not field.isidentifier() or iskeyword(field):  # the check keeps eval below safe
                raise ValueError(f"Type names and field names must be valid identifiers: {field!r}")
            if field.startswith("_"):
                raise ValueError(f"Field names cannot start with an underscore: {field!r}")
        arguments = ", ".join(fields) + ("," if len(fields) == 1 else "")

        def first_new(cls, *args, **kwargs):
            # namedtuple's own __new__, compiled the first time it is needed (it then replaces this one)
            namespace = {"_tuple_new": tuple.__new__, "__builtins__": {}, "__name__": f"namedtuple_{name}"}
            new = eval(f"lambda _cls, {arguments}: _tuple_new(_cls, ({arguments}))", namespace)  # noqa: S307
            new.__name__ = "__new__"
            new.__qualname__ = f"{name}.__new__"
            new.__doc__ = f"Create new instance of {name}({arguments})"
            new.__defaults__ = defaults
            new.__annotations__ = record.__annotations__
            record.__new__ = staticmethod(new)
            return new(cls, *args, **kwargs)

        body = {
            "__doc__": f"{name}({arguments})",
            "__slots__": (),
            "_fields": fields,
            "_field_defaults": dict(zip(fields[len(fields) - len(defaults) :], defaults, strict=True)),
            "__new__": first_new,
            "_make": _make,
            "_replace": _replace,
            "__repr__": _repr,
            "_asdict": _asdict,
            "__getnewargs__": _getnewargs,
            "__match_args__": fields,
        }
        if sys.version_info >= (3, 13):
            body["__replace__"] = _replace  # copy.replace()
        for index, field in enumerate(fields):
            body[field] = _tuplegetter(index, f"Alias for field number {index}")
        record = type(name, (tuple,), body)
        record.__module__ = module
        return record

    # namedtuple's methods, written once rather than for each class
    @classmethod
    def _make(cls, iterable):
        result = tuple.__new__(cls, iterable)
        if len(result) != len(cls._fields):
            raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(result)}")
        return result

    _UNEXPECTED_FIELD = TypeError if sys.version_info >= (3, 13) else ValueError

    def _replace(self, /, **changes):
        result = self._make(map(changes.pop, self._fields, self))
        if changes:
            raise _UNEXPECTED_FIELD(f"Got unexpected field names: {list(changes)!r}")
        return result

    def _repr(self):
        values = tuple.__iter__(self)  # the values themselves, whatever a subclass's __iter__ gives
        fields = ", ".join(f"{field}={value!r}" for field, value in zip(self._fields, values, strict=False))
        return f"{self.__class__.__name__}({fields})"

    def _asdict(self):
        return dict(zip(self._fields, self, strict=False))

    def _getnewargs(self):
        return tuple(self)

    _repr.__name__, _getnewargs.__name__ = "__repr__", "__getnewargs__"

    def _deferred_annotations(namespace):
        """Python 3.14+ (PEP 649) puts an __annotate__ function where __annotations__ was, in a module without
        `from __future__ import annotations`; typing.NamedTuple asks it for the annotations in this format."""
        try:
            import annotationlib
        except ImportError:  # before 3.14: the body has no annotations
            return {}
        annotate = annotationlib.get_annotate_from_class_namespace(namespace)
        return annotationlib.call_annotate_function(annotate, annotationlib.Format.FORWARDREF) if annotate else {}

    class Record(metaclass=_RecordType):
        __slots__ = ()

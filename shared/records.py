"""Typed records: `class Settings(Record)` is a typing.NamedTuple to mypy, made at run time without `typing`.

Importing `typing` (with the `contextlib` it imports) is ~3 ms of a function's cold start, and
typing.NamedTuple compiles each annotation given as text (`from __future__ import annotations`). The class
it makes is a collections.namedtuple with the class body's methods; so is the one made here, the same way
(tests/unit/test_records.py builds the same classes with both and compares them).
"""

__all__ = ["Record"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    from collections import namedtuple

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
            record = namedtuple(name, annotations, defaults=defaults, module=namespace["__module__"])
            record.__annotations__ = record.__new__.__annotations__ = dict(annotations)
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in record._fields:
                    setattr(record, key, value)
            return record

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

"""The construct boundary: control-plane payload layouts declared once, in both directions.

ELS, BLS and CT payloads are declared as construct `Struct`s that read like the standards'
tables (ns.py, els.py, els_login.py, bls.py, ct.py). This module is where those modules'
construct values are held (construct has no type stubs): `Layout` wraps one declaration,
`Payload` binds a frozen dataclass to its layout, and both hand out the typed values the rest
of fcsoft uses, never construct's containers. (fip.py reads its descriptors with construct
on its own.)

Rules of the boundary:
- construct stays off the per-frame path: encap.py, fcoe.py, header.py and fcp.py keep their
  hand-written struct.Struct codecs.
- Every failure to parse is a DecodeError naming the payload (construct raises its own
  errors, its compiled parsers struct.error); a failure to build is a ValueError, because
  the values are ours.
- Each declaration is compiled once, at import, to the fastest form that reads it exactly:
  1. a flat layout (integers, byte strings, padding, constants, fixed arrays of those; most
     of them, and every one a login uses) to one struct.Struct (`_Flat`), whose parse and
     build tests/wire/test_layout.py holds to construct's own;
  2. another fixed-size layout to construct's compiled parser (`Struct(...).compile()`);
  3. a layout whose size depends on its content to construct's compiled parser too when
     something checks the lengths that parser does not (below), else it stays interpreted.
  The length of a fixed layout is checked before it is parsed. That is what makes 1 and 2
  safe: struct needs the bytes, and construct 2.10's generated parsers do not check short
  reads (a truncated `Bytes`, `Padding` or `Int24ub` comes back short or wrong instead of
  raising), while interpreted construct raises on them. A variable layout is compiled when
  a `fault` looks at the bytes after each parse (the name server's symbolic names and entry
  lists) or its caller checks them before (`compiled=True`: the PRLI and RSCN page lists,
  whose length field is validated first).
"""

from __future__ import annotations

import functools
import io
import operator
import struct
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, ClassVar, Self, TypeAlias, TypeVar, cast

import construct

from .errors import DecodeError
from .types import BytesLike

__all__ = ["Fields", "Layout", "Payload", "Wire", "unsigned"]

#: what a parse gives: field name -> value (construct's container, read at the boundary only)
Fields: TypeAlias = Mapping[str, Any]

_T = TypeVar("_T")

# everything construct's interpreted and compiled parsers, and the adapters they call, raise
# on bytes that do not fit the layout
_PARSE_ERRORS = (construct.ConstructError, struct.error, ValueError, TypeError, IndexError,
                 KeyError, OverflowError)


def _detail(exc: BaseException) -> str:
    # construct's messages start with "Error in path (parsing) -> field" on a line of their own
    lines = [line for line in str(exc).splitlines() if line.strip()]
    path = getattr(exc, "path", None)
    text = lines[-1] if lines else type(exc).__name__
    if isinstance(path, str) and "->" in path:
        return f"{path.split('->', 1)[1].strip()}: {text}"
    return text


class Layout:
    """One payload layout: a construct `Struct` (the declaration, kept as `struct`), compiled
    when its size is fixed, with parse and build that raise the project's errors.

    `what` names the payload in errors. `fault(data, parsed)`, when given, says what is
    wrong with `data` (None when nothing is) after every parse, `parsed` being None when the
    parse failed: it words the error better than construct does (a symbolic name running
    past the end), and it is what lets a layout whose length depends on its content be
    compiled (module doc), so a layout with a `fault` is. `compiled` overrides the choice
    between compiled and interpreted for a caller that checks lengths before parsing."""

    __slots__ = ("_build", "_checks", "_fault", "_parse", "flat", "size", "struct", "what")

    def __init__(self, what: str, declaration: Any, *, compiled: bool | None = None,
                 fault: Callable[[BytesLike, Fields | None], str | None] | None = None,
                 ) -> None:
        self.what = what
        self.struct: Any = declaration
        try:
            size: int | None = declaration.sizeof()
        except construct.SizeofError:
            size = None
        self.size = size
        flat = _Flat.of(declaration) if size is not None else None
        self._parse: Callable[[BytesLike], Any]
        self._build: Callable[[Mapping[str, object]], bytes]
        if flat is not None:
            self._parse, self._build = flat.parse, flat.build
        elif compiled if compiled is not None else size is not None or fault is not None:
            self._parse, self._build = _compiled_codec(declaration.compile())
        else:
            self._parse, self._build = declaration.parse, declaration.build
        self.flat = flat is not None
        self._fault = fault
        self._checks = tuple((sc.name, *check) for sc in getattr(declaration, "subcons", ())
                             if sc.name and (check := _check_of(sc.subcon)) is not None)

    def check(self, value: object) -> None:
        """Hold the attributes of `value` named like fields of this layout to the field's
        declaration: an unsigned integer field's width, a byte string's exact length or a
        length-prefixed string's limit. Byte strings are stored back as bytes. ValueError (or
        TypeError for a value of the wrong kind) names the field: a local bug."""
        for name, kind, limit in self._checks:
            field = getattr(value, name, None)
            if field is None:
                continue
            if kind == "bits":
                if not isinstance(field, int) or not 0 <= field < 1 << limit:
                    raise ValueError(f"{self.what} {name} {field!r} does not fit in {limit} "
                                     "bits")
                continue
            # bytes(n) of an int would silently make n zero bytes: insist on a real buffer
            if not isinstance(field, (bytes, bytearray, memoryview)):
                raise TypeError(f"{self.what} {name} must be bytes, not "
                                f"{type(field).__name__}")
            data = bytes(field)
            if kind == "size" and len(data) != limit:
                raise ValueError(f"{self.what} {name} must be {limit} bytes, not {len(data)}")
            if kind == "limit" and len(data) > limit:
                raise ValueError(f"{self.what} {name} is {len(data)} bytes, at most {limit} "
                                 "fit")
            if data is not field:
                object.__setattr__(value, name, data)

    def parse(self, data: BytesLike, what: str | None = None) -> Fields:
        """The fields of the payload at the start of `data` (bytes after it are ignored).

        DecodeError naming `what` (default: the layout's name) when `data` is shorter than a
        fixed layout or does not parse."""
        if self.size is not None and len(data) < self.size:
            raise DecodeError(what or self.what, f"need {self.size} bytes, have {len(data)}")
        try:
            result: Fields = self._parse(data)
        except _PARSE_ERRORS as exc:
            detail = self._fault(data, None) if self._fault is not None else None
            raise DecodeError(what or self.what, detail or _detail(exc)) from None
        if self._fault is not None:
            detail = self._fault(data, result)
            if detail is not None:
                raise DecodeError(what or self.what, detail)
        return result

    def build(self, values: Mapping[str, object]) -> bytes:
        """The bytes of the payload with these field values. ValueError when a value does not
        fit its field (a local bug: decoded values always fit)."""
        try:
            return self._build(values)
        except (construct.ConstructError, struct.error, ValueError, TypeError,
                OverflowError, AttributeError) as exc:
            raise ValueError(f"{self.what}: {_detail(exc)}") from None


class _Flat:
    """The codec of a Struct whose fields all have a struct module format: one precompiled
    struct.Struct, built from the declaration.

    Most control-plane layouts are a row of big-endian integers, byte strings and padding
    (the service parameters, the CT preamble, the name server's registrations). For those
    construct's compiled parser still builds two containers and calls a function per field
    (about half a microsecond each, and garbage for the collector on every login); one
    `unpack_from` does the same work. `flat()` compiles a declaration to this codec when every
    field is a FormatField, a 24-bit BytesInteger, Bytes, Padding, a Const of a FormatField or
    an Array of FormatFields or Bytes, and returns None otherwise. The result is the same
    mapping construct's parse gives, and the same bytes its build does (tests/wire/test_layout
    holds every flat layout to construct's own parse and build).
    """

    __slots__ = ("_codec", "_get", "_names", "_simple", "_slots", "_special")

    def __init__(self, codec: struct.Struct, slots: tuple[tuple[str, str, Any, int], ...]):
        self._codec = codec
        self._slots = slots  # (name, kind, argument, position in the unpacked tuple)
        self._simple = all(kind in ("value", "bytes") for _, kind, _, _ in slots)
        self._names = tuple(name for name, _, _, _ in slots)
        # build: the values of the fields that are not constants, then, from the last to the
        # first so that positions hold, the fields that are not a plain value
        given = [name for name, kind, _, _ in slots if kind != "const"]
        self._special = tuple(reversed(_special_positions(slots)))
        get = operator.itemgetter(*given) if given else (lambda values: ())
        self._get: Callable[[Mapping[str, object]], Any] = (
            get if len(given) != 1 else lambda values: (values[given[0]],))

    @classmethod
    def of(cls, declaration: Any) -> _Flat | None:
        """The flat codec of `declaration`, or None when it has a field this cannot do."""
        fmt = [">"]
        slots: list[tuple[str, str, Any, int]] = []
        position = 0
        for sub in getattr(declaration, "subcons", None) or ():
            con = sub.subcon if isinstance(sub, construct.Renamed) else sub
            if isinstance(con, construct.Padded) and con.subcon is construct.Pass \
                    and isinstance(con.length, int) and con.pattern == b"\0":
                fmt.append(f"{con.length}x")
                continue
            entry = _flat_field(con)
            if entry is None or not sub.name:
                return None
            kind, arg, code, count = entry
            fmt.append(code)
            slots.append((sub.name, kind, arg, position))
            position += count
        if not slots:
            return None
        return cls(struct.Struct("".join(fmt)), tuple(slots))

    def parse(self, data: BytesLike) -> dict[str, Any]:
        values = self._codec.unpack_from(data)
        if self._simple:
            return dict(zip(self._names, values, strict=True))
        fields: dict[str, Any] = {}
        for name, kind, arg, at in self._slots:
            value = values[at]
            if kind == "int":
                value = int.from_bytes(value, "big")
            elif kind == "array":
                value = list(values[at:at + arg[0]])
            elif kind == "const" and value != arg:
                raise construct.ConstError(f"expected {arg!r} but parsed {value!r}")
            fields[name] = value
        return fields

    def build(self, values: Mapping[str, object]) -> bytes:
        if not self._special:
            return self._codec.pack(*self._get(values))
        args = list(self._get(values))
        for at, kind, arg in self._special:
            if kind == "const":
                args.insert(at, arg)
            elif kind == "int":
                args[at] = args[at].to_bytes(arg, "big")
            elif kind == "bytes":
                args[at] = _exact(args[at], arg)
            else:
                count, size = arg
                items = list(args[at])
                if len(items) != count:
                    raise ValueError(f"expected {count} elements, found {len(items)}")
                args[at:at + 1] = items if size is None else [_exact(i, size) for i in items]
        return self._codec.pack(*args)


def _special_positions(slots: tuple[tuple[str, str, Any, int], ...]
                       ) -> list[tuple[int, str, Any]]:
    """(position among the given values, kind, argument) of each field that is not a plain
    value: a constant goes in at the position of the next given value."""
    special: list[tuple[int, str, Any]] = []
    given = 0
    for _, kind, arg, _ in slots:
        if kind != "value":
            special.append((given, kind, arg))
        if kind != "const":
            given += 1
    return special


def _flat_field(con: Any) -> tuple[str, Any, str, int] | None:
    """(kind, argument, struct format, values it unpacks to) of one field, or None."""
    if isinstance(con, construct.Const):
        char = _format_char(con.subcon)
        return ("const", con.value, char, 1) if char else None
    if isinstance(con, construct.Array) and isinstance(con.count, int):
        char, size = _format_char(con.subcon), _bytes_size(con.subcon)
        if char:
            return "array", (con.count, None), f"{con.count}{char}", con.count
        if size is not None:
            return "array", (con.count, size), f"{size}s" * con.count, con.count
        return None
    if isinstance(con, construct.BytesInteger) and isinstance(con.length, int) \
            and not con.signed and not con.swapped:
        return "int", con.length, f"{con.length}s", 1
    char, size = _format_char(con), _bytes_size(con)
    if char:
        return "value", None, char, 1
    if size is not None:
        return "bytes", size, f"{size}s", 1
    return None


def _exact(value: Any, size: int) -> bytes:
    # struct's "Ns" pads or cuts silently; construct's Bytes(N) refuses another length
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != size:
        raise ValueError(f"expected {size} bytes, got {value!r:.40}")
    return bytes(value)


def _format_char(con: Any) -> str:
    fmtstr = getattr(con, "fmtstr", "") if isinstance(con, construct.FormatField) else ""
    return fmtstr[1] if len(fmtstr) == 2 and fmtstr[0] == ">" and fmtstr[1] in "BHLQ" else ""


def _bytes_size(con: Any) -> int | None:
    if isinstance(con, construct.Bytes) and isinstance(con.length, int):
        return con.length
    return None


def _compiled_codec(code: Any) -> tuple[Callable[[BytesLike], Any],
                                         Callable[[Mapping[str, object]], bytes]]:
    """Parse and build functions of a compiled construct.

    Compiled.parse and .build wrap the generated functions (`parsefunc`, `buildfunc`) in a
    fresh stream and a fresh context of five entries on every call, about a microsecond and
    a half of the few a small layout costs. The generated functions read only `_params` from
    the context they are given and build their own below it, so one context serves every
    call; construct versions without these attributes get the plain methods."""
    parsefunc = getattr(code, "parsefunc", None)
    buildfunc = getattr(code, "buildfunc", None)
    if parsefunc is None or buildfunc is None:
        return code.parse, code.build
    parsing = construct.Container(_parsing=True, _building=False, _sizing=False)
    parsing._params = parsing
    building = construct.Container(_parsing=False, _building=True, _sizing=False)
    building._params = building
    new_stream = io.BytesIO

    def parse(data: BytesLike) -> Any:
        return parsefunc(new_stream(data), parsing)

    def build(values: Mapping[str, object]) -> bytes:
        stream = new_stream()
        buildfunc(values, stream, building)
        return stream.getvalue()

    return parse, build


def _check_of(con: Any) -> tuple[str, int] | None:
    """What Layout.check holds a field of construct `con` to, or None for anything else."""
    if isinstance(con, (construct.FormatField, construct.BytesInteger)) and \
            isinstance(con.length, int):
        return "bits", 8 * con.length
    if isinstance(con, construct.Bytes) and isinstance(con.length, int):
        return "size", con.length
    if isinstance(con, construct.Prefixed) and con.subcon is construct.GreedyBytes:
        return "limit", (1 << 8 * con.lengthfield.sizeof()) - 1
    if isinstance(con, construct.FixedSized):
        return _check_of(con.subcon)
    return None


def unsigned(convert: Callable[[int], _T]) -> Callable[[int], _T]:
    """`convert` (an IntFlag, say) that refuses a negative int: IntFlag would wrap it into
    the flag's bits instead of leaving Layout.check a value to refuse."""

    def checked(value: int) -> _T:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"{value} is negative")
        return convert(value)

    return checked


#: a field's conversion between the value its layout reads and writes and the typed value
Wire: TypeAlias = tuple[Callable[[Any], object], Callable[[Any], object]]


class Payload:
    """Base of a frozen dataclass that is one layout: its fields are the layout's named fields
    (other named fields, such as a constant command byte, are built from the layout alone).

    Subclasses set `_layout`, and may declare per field:
    - `_convert`: a conversion to a richer type than the layout's (WWN, an enum), applied to
      a caller's values and to decoded ones alike;
    - `_wire`: (decode, encode) between the layout's value and the typed value where they
      differ in kind (the words of the FC-4 TYPEs object and an Fc4Types; a list of 16-byte
      blocks and the payloads they hold). Doing this here rather than with construct
      adapters keeps the layouts compiled: an adapter runs interpreted.
    Construction converts, checks every field against its declaration (Layout.check) and
    then `_validate`s the rules that are not field widths. Decoding converts and validates
    too but skips the width checks, which bytes read by the layout always pass. Classes whose
    typed fields differ from the layout's in shape override `_from_fields` / `_to_fields`.

    `_memoize` keeps the last few thousand decodings and encodings of a fixed-size layout
    whose values repeat, in a least-recently-used cache shared by the classes that set it:
    the CT preamble, which every CT_IU carries and which differs little between them, and
    the class service parameter blocks and pages of logins. The values are frozen, so a
    cached one can be handed out again; a decode that fails is not cached."""

    __slots__ = ()
    _layout: ClassVar[Layout]
    _convert: ClassVar[Mapping[str, Callable[[Any], object]]] = {}
    _wire: ClassVar[Mapping[str, Wire]] = {}
    _memoize: ClassVar[bool] = False
    _names: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self._coerce()
        self._layout.check(self)
        self._validate()

    def _coerce(self) -> None:
        """Apply `_convert` (subclasses add conversions that depend on other fields)."""
        for name, convert in self._convert.items():
            object.__setattr__(self, name, convert(getattr(self, name)))

    def _validate(self) -> None:
        """Refuse values the layout could carry but the payload does not allow (ValueError)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._names = ()  # filled on first use: the dataclass decorator runs after this

    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        names = cls._names
        if not names:
            names = cls._names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        return names

    @classmethod
    def array(cls) -> Wire:
        """The `_wire` entry of a field that is an Array of this payload's bytes: a tuple of
        these payloads (each through its own decode / encode, memoized if it is)."""

        # the layout has read each block whole: decode()'s length checks are done already
        layout = cls._layout
        key: Any = cls  # hashable; mypy's Hashable protocol does not see a metaclass __hash__

        def decode(blocks: list[bytes]) -> tuple[Payload, ...]:
            if cls._memoize:
                return tuple([_decode_memo(key, block) for block in blocks])
            return tuple([cls.from_parsed(layout.parse(block), layout.what)
                          for block in blocks])

        def encode(values: tuple[Payload, ...]) -> list[bytes]:
            return [value.encode() for value in values]

        return decode, encode

    def _to_fields(self) -> Mapping[str, object]:
        values = vars(self)
        if self._wire:
            values = dict(values)
            for name, (_, encode) in self._wire.items():
                values[name] = encode(values[name])
        return values

    @classmethod
    def _from_fields(cls, parsed: Fields) -> Self:
        value = object.__new__(cls)
        wire = cls._wire
        for name in cls._field_names():
            field = parsed[name]
            if name in wire:
                field = wire[name][0](field)
            object.__setattr__(value, name, field)
        value._coerce()
        value._validate()
        return value

    def encode(self) -> bytes:
        """The payload's bytes."""
        layout = self._layout
        if self._memoize and not layout.flat:  # a flat layout packs sooner than it hashes
            return _encode_memo(self)
        return layout.build(self._to_fields())

    @classmethod
    def decode(cls, data: BytesLike) -> Self:
        """Decode the payload at the start of `data`; bytes after it are ignored."""
        layout = cls._layout
        if cls._memoize and layout.size is not None:
            key: Any = cls  # as in array()
            return cast(Self, _decode_memo(key, bytes(data[:layout.size])))
        return cls.from_parsed(layout.parse(data), layout.what)

    @classmethod
    def from_parsed(cls, parsed: Fields, what: str) -> Self:
        """The typed value of parsed fields; values the dataclass refuses are a DecodeError."""
        try:
            return cls._from_fields(parsed)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, DecodeError):
                raise
            raise DecodeError(what, str(exc)) from None


@functools.lru_cache(maxsize=4096)
def _decode_memo(cls: type[Payload], data: bytes) -> Payload:
    return cls.from_parsed(cls._layout.parse(data), cls._layout.what)


@functools.lru_cache(maxsize=4096)
def _encode_memo(value: Payload) -> bytes:
    return value._layout.build(value._to_fields())

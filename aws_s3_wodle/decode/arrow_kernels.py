"""JSON text assembled by Arrow compute kernels: the fast path of ``convert.batch_to_json``.

Every value becomes its JSON text inside Arrow, with whole-array kernels: casts for numbers,
dates and decimals, the RFC 3339 patch for timestamps, quoting for strings. Objects and
arrays are concatenated from their members' texts with ``binary_join_element_wise`` and
``binary_join``, level by level, so a row never becomes a Python object. A member's key and
comma are written by the same kernel call that writes its value, and a null member is a
null text that joins as nothing: that is how nulls are dropped without a per-row pass.
Kernels release the GIL, so batches convert in parallel threads.

The only per-value Python work is for what Arrow cannot spell like orjson: strings holding
characters JSON must escape (found by one scan of the column's bytes, then escaped by
orjson), binary (base64), and the few floats Arrow writes in another form (below 1e-5 or
with an exponent). The output is byte for byte what the reference converter in ``convert``
gives: same key order, same float spelling, same escapes.

Types this path does not encode (list views, unions, intervals, a struct or list as a map
key) raise ``Unsupported`` when the schema is compiled; a map value holding one key twice
raises ``DuplicateMapKeys`` for that batch. ``convert`` then uses the reference converter.
"""
from __future__ import annotations

import base64
from typing import Callable, List, Optional, Sequence, Tuple, Union

import orjson
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Unsupported", "DuplicateMapKeys", "compile_schema"]

_STR = pa.string()
_DROP = pc.JoinOptions(null_handling="replace", null_replacement="")
# Bytes a JSON string cannot hold as they are: quote, backslash, control characters.
_UNSAFE = bytes(0 if b < 0x20 or b in (0x22, 0x5C) else 1 for b in range(256))
_UNSAFE_RE2 = r'["\\\x00-\x1f]'


class Unsupported(TypeError):
    """The schema holds a type this path does not encode; the reference converter does."""


class DuplicateMapKeys(ValueError):
    """A map value repeats a key in this batch: the reference converter writes it."""


def compile_schema(schema: pa.Schema, keep_nulls: bool) -> Callable[[pa.RecordBatch], pa.Array]:
    """The batch -> JSON-text converter of ``schema``: a string array, one document per row."""
    obj = _Object([(f.name, _node(f.type, keep_nulls)) for f in schema], keep_nulls)

    def convert(batch: pa.RecordBatch) -> pa.Array:
        n = batch.num_rows
        return _text_of(obj.parts([batch.column(i) for i in range(batch.num_columns)], n, "", ""), n)
    return convert


# --- parts: how text is assembled -------------------------------------------------------
#
# A node writes a value as *parts*: strings (the same in every row) and string arrays, to be
# concatenated row by row by one ``binary_join_element_wise`` call where a null array item
# counts as nothing. A value that is never null is written as parts inline (``'"k":"'``,
# the column, ``'"'``), so its text is copied once, into the document itself. A value that
# is null in some rows is written as one array, null in those rows, so that its key and
# comma vanish with it: that is how null members are dropped without a per-row pass.
_Parts = List[Union[str, pa.Array]]


def _merge(parts: _Parts) -> _Parts:
    """Adjacent strings as one (fewer arguments for the kernel), empty ones left out."""
    out: _Parts = []
    for p in parts:
        if isinstance(p, str):
            if not p:
                continue
            if out and isinstance(out[-1], str):
                out[-1] += p
                continue
        out.append(p)
    return out


def _text_of(parts: _Parts, n: int) -> pa.Array:
    """The parts concatenated: a string array of ``n`` rows (null items count as nothing)."""
    parts = _merge(parts)
    arrays = [p for p in parts if not isinstance(p, str)]
    if not arrays:
        return pa.array(["".join(parts)] * n, _STR)  # type: ignore[arg-type]
    if len(parts) == 1 and parts[0].null_count == 0:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "", options=_DROP)


def _leaf(text: pa.Array, pre: str, post: str) -> _Parts:
    """The parts of a leaf whose text (null where the value is null) is ``text``."""
    if text.null_count == 0:
        return [pre, text, post]
    if not pre and not post:
        return [text]
    return [pc.binary_join_element_wise(pre, text, post, "")]  # null where text is null


class _Node:
    """How one Arrow type becomes JSON text.

    ``prep`` normalises an array so that its nulls are exactly the values that are null in
    JSON (NaN included). ``parts`` writes ``pre + json(value) + post`` for each value of a
    prepared array, as parts (above); when the array has nulls, as one array null there.
    """

    def prep(self, a: pa.Array) -> pa.Array:
        return a

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        raise NotImplementedError


def _text(node: _Node, a: pa.Array) -> pa.Array:
    """The JSON text of each value of prepared ``a``, null where it is null."""
    parts = node.parts(a, "", "")
    if a.null_count:
        (text,) = parts
        return text
    return _text_of(parts, len(a))


def type_is(t: pa.DataType, predicate: str) -> bool:
    """``pa.types.<predicate>(t)`` where this pyarrow has it (view types are pyarrow >= 16)."""
    check = getattr(pa.types, predicate, None)
    return bool(check and check(t))


def is_text(t: pa.DataType) -> bool:
    """Any Arrow string type (also what convert's reference mapping writes as a JSON string)."""
    return pa.types.is_string(t) or pa.types.is_large_string(t) or type_is(t, "is_string_view")


def is_bytes(t: pa.DataType) -> bool:
    """Any Arrow binary type (also what convert's reference mapping writes as base64)."""
    T = pa.types
    return T.is_binary(t) or T.is_large_binary(t) or T.is_fixed_size_binary(t) or type_is(t, "is_binary_view")


def _node(t: pa.DataType, keep_nulls: bool) -> _Node:
    """The node of one Arrow type, chosen once per schema, never per value."""
    T = pa.types
    if T.is_struct(t):
        return _Struct(t, keep_nulls)
    if T.is_map(t):
        return _Map(t, keep_nulls)
    if T.is_list(t) or T.is_large_list(t):
        return _List(_node(t.value_type, keep_nulls))
    if T.is_fixed_size_list(t):
        return _FixedList(_node(t.value_type, keep_nulls), t.list_size)
    if T.is_dictionary(t):
        return _Dictionary(_node(t.value_type, keep_nulls))
    if isinstance(t, pa.BaseExtensionType):
        return _Prepared(lambda a: a.storage, _node(t.storage_type, keep_nulls))
    if T.is_timestamp(t):
        return _Timestamp(t.unit)
    if T.is_date(t) or T.is_time(t) or T.is_decimal(t):
        return _Cast(_STR, quoted=True)
    if T.is_duration(t):
        return _Prepared(lambda a: a.cast(pa.int64()), _Cast(_STR))
    if T.is_floating(t):
        return _Float()
    if T.is_boolean(t) or T.is_integer(t):
        return _Cast(_STR)
    if T.is_null(t):
        return _Null()
    if is_text(t):
        return _String()
    if is_bytes(t):
        return _Binary()
    raise Unsupported(f"no Arrow-native JSON encoding for {t}")


# --- leaves ----------------------------------------------------------------------------

class _Prepared(_Node):
    """A type written as another one (dictionary -> values, extension -> storage...)."""

    def __init__(self, prepare: Callable[[pa.Array], pa.Array], inner: _Node) -> None:
        self.prepare, self.inner = prepare, inner

    def prep(self, a: pa.Array) -> pa.Array:
        return self.inner.prep(self.prepare(a))

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        return self.inner.parts(a, pre, post)


class _Dictionary(_Node):
    """dictionary<v>: the text of each dictionary value (with the member's key) once, then a take.

    Parquet's dictionary-encoded strings read as dictionaries (formats.parquet asks for the
    low-cardinality ones) are never decoded: a column of 5000 values with a dozen distinct ones
    costs a dozen texts and one gather. A dictionary holding nulls (or NaN) is decoded instead,
    so that the array's null count stays the JSON null count the objects rely on.
    """

    def __init__(self, inner: _Node) -> None:
        self.inner = inner

    def prep(self, a: pa.Array) -> pa.Array:
        if self.inner.prep(a.dictionary).null_count:
            return self.inner.prep(a.dictionary_decode())
        return a

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        if not pa.types.is_dictionary(a.type):  # decoded by prep
            return self.inner.parts(a, pre, post)
        values = self.inner.prep(a.dictionary)
        texts = _text_of(self.inner.parts(values, pre, post), len(values))
        if a.null_count == 0 and len(a):
            low, high = (v.as_py() for v in pc.min_max(a.indices).values())
            if low == high and 0 <= low < len(texts):  # one value in every row: a constant, merged with its neighbours
                return [texts[low].as_py()]
        try:
            return [texts.take(a.indices)]  # null where the index is null
        except IndexError:  # an index out of range, under a null parent (its value is never shown)
            indices = a.indices
            inside = pc.and_(pc.greater_equal(indices, 0), pc.less(indices, len(values)))
            return [texts.take(pc.if_else(inside, indices, pa.scalar(None, indices.type)))]


class _Null(_Node):
    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        return [pa.nulls(len(a), _STR)]


class _Cast(_Node):
    """Arrow's own text of the value: numbers and booleans, or quoted dates, times, decimals."""

    def __init__(self, to: pa.DataType, quoted: bool = False) -> None:
        self.to, self.quote = to, '"' if quoted else ""

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        return _leaf(a.cast(self.to), pre + self.quote, self.quote + post)


class _Timestamp(_Node):
    """``"2024-03-01T00:00:00.065Z"``: the instant in UTC with the unit's fraction digits.

    Viewing as a naive timestamp keeps the instant (Arrow stores UTC whatever the zone);
    cast-and-patch is 5-8x faster than ``strftime``.
    """

    def __init__(self, unit: str) -> None:
        self.naive = pa.timestamp(unit)

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        text = pc.replace_substring(a.view(self.naive).cast(_STR), " ", "T", max_replacements=1)
        return _leaf(text, pre + '"', 'Z"' + post)


class _Float(_Node):
    """Floats as orjson writes them: ``1.0`` not ``1``; ``1e-6``, ``1e16``; NaN and Inf null.

    Arrow's cast gives the same shortest digits (of the float32 for float32 columns); it
    spells integral values without ``.0`` (patched here) and has other exponent thresholds
    (those few values go through orjson).
    """

    def prep(self, a: pa.Array) -> pa.Array:
        if not pa.types.is_float64(a.type) and not pa.types.is_float32(a.type):
            a = a.cast(pa.float32())  # float16: its value, written as the float32 one
        if a.null_count < len(a):
            finite = pc.is_finite(a)
            if not pc.all(finite).as_py():
                a = pc.if_else(finite, a, pa.scalar(None, a.type))
        return a

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        raw = a.cast(_STR)
        if raw.null_count == len(raw):
            return [raw]
        text = raw
        exponent = pc.match_substring(raw, "e")
        integral = pc.invert(pc.or_(pc.match_substring(raw, "."), exponent))
        if pc.any(integral).as_py():
            text = pc.if_else(integral, pc.binary_join_element_wise(raw, ".0", ""), raw)
        # what orjson spells otherwise: exponent forms, and magnitudes below 1e-5 (plain strings
        # searches: 4x cheaper than one regex)
        odd = pc.fill_null(pc.or_(exponent, pc.or_(pc.starts_with(raw, "0.00000"), pc.starts_with(raw, "-0.00000"))),
                           False)
        if pc.any(odd).as_py():
            values = a if pa.types.is_float64(a.type) else raw.cast(pa.float64())
            fixed = [orjson.dumps(v).decode() for v in values.filter(odd).to_pylist()]
            text = pc.replace_with_mask(text, odd, pa.array(fixed, _STR))
        return _leaf(text, pre, post)


class _String(_Node):
    def prep(self, a: pa.Array) -> pa.Array:
        return a if a.type == _STR else a.cast(_STR)

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        if not _may_need_escape(a):
            return _leaf(a, pre + '"', '"' + post)
        mask = pc.fill_null(pc.match_substring_regex(a, _UNSAFE_RE2), False)
        if not pc.any(mask).as_py():
            return _leaf(a, pre + '"', '"' + post)
        escaped = [orjson.dumps(v).decode() for v in a.filter(mask).to_pylist()]
        quoted = pc.binary_join_element_wise('"', a, '"', "")
        return _leaf(pc.replace_with_mask(quoted, mask, pa.array(escaped, _STR)), pre, post)


def _may_need_escape(a: pa.Array) -> bool:
    """One scan of the bytes of all the column's values: false for most columns and batches."""
    if len(a) == 0:
        return False
    _, offsets, data = a.buffers()
    if data is None:
        return False
    bounds = memoryview(offsets).cast("i")
    lo, hi = bounds[a.offset], bounds[a.offset + len(a)]
    return b"\0" in memoryview(data)[lo:hi].tobytes().translate(_UNSAFE)


class _Binary(_Node):
    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        b64 = base64.b64encode
        text = pa.array([None if v is None else b64(v).decode("ascii") for v in a.to_pylist()], _STR)
        return _leaf(text, pre + '"', '"' + post)


# --- containers ------------------------------------------------------------------------

def _with_validity(text: pa.Array, a: pa.Array) -> pa.Array:
    """``text`` (no nulls) made null where ``a`` itself is null."""
    nulls = a.null_count
    if nulls == 0:
        return text
    if nulls == len(a):
        return pa.nulls(len(a), _STR)
    valid = a.is_valid()
    if valid.offset or text.offset or text.null_count:
        return pc.if_else(valid, text, pa.scalar(None, _STR))
    return pa.Array.from_buffers(_STR, len(a), [valid.buffers()[1], text.buffers()[1], text.buffers()[2]])


def _nested(parts: _Parts, a: pa.Array) -> _Parts:
    """The parts of a container: inline when it is never null, else one array null there."""
    if a.null_count == 0:
        return parts
    if a.null_count == len(a):
        return [pa.nulls(len(a), _STR)]
    return [_with_validity(_text_of(parts, len(a)), a)]


def _unique_names(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate field names {dupes}: they cannot all be keys of one JSON object")


class _Object:
    """Members -> the parts of one JSON object per row: keys in schema order, nulls dropped.

    Each member is written with its key and comma. The first member present in every row is
    the anchor: members before it carry a comma after them, members after it a comma before;
    null ones count as nothing. With no anchor, every member carries a leading comma and the
    first one is cut from the object's text.
    """

    def __init__(self, members: List[Tuple[str, _Node]], keep_nulls: bool) -> None:
        _unique_names([name for name, _ in members])
        self.keys = [orjson.dumps(name).decode() + ":" for name, _ in members]
        self.nodes = [node for _, node in members]
        self.keep_nulls = keep_nulls

    def parts(self, columns: List[pa.Array], n: int, pre: str, post: str) -> _Parts:
        cols = [node.prep(c) for node, c in zip(self.nodes, columns)]
        if self.keep_nulls:
            present = list(range(len(cols)))
            anchor: Optional[int] = 0
        else:
            present = [i for i, c in enumerate(cols) if c.null_count < n]
            anchor = next((j for j, i in enumerate(present) if cols[i].null_count == 0), None)
        if not present:
            return [pre + "{}" + post]
        out: _Parts = ["{"]
        for j, i in enumerate(present):
            key, col, node = self.keys[i], cols[i], self.nodes[i]
            if anchor is not None and j < anchor:
                member = node.parts(col, key, ",")
            elif j == anchor:
                member = node.parts(col, key, "")
            else:
                member = node.parts(col, "," + key, "")
            if self.keep_nulls and col.null_count:
                member = [member[0].fill_null(("," if j else "") + key + "null")]
            out += member
        out.append("}")
        if anchor is None:  # every member carried a leading comma: cut the first one
            text = pc.replace_substring(_text_of(out, n), "{,", "{", max_replacements=1)
            return [pre, text, post]
        out[0], out[-1] = pre + "{", "}" + post
        return out


class _Struct(_Node):
    def __init__(self, t: pa.StructType, keep_nulls: bool) -> None:
        fields = [t.field(i) for i in range(t.num_fields)]
        self.obj = _Object([(f.name, _node(f.type, keep_nulls)) for f in fields], keep_nulls)

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        # field(i) applies a's slice but not its validity: null rows are masked by _nested.
        fields = [a.field(i) for i in range(a.type.num_fields)]
        return _nested(self.obj.parts(fields, len(a), pre, post), a)


def _rebased(a: pa.Array) -> Tuple[pa.Array, int, int]:
    """The offsets of list-like ``a`` from 0, and the range of its values they cover."""
    offsets = a.offsets
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    if start:
        offsets = pc.subtract(offsets, pa.scalar(start, offsets.type))
    return offsets, start, end


def _lists(offsets: pa.Array, items: pa.Array) -> pa.Array:
    if pa.types.is_int64(offsets.type):
        return pa.LargeListArray.from_arrays(offsets, items)
    return pa.ListArray.from_arrays(offsets, items)


def _array_parts(item: _Node, offsets: pa.Array, values: pa.Array, a: pa.Array, pre: str, post: str) -> _Parts:
    items = _text(item, item.prep(values))
    if items.null_count:
        items = items.fill_null("null")  # null items stay, as null
    return _nested([pre + "[", pc.binary_join(_lists(offsets, items), ","), "]" + post], a)


class _List(_Node):
    def __init__(self, item: _Node) -> None:
        self.item = item

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        offsets, start, end = _rebased(a)
        return _array_parts(self.item, offsets, a.values.slice(start, end - start), a, pre, post)


class _FixedList(_Node):
    def __init__(self, item: _Node, size: int) -> None:
        self.item, self.size = item, size

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        n, size = len(a), self.size
        offsets = pa.array(range(0, n * size + 1, size), pa.int32())
        return _array_parts(self.item, offsets, a.values.slice(a.offset * size, n * size), a, pre, post)


def _key_node(t: pa.DataType, keep_nulls: bool) -> Tuple[_Node, bool]:
    """A map key's node, and whether its JSON is already a string (else it gets quoted)."""
    T = pa.types
    if T.is_dictionary(t) or isinstance(t, pa.BaseExtensionType):
        inner = t.value_type if T.is_dictionary(t) else t.storage_type
        return _node(t, keep_nulls), _key_node(inner, keep_nulls)[1]
    if T.is_nested(t):
        raise Unsupported(f"map keys of type {t}")
    node = _node(t, keep_nulls)
    return node, isinstance(node, (_String, _Timestamp, _Binary)) or (isinstance(node, _Cast) and bool(node.quote))


class _Map(_Node):
    """map<k, v> -> an object; keys as strings (non-string keys are their JSON, quoted)."""

    def __init__(self, t: pa.MapType, keep_nulls: bool) -> None:
        self.key, self.key_is_string = _key_node(t.key_type, keep_nulls)
        self.item = _node(t.item_type, keep_nulls)
        self.keep_nulls = keep_nulls

    def parts(self, a: pa.Array, pre: str, post: str) -> _Parts:
        offsets, start, end = _rebased(a)
        entries = a.values.slice(start, end - start)
        keys = self.key.prep(entries.field(0))
        if len(entries) > 1:
            _check_unique_keys(offsets, keys)
        if self.key_is_string:
            keys = _text_of(self.key.parts(keys, "", ":"), len(keys))
        else:  # numbers and booleans: quoted (a NaN key reads "null", as orjson says)
            keys = pc.binary_join_element_wise('"', _text(self.key, keys).fill_null("null"), '":', "")
        texts = _text(self.item, self.item.prep(entries.field(1)))
        if texts.null_count and self.keep_nulls:
            texts = texts.fill_null("null")
        if texts.null_count == 0:
            pairs = pc.binary_join_element_wise(keys, texts, "")
            body = pc.binary_join(_lists(offsets, pairs), ",")
        else:  # null values are left out: each pair carries its comma, the first one is cut
            pairs = pc.binary_join_element_wise(",", keys, texts, "").fill_null("")
            body = pc.utf8_slice_codeunits(pc.binary_join(_lists(offsets, pairs), ""), 1)
        return _nested([pre + "{", body, "}" + post], a)


def _check_unique_keys(offsets: pa.Array, keys: pa.Array) -> None:
    """Raise DuplicateMapKeys when one map value holds a key twice (the reference decides)."""
    if isinstance(keys, pa.DictionaryArray):
        keys = keys.indices  # Parquet dictionaries hold distinct values: same index, same key
    # (list_parent_indices aborts on a MapArray in pyarrow 26: use a plain list of the offsets)
    owner = pc.list_parent_indices(_lists(offsets, keys))
    groups = pa.table({"row": owner, "key": keys}).group_by(["row", "key"]).aggregate([])
    if groups.num_rows != len(keys):
        raise DuplicateMapKeys("a map value holds the same key twice")

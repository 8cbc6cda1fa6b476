"""The entry script's own json.loads/json.load on orjson: a differential test against the
standard library over a generated corpus (results with their types, order and float bits;
exceptions with their type and message), the scope (the script's globals only), and the
setting."""

from __future__ import annotations

import codecs
import io
import json
import math
import random
import struct
import sys
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bereit.server import entry, fastjson
from bereit.server.config import ConfigError, parse

from .conftest import SEED_SCRIPT, client, started_app, write_script

STDLIB_LOADS = json.loads


def shape(value) -> list:
    """``value`` as a flat list of tokens, with every type, key order and float bit pattern, so
    ``==`` compares them (flat: deep documents would exhaust the stack of a recursive compare)."""
    out, todo = [], [value]
    while todo:
        item = todo.pop()
        kind = type(item)
        if kind is dict:
            out.append(("dict", len(item)))
            for key, inner in reversed(item.items()):
                todo += [inner, key]
        elif kind is list:
            out.append(("list", len(item)))
            todo += reversed(item)
        elif kind is float:
            out.append(("float", struct.pack("<d", item)))
        else:
            out.append((kind.__name__, item))
    return out


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", shape(fn(*args, **kwargs)))
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return ("raised", type(exc), str(exc))


def same(doc, **kwargs):
    assert outcome(fastjson.loads, doc, **kwargs) == outcome(STDLIB_LOADS, doc, **kwargs), repr(doc)[:200]


# --- the corpus ------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, -(10**18), 0])
    | st.floats()
    | st.text()
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=6), max_leaves=40
)
numbers = st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,4})?\Z")
junk = st.sampled_from(list('[]{}",:0-1.eE \t\n\r\x0c\\u/ntfa\x00\ud800\ufeff\xff'))


def dumped(draw_value, ensure_ascii: bool, indent) -> str:
    return json.dumps(draw_value, ensure_ascii=ensure_ascii, indent=indent)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.booleans(), st.sampled_from([None, 0, 2]), st.sampled_from(["str", "bytes", "bytearray"]))
def test_documents_read_as_the_standard_library_reads_them(value, ensure_ascii, indent, kind):
    text = dumped(value, ensure_ascii, indent)  # NaN and Infinity included: the standard library's own
    doc = text if kind == "str" else (bytes if kind == "bytes" else bytearray)(text.encode("utf-8", "surrogatepass"))
    same(doc)


@settings(max_examples=1000, deadline=None)
@given(numbers)
def test_numbers_read_alike_to_the_bit(text):
    same(text)
    same(f"[{text}, -{text}]".replace("--", "-"))


@settings(max_examples=600, deadline=None)
@given(values, st.lists(st.tuples(st.integers(0, 10**6), junk), min_size=1, max_size=3))
def test_broken_documents_raise_as_the_standard_library_raises(value, edits):
    text = json.dumps(value)
    for where, char in edits:
        where %= len(text) + 1
        text = text[:where] + char + text[where + (where % 2) :]  # insert or replace
    same(text)
    same(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=500, deadline=None)
@given(st.text() | st.binary())
def test_arbitrary_input_gives_the_standard_librarys_answer(doc):
    same(doc)


def test_correctly_rounded_floats_at_the_edges_of_precision():
    rng = random.Random(22)
    cases = ["5e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "1.7976931348623157e308",
             "1.7976931348623158e308", "1.7976931348623159e308", "2.2250738585072011e-308",
             "2.2250738585072014e-308", "9007199254740993", "9007199254740993.0", "0.1", "-0.0", "-0",
             "0e999999", "1e-400", "123456789012345678e-10", "4.9406564584124654e-324"]
    for _ in range(3000):
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(63)))[0]
        if math.isfinite(x):
            halfway = (Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2
            cases += [repr(x), format(halfway, ".17e"), format(halfway, ".16e")]
    for text in cases:
        same(text)
        same(f'{{"x": [{text}]}}'.encode())


@pytest.mark.parametrize(
    "doc",
    [
        "NaN", "-Infinity", "[Infinity]", "1e400", "-1e400",
        "18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
        "123456789012345678901234567890", '{"n": -99999999999999999999}', "1" * 5000,
        '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d\\ude00"', '"\ud800"', b'"\xed\xa0\x80"',
        '{"a": 1, "b": 2, "a": 3}', '{"a": {"x": 1}, "a": [2]}',
        "\ufeff[1]", codecs.BOM_UTF8 + b"[1]", b"\xff\xfe[\x00]\x00", "[1]".encode("utf-16"),
        "[1]".encode("utf-16-le"), "[1]".encode("utf-32"), "[1]".encode("utf-32-be"), b"1\x00",
        " \t\n\r[1] \t\n\r", "\x0c1", "1\x0c", "\u00a01", "[1,]", '{"a":1,}', "01", "1.", ".5", "+1",
        "", " ", "1 2", '"\x1f"', '"\x7f"', '"\u2028"', '"\\u0000"', '"a\\"b\\\\"', '"[[[["',
        "\"]]]]\"", '["]]]]", [[[["[[["]]]]]', "true", "True", "null", "nul",
    ],
)
def test_the_edges_read_alike(doc):
    same(doc)


@pytest.mark.parametrize("nesting", [1, 2, 10, 400, 489, 490, 700, 900, 960, 975, 980, 990, 994, 995, 1000, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("stack", [0, 300, 900])
def test_deep_nesting_reads_or_raises_alike_whatever_the_callers_stack(nesting, stack):
    for doc in ("[" * nesting + "]" * nesting, '{"a":' * nesting + "1" + "}" * nesting,
                "[" * nesting + '"]]"' + "]" * nesting, "[[]," * nesting + "[]" + "]" * nesting):

        def at_depth(k, fn, doc=doc):
            return at_depth(k - 1, fn) if k else outcome(fn, doc)

        assert at_depth(stack, fastjson.loads) == at_depth(stack, STDLIB_LOADS), (nesting, stack, doc[:40])


def test_keyword_arguments_and_other_types_go_to_the_standard_library():
    same("[1.5, 2]", parse_float=Decimal)
    same('{"a": 1}', object_pairs_hook=list)
    same("[NaN]", parse_constant=str)
    same("[1]", cls=json.JSONDecoder)
    same("[1]", bogus=1)
    same(memoryview(b"[1]"))
    same(None)

    class Text(str):
        pass

    same(Text("[1]"))
    assert outcome(fastjson.loads, "[1]", None) == outcome(STDLIB_LOADS, "[1]", None)
    assert outcome(fastjson.loads) == outcome(STDLIB_LOADS)


def test_load_reads_the_file_like_the_standard_library():
    for text in ('{"a": [1, 2.5]}', "{broken", "[NaN]"):
        assert outcome(fastjson.load, io.StringIO(text)) == outcome(json.load, io.StringIO(text))
        assert outcome(fastjson.load, io.BytesIO(text.encode())) == outcome(json.load, io.BytesIO(text.encode()))
    assert outcome(fastjson.load, io.StringIO("[1.5]"), parse_float=Decimal) == outcome(
        json.load, io.StringIO("[1.5]"), parse_float=Decimal
    )


def test_the_error_is_the_standard_librarys_with_its_document():
    body = "{nope"
    with pytest.raises(json.JSONDecodeError) as caught:
        fastjson.loads(body)
    assert caught.value.doc is body and caught.value.pos == 1
    assert caught.value.__context__ is None  # orjson's refusal is not in its traceback
    assert type(caught.value) is json.JSONDecodeError


# --- the scope ----------------------------------------------------------------------------------

SCOPED = """
import json
import json as j
import json.decoder
from json import loads, load as read, dumps, JSONDecodeError
import fastjson_helper as helper

def init():
    pass

def run(raw_data):
    return json.loads(raw_data)
"""


def scoped_script(folder, name):
    write_script(folder, "import json\nfrom json import loads\n", "fastjson_helper.py")
    return write_script(folder, SCOPED, name)


def test_the_entry_script_gets_the_fast_json_and_the_process_keeps_the_standard_one(tmp_path):
    module = entry.load(scoped_script(tmp_path, "scoped_script.py")).module
    assert module.json is module.j and module.json is not json
    assert module.loads is fastjson.loads and module.read is fastjson.load
    assert module.json.loads is fastjson.loads and module.json.load is fastjson.load
    # everything else is the standard library's
    assert module.dumps is json.dumps and module.JSONDecodeError is json.JSONDecodeError
    assert module.json.dumps is json.dumps and module.json.decoder is json.decoder
    assert module.json.JSONDecoder is json.JSONDecoder and "dumps" in dir(module.json)
    # the process, and the modules the script imports, keep the real one
    assert sys.modules["json"] is json and json.loads is STDLIB_LOADS
    assert module.helper.json is json and module.helper.loads is STDLIB_LOADS
    assert module.run('{"a": [1, 2.5]}') == {"a": [1, 2.5]}


def test_with_the_setting_off_the_script_keeps_the_standard_library(tmp_path):
    module = entry.load(scoped_script(tmp_path, "plain_script.py"), fast_json=False).module
    assert module.json is json and module.loads is STDLIB_LOADS and module.read is json.load


def test_what_the_script_assigns_to_its_json_lands_on_the_real_module(tmp_path, monkeypatch):
    script = "import json\ndef init():\n    json.loads = lambda s: 'mine'\n    json.extra = 1\ndef run(d): return json.loads(d)\n"
    monkeypatch.setattr(json, "loads", STDLIB_LOADS)  # undone after the test
    module = entry.load(write_script(tmp_path, script, "assigning_script.py")).module
    module.init()
    assert module.run("[1]") == "mine" and json.loads("[1]") == "mine" and json.extra == 1
    monkeypatch.delattr(json, "extra")


def test_a_json_replaced_in_the_process_is_left_alone(tmp_path, monkeypatch):
    def other_loads(s, **kwargs):
        return "other"

    monkeypatch.setattr(json, "loads", other_loads)
    module = entry.load(write_script(tmp_path, "import json\ndef init(): pass\ndef run(d): return json.loads(d)\n", "replaced_script.py")).module
    assert module.json is json and module.run("[1]") == "other"


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [([], {}, True), (["--fast-json", "off"], {}, False), (["--fast_json", "0"], {}, False),
     ([], {"BEREIT_FAST_JSON": "false"}, False), ([], {"BEREIT_FAST_JSON": "ON"}, True),
     (["--fast-json", "yes"], {"BEREIT_FAST_JSON": "no"}, True)],
)
def test_the_setting(argv, environ, expected):
    assert parse(["--entry-script", "score.py", *argv], environ).fast_json is expected


def test_a_setting_that_is_not_on_or_off_is_refused():
    with pytest.raises(ConfigError, match="--fast-json / BEREIT_FAST_JSON: 'maybe'"):
        parse(["--entry-script", "score.py"], {"BEREIT_FAST_JSON": "maybe"})


# --- through the server -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fast_json", [True, False])
async def test_an_azure_ml_script_parsing_its_body_answers_alike_either_way(tmp_path, digits_model, fast_json):
    folder, rows, expected = digits_model
    app = started_app(tmp_path, SEED_SCRIPT, model_dir=folder, fast_json=fast_json)
    assert (app.entry.module.json.loads is fastjson.loads) is fast_json
    async with client(app) as http:
        good = await http.post("/score", json={"data": rows})
        broken = await http.post("/score", content=b'{"data": [1,', headers={"content-type": "application/json"})
        nan = await http.post("/score", content=b'{"data": [[NaN]]}', headers={"content-type": "text/plain"})
    assert good.status_code == 200 and good.json() == expected
    assert broken.status_code == 400
    assert broken.json()["error"] == "the body is not valid JSON: Expecting value: line 1 column 13 (char 12)"
    # NaN is the standard library's to accept; the model then refuses it (run()'s error, a 500)
    assert nan.status_code == 500 and "ValueError" in nan.json()["error"]


@pytest.mark.parametrize("scale", [1, 7, 70_000])  # 1.0; 0.14285714285714285; 0.00014285714285714287
@pytest.mark.parametrize("rows", [1, 100, 1000])
def test_a_body_of_rows_is_read_by_orjson(monkeypatch, rows, scale):
    body = json.dumps({"data": [[i / scale for i in range(64)]] * rows})
    monkeypatch.setattr(fastjson, "_std_loads", None)  # calling it would raise
    assert fastjson.loads(body) == STDLIB_LOADS(body)
    assert fastjson.loads(body.encode()) == STDLIB_LOADS(body)


@pytest.mark.parametrize(
    "doc",
    ["0.0001234567890123456789", "[0.00012345678901234567891234]", '{"a": 1.2345678901234567890123e-5}',
     "[1234567890123456789.5]", "[1e1234567890123456789]", '["12345678901234567890"]', "[-1234567890123456789]",
     "1234567890123456789", "[9223372036854775807, 12345678901234567890]"],
)
def test_long_digit_runs_read_alike(doc):
    same(doc)
    same(doc.encode())

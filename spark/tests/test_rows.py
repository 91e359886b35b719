"""Unit tests of the pure parts of the Spark job (no Spark, no database): `spark/.venv/bin/python -m pytest spark/tests`.

Cases mirror test/unit/{csv-line,validate}.test.ts of the TypeScript engine where they overlap, so a rule
changed on one side and not the other fails here or in the conformance suite.
"""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ecomstream_spark import rows
from ecomstream_spark.contract import Contract, ContractError, load_contract
from ecomstream_spark.settings import SettingsError, jdbc_from_database_url, load_settings, parse_trigger, redact_url

CONTRACT = load_contract()
RULES = rows.Rules(CONTRACT)
NOW = 1_780_000_000_000  # a fixed batch timestamp (2026-05-28T20:26:40Z)
HOUR = 3_600_000


def iso(ms):
    return rows.iso_z(ms)


def line(**o):
    v = {
        "event_id": "00000000-0000-4000-8000-000000000001",
        "user_id": "U1",
        "event_type": "view",
        "product_id": "P1",
        "product_name": "Mouse",
        "product_category": "Electronics",
        "price": "29.99",
        "event_timestamp": iso(NOW - HOUR),
        "session_id": "S1",
        "device_type": "mobile",
    }
    v.update(o)
    return ",".join(v[c] for c in CONTRACT.column_names)


def validate(text):
    fields, err = rows.split_csv_line(text)
    assert err is None, err
    return rows.validate_fields(fields, RULES, NOW)


def reasons_of(content, name="f.csv"):
    return [(r[0], r[2]) for r in rows.scan_file(name, content, RULES, NOW)]


# -- contract ---------------------------------------------------------------------------------------


def test_the_retryable_sqlstates_come_from_the_contract():
    from ecomstream_spark.jdbc import DatabaseUnavailable, is_connection_error
    from ecomstream_spark.target import Target

    target = Target(CONTRACT)
    assert CONTRACT.retryable_sqlstate_classes == ["08"] and "57P01" in CONTRACT.retryable_sqlstates
    assert target.retryable("08006") and target.retryable("57P01") and target.retryable("53300") and target.retryable("53100")
    assert not target.retryable("23505") and not target.retryable("22P02") and not target.retryable(None)
    # By class, through the cause chain: what the driver's retry loop sees.
    try:
        try:
            raise DatabaseUnavailable("partition 1: PostgreSQL is unavailable")
        except DatabaseUnavailable as e:
            raise RuntimeError("batch 0 failed") from e
    except RuntimeError as outer:
        assert is_connection_error(outer, target.retryable)
    assert not is_connection_error(RuntimeError("connection refused"), target.retryable)  # never by message text


def test_contract_is_read_from_the_exported_json():
    assert CONTRACT.column_names[0] == "event_id" and len(CONTRACT.column_names) == 10
    assert CONTRACT.optional == ["product_name", "product_category", "price", "session_id", "device_type"]
    assert CONTRACT.max_event_age_hours == 24


def test_unknown_contract_version_is_refused():
    raw = dict(CONTRACT.raw, version=99)
    with pytest.raises(ContractError, match="version 99"):
        Contract(raw)


def test_every_reason_code_the_job_emits_exists_in_the_contract():
    # Row and reader reasons come from the contract itself; the job adds the two for files it cannot read.
    emitted = {c["reason"] for c in CONTRACT.checks} | {r["reason"] for r in CONTRACT.reader.values()} | {"file_missing", "file_unreadable"}
    # The TypeScript engine has a few more (file_modified, file_skipped, rejected_by_database): faults
    # Spark's file source and JDBC sink do not report (the README's "Where the Spark job is weaker").
    assert emitted <= set(CONTRACT.reasons)


# -- CSV lines --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fields",
    [
        ("a,b,c", ["a", "b", "c"]),
        ('a,"b,c",d', ["a", "b,c", "d"]),
        ('"say ""hi""",x', ['say "hi"', "x"]),
        ('"",x', ["", "x"]),
        ("a,,", ["a", "", ""]),
        ('x,""', ["x", ""]),
    ],
)
def test_split_valid_lines(text, fields):
    assert rows.split_csv_line(text) == (fields, None)


@pytest.mark.parametrize(
    "text, code, column",
    [
        ('a,"b', "unterminated_quote", 3),
        ('a,"b"c', "after_closing_quote", 6),
        ('a,b"c', "quote_in_unquoted", 4),
        ('"a""', "unterminated_quote", 4),
        ('"a""b', "unterminated_quote", 4),
        (' "a",b', "quote_in_unquoted", 2),
        ('\U0001f600\U0001f600,"x', "unterminated_quote", 4),
        ('\U0001f600,"x"\U0001f600', "after_closing_quote", 6),
    ],
)
def test_split_malformed_lines_give_a_code_and_a_column(text, code, column):
    assert rows.split_csv_line(text) == (None, (code, column))


def test_split_details_come_from_the_contract_templates():
    templates = CONTRACT.reader["malformed"]["detailSplit"]
    for code in CONTRACT.split_failures:
        assert rows.split_detail((code, 7), RULES) == templates[code].replace("{column}", "7")


def test_the_splitter_gives_exactly_the_contract_s_failure_codes():
    given = {rows.split_csv_line(text)[1][0] for text in ('a,"b', 'a,"b"c', 'a,b"c')}
    assert given == set(CONTRACT.split_failures)


def test_a_contract_without_a_split_template_is_refused():
    raw = dict(CONTRACT.raw)
    reader = dict(raw["reader"])
    malformed = dict(reader["malformed"])
    malformed["detailSplit"] = {k: v for k, v in malformed["detailSplit"].items() if k != "quote_in_unquoted"}
    reader["malformed"] = malformed
    raw["reader"] = reader
    with pytest.raises(ContractError):
        Contract(raw, "x.json")


# -- row rules, in their order ------------------------------------------------------------------------


def test_a_valid_row_keeps_its_text_and_nulls_empty_optionals():
    reason, _, values, score = validate(line(product_name="", device_type=""))
    assert reason is None
    assert values[4] is None and values[9] is None
    assert values[6] == "29.99"
    assert score == CONTRACT.quality_weights[2]  # two optional fields empty


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"user_id": ""}, "missing_required"),
        ({"event_type": "click"}, "invalid_event_type"),
        ({"device_type": "phone"}, "invalid_device_type"),
        ({"price": "abc"}, "invalid_price"),
        ({"price": "100000000"}, "invalid_price"),
        ({"price": "99999999.995"}, "invalid_price"),  # rounds to 100000000.00
        ({"price": "-0.01"}, "negative_price"),
        ({"event_timestamp": "2026-02-30T00:00:00Z"}, "invalid_timestamp"),
        ({"event_timestamp": "2026-05-28T24:00:00Z"}, "invalid_timestamp"),
        ({"event_timestamp": "2026-05-28T10:00:00+24:00"}, "invalid_timestamp"),
        ({"event_timestamp": "28/05/2026"}, "invalid_timestamp"),
        ({"event_timestamp": "２０２６-05-28T10:00:00Z"}, "invalid_timestamp"),  # full-width digits are not ASCII
        ({"event_timestamp": iso(NOW - 25 * HOUR)}, "stale_timestamp"),
        ({"event_timestamp": iso(NOW + HOUR)}, "future_timestamp"),
        ({"event_id": "x" * 37}, "field_too_long"),
        ({"product_name": "é" * 201}, "field_too_long"),
        # First failing check wins: required before type before price before timestamp.
        ({"user_id": "", "event_type": "click", "price": "-1"}, "missing_required"),
        ({"event_type": "click", "device_type": "phone", "price": "-1"}, "invalid_event_type"),
        ({"device_type": "phone", "price": "-1"}, "invalid_device_type"),
        ({"price": "-1", "event_timestamp": "nope"}, "negative_price"),
    ],
)
def test_rejections(overrides, reason):
    assert validate(line(**overrides))[0] == reason


@pytest.mark.parametrize("price", ["0", "1e2", ".5", "5.", "+3.25", "99999999.99", "12.345"])
def test_prices_postgresql_accepts(price):
    assert validate(line(price=price))[0] is None


def test_astral_characters_count_once_as_in_postgresql():
    assert validate(line(product_name="\U0001f600" * 200))[0] is None


def test_wrong_column_count():
    assert rows.validate_fields(["a"] * 9, RULES, NOW)[0] == "wrong_column_count"
    assert rows.validate_fields(["a"] * 11, RULES, NOW)[0] == "wrong_column_count"


def test_window_edges_use_whole_milliseconds():
    assert validate(line(event_timestamp=iso(NOW - 24 * HOUR)))[0] is None
    assert validate(line(event_timestamp=iso(NOW - 24 * HOUR - 1)))[0] == "stale_timestamp"
    assert validate(line(event_timestamp=iso(NOW + 300_000)))[0] is None
    assert validate(line(event_timestamp=iso(NOW + 300_001)))[0] == "future_timestamp"


# -- timestamps as stored ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, ms, stored",
    [
        ("2026-05-28T10:00:00Z", 1779962400000, "2026-05-28 10:00:00"),
        ("2026-05-28 10:00:00", 1779962400000, "2026-05-28 10:00:00"),
        ("2026-05-28T10:00:00.123456Z", 1779962400123, "2026-05-28 10:00:00.123456"),
        ("2026-05-28T10:00:00+00:00", 1779962400000, "2026-05-28 10:00:00"),
        ("2026-05-28T12:00:00+02:00", 1779962400000, "2026-05-28 10:00:00"),
        ("2026-05-28T15:30:00.5+0530", 1779962400500, "2026-05-28 10:00:00.5"),
        ("2026-05-28T07:00:00-03:00", 1779962400000, "2026-05-28 10:00:00"),
        ("2024-02-29T00:00:00Z", 1709164800000, "2024-02-29 00:00:00"),
        ("2026-01-01T01:00:00+02:00", 1767222000000, "2025-12-31 23:00:00"),
    ],
)
def test_parse_timestamp(text, ms, stored):
    assert rows.parse_timestamp(text, RULES.timestamp_re) == (ms, stored)


# -- files ----------------------------------------------------------------------------------------------

HEADER = CONTRACT.header.encode()


def test_header_then_rows_with_line_numbers_blank_lines_and_crlf():
    content = HEADER + b"\r\n" + line().encode() + b"\r\n\r\n" + line(event_type="x").encode() + b"\n"
    assert reasons_of(content) == [(2, None), (4, "invalid_event_type")]


def test_bom_is_ignored():
    assert reasons_of(b"\xef\xbb\xbf" + HEADER + b"\n" + line().encode()) == [(2, None)]


def test_empty_and_header_only_files():
    assert reasons_of(b"") == [(0, "empty_file")]
    assert reasons_of(HEADER + b"\n\n") == [(0, "empty_file")]


def test_missing_header_reads_every_line_as_data():
    content = (line() + "\n" + line(event_id="00000000-0000-4000-8000-000000000002", user_id="")).encode()
    assert reasons_of(content) == [(0, "missing_header"), (1, None), (2, "missing_required")]


def test_bad_header_rejects_every_row():
    content = b"event_id,user,event_type\n" + line().encode() + b"\n" + b"\xff\n"
    assert reasons_of(content) == [(0, "bad_header"), (2, "bad_header"), (3, "invalid_encoding")]


def test_header_with_spaces_around_names_is_the_header():
    spaced = ", ".join(CONTRACT.column_names).encode()
    assert reasons_of(spaced + b"\n" + line().encode()) == [(2, None)]


def test_encoding_errors_reject_one_line_each():
    content = HEADER + b"\n" + line().encode() + b"\n" + b"bad \xff byte\n" + b"nul \x00 byte\n" + line(event_id="x2").encode()
    got = list(rows.scan_file("f.csv", content, RULES, NOW))
    assert [(r[0], r[2]) for r in got] == [(2, None), (3, "invalid_encoding"), (4, "invalid_encoding"), (5, None)]
    assert got[1][1] == "bad \ufffd byte" and got[2][1] == "nul \ufffd byte"  # storable in TEXT


def test_first_line_that_cannot_be_decoded_means_no_header_and_no_notice():
    assert reasons_of(b"\xff\n" + line().encode()) == [(1, "invalid_encoding"), (2, None)]


def test_long_raw_lines_are_clipped():
    raw = line(product_name="x" * 70000)
    (r,) = list(rows.scan_file("f.csv", HEADER + b"\n" + raw.encode(), RULES, NOW))
    assert r[2] == "field_too_long" and len(r[1]) == RULES.max_raw_chars + 1


def test_rules_survive_pickling_for_executors():
    import pickle

    copy = pickle.loads(pickle.dumps(RULES))
    assert len(copy.steps) == len(RULES.steps) and copy.key_idx == 0 and copy.header == RULES.header
    assert copy.validate(line().split(","), NOW) == RULES.validate(line().split(","), NOW)


def _contract_with_checks(checks):
    raw = json.loads(json.dumps(CONTRACT.raw))
    raw["checks"] = checks
    return Contract(raw, "test")


def test_checks_compile_only_in_an_order_they_can_run():
    checks = CONTRACT.raw["checks"]
    # The other checks read the fields column_count has counted.
    with pytest.raises(ValueError):
        rows.Rules(_contract_with_checks(checks[1:] + checks[:1]))
    # A time window needs the instant its timestamp check parsed.
    without_timestamp = [c for c in checks if c["check"] != "timestamp"]
    with pytest.raises(ValueError):
        rows.Rules(_contract_with_checks(without_timestamp))


def test_a_timestamp_memo_hit_gives_the_same_verdict_as_the_first_parse():
    ts = iso(NOW - HOUR)
    first = validate(line(event_timestamp=ts))
    again = validate(line(event_timestamp=ts, event_id="00000000-0000-4000-8000-000000000002"))
    assert first[0] is None and again[0] is None and first[2][7] == again[2][7]
    # The same text against another batch timestamp: the window is evaluated anew, not memoised.
    assert rows.validate_fields(line(event_timestamp=ts).split(","), RULES, NOW + 48 * HOUR)[0] == "stale_timestamp"


# -- settings ---------------------------------------------------------------------------------------------


def test_settings_defaults_and_layers():
    s = load_settings([], env={"DATABASE_URL": "postgresql://u:p%40ss@db:5433/ecommerce_events?sslmode=require"})
    assert (s.trigger_kind, s.trigger_seconds, s.max_files_per_trigger, s.shuffle_partitions) == ("interval", 10.0, 1000, 8)
    assert (s.jdbc_url, s.jdbc_user, s.jdbc_password) == ("jdbc:postgresql://db:5433/ecommerce_events?sslmode=require", "u", "p@ss")
    s = load_settings(
        ["--trigger", "available-now", "--max-files-per-trigger", "1"], env={"DATABASE_URL": "postgresql://db/x", "ECOMSTREAM_MAX_FILES_PER_TRIGGER": "5"}
    )
    assert (s.trigger_kind, s.max_files_per_trigger) == ("available-now", 1)


def test_settings_errors_name_the_setting():
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings([], env={})
    with pytest.raises(SettingsError, match="--trigger"):
        parse_trigger("on-arrival")
    with pytest.raises(SettingsError, match="postgresql://"):
        jdbc_from_database_url("mysql://x/y")


def test_a_password_in_a_jdbc_url_is_never_shown():
    url = "jdbc:postgresql://db/x?user=u&password=s3cret&sslmode=require"
    assert redact_url(url) == "jdbc:postgresql://db/x?user=u&password=***&sslmode=require"
    shown = load_settings(["--database-url", url], env={}).as_dict()
    assert "s3cret" not in repr(shown)

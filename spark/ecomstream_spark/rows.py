"""Per-file parsing and row validation: pure Python, no Spark, run on the executors.

This is the twin of the TypeScript engine's reader (src/engine/read-batch.ts, validate.ts, csv-line.ts):
the same lines, the same header verdicts, the same checks in the same order, the same reason codes, the
same text for PostgreSQL. Where the two could drift is spelled out next to the code, and the conformance
suite (test/spark/conformance.test.ts) feeds both engines the same files and compares the tables.

Why the job parses the bytes itself instead of Spark's CSV reader: that reader drops the first line of
every file when `header` is set (a file without a header loses a row silently), decodes invalid UTF-8 to
U+FFFD (an encoding error becomes a different row), and knows no line numbers. The stream therefore
reads whole files (the `binaryFile` source, same FileStreamSource, same checkpoint) and each file is
parsed here with the contract's fixed schema: no inference, ever.

A file yields records `(line_number, raw_line, reason, detail, fields)`:
- valid row:         reason None, fields = the 10 column values ready for PostgreSQL ('' -> None;
                     event_timestamp as UTC wall-clock text, price as written);
- rejected row:      reason = code, fields None;
- file-level notice: line_number 0, raw_line None, reason in empty_file, missing_header, bad_header.
Duplicates are decided later, across the whole batch, by Spark.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .contract import Contract

#: Raw lines are stored up to this many characters in rejected_events (as the TypeScript engine does).
MAX_RAW_CHARS = 65536
#: A field that looks like a column name; a first line made only of these is a header (maybe a wrong one).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]*")
#: ASCII-only on purpose: Python's \d also matches other scripts' digits, JavaScript's does not.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_BOM = b"\xef\xbb\xbf"
#: What JavaScript's String.prototype.trim() removes (Python's str.strip() differs: it keeps U+FEFF and
#: strips U+001C..U+001F). Only used on header fields.
_JS_WHITESPACE = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

Record = Tuple[int, Optional[str], Optional[str], Optional[str], Optional[List[Optional[str]]]]


class Rules(object):
    """Everything a row check needs, derived once from the contract; small and picklable for executors."""

    __slots__ = (
        "header", "ncol", "column_names", "required_idx", "length_checks", "allowed_checks", "decimal_checks",
        "timestamp_idx", "key_idx", "optional_idx", "max_age_ms", "future_ms", "reasons", "header_names",
    )

    def __init__(self, contract: Contract, key_column: str = "event_id") -> None:
        cols = contract.columns
        self.header = contract.header
        self.ncol = len(cols)
        self.column_names = list(contract.column_names)
        self.header_names = self.column_names
        self.required_idx = [i for i, c in enumerate(cols) if c["required"]]
        self.optional_idx = [i for i, c in enumerate(cols) if not c["required"]]
        self.length_checks = [(i, int(c["maxLength"]), c["name"]) for i, c in enumerate(cols) if c.get("maxLength")]
        # Checks on values follow column order: allowed values, then decimals, then timestamps — for the
        # contract's columns that is event_type -> device_type -> price -> event_timestamp, the order the
        # TypeScript engine checks in. Reason codes are derived from column names and checked to exist.
        self.allowed_checks = [
            (i, frozenset(c["allowed"]), tuple(c["allowed"]), c["name"], contract.reason("invalid_" + c["name"]))
            for i, c in enumerate(cols)
            if c.get("allowed") is not None
        ]
        self.decimal_checks = []
        for i, c in enumerate(cols):
            if c["type"] == "decimal":
                limit = 10.0 ** (int(c["precision"]) - int(c["scale"]))
                self.decimal_checks.append(
                    (i, limit, int(c["precision"]), int(c["scale"]), c["name"],
                     contract.reason("invalid_" + c["name"]), contract.reason("negative_" + c["name"]))
                )
        ts_cols = [i for i, c in enumerate(cols) if c["type"] == "timestamp"]
        if len(ts_cols) != 1:
            raise ValueError("the contract must have exactly one timestamp column, found %d" % len(ts_cols))
        self.timestamp_idx = ts_cols[0]
        self.key_idx = contract.index(key_column)
        self.max_age_ms = int(round(float(contract.max_event_age_hours) * 3600000))
        self.future_ms = int(round(float(contract.future_tolerance_seconds) * 1000))
        for code in ("missing_required", "field_too_long", "wrong_column_count", "malformed_csv", "invalid_encoding",
                     "invalid_timestamp", "stale_timestamp", "future_timestamp", "bad_header", "missing_header",
                     "empty_file", "duplicate_event_id", "file_missing", "file_unreadable"):
            contract.reason(code)
        self.reasons = frozenset(contract.reasons)

    def __getstate__(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


# ---------------------------------------------------------------------------------------------------
# CSV: one physical line is one record (no quoted line breaks), as src/engine/csv-line.ts.


def split_csv_line(line: str) -> Tuple[Optional[List[str]], Optional[str]]:
    """RFC 4180 fields of one line: (fields, None) or (None, error). `""` inside quotes is a quote."""
    if '"' not in line:
        return line.split(","), None
    fields: List[str] = []
    n = len(line)
    i = 0
    while True:
        if i < n and line[i] == '"':
            parts = []
            i += 1
            start = i
            while True:
                q = line.find('"', i)
                if q == -1:
                    return None, "unterminated quoted field starting at column %d" % start
                if q + 1 < n and line[q + 1] == '"':
                    parts.append(line[start:q + 1])
                    i = start = q + 2
                    continue
                parts.append(line[start:q])
                i = q + 1
                break
            fields.append("".join(parts))
            if i == n:
                return fields, None
            if line[i] != ",":
                return None, "unexpected character after closing quote at column %d" % (i + 1)
            i += 1
        else:
            comma = line.find(",", i)
            end = n if comma == -1 else comma
            value = line[i:end]
            quote = value.find('"')
            if quote != -1:
                return None, "quote inside an unquoted field at column %d" % (i + 1 + quote)
            fields.append(value)
            if comma == -1:
                return fields, None
            i = comma + 1


def js_trim(s: str) -> str:
    return s.strip(_JS_WHITESPACE)


def classify_header(line: str, rules: Rules) -> str:
    """'ok' (the contract header), 'bad' (a header naming other columns) or 'missing' (the line is data)."""
    if line == rules.header:
        return "ok"
    fields, _ = split_csv_line(line)
    if fields is not None:
        trimmed = [js_trim(f) for f in fields]
        if ",".join(trimmed) == rules.header:
            return "ok"
        if all(_IDENTIFIER.fullmatch(f) for f in trimmed):
            return "bad"
    return "missing"


# ---------------------------------------------------------------------------------------------------
# Values.


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _iso_from_ms(ms: int) -> str:
    """UTC wall-clock text with milliseconds, as JavaScript's Date#toISOString without T and Z."""
    days, rem = divmod(ms, 86400000)
    # civil_from_days
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y += m <= 2
    hh, rem = divmod(rem, 3600000)
    mi, rem = divmod(rem, 60000)
    ss, mss = divmod(rem, 1000)
    return "%04d-%02d-%02d %02d:%02d:%02d.%03d" % (y, m, d, hh, mi, ss, mss)


def parse_timestamp(text: str) -> Tuple[Optional[int], str]:
    """ISO-8601 -> (epoch milliseconds, text for a TIMESTAMP column); (None, '') when invalid.

    `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|+HH:MM|+HHMM]`, no zone = UTC. Comparisons use whole
    milliseconds (the fraction truncated), like the TypeScript engine. The stored text keeps the
    written digits when the zone is UTC; with another offset it is converted to UTC with millisecond
    precision — both exactly as src/engine/validate.ts does, so the engines store the same value.
    """
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None, ""
    y, mo, d, h, mi, s, frac, zone = m.groups()
    year, month, day, hour, minute, second = int(y), int(mo), int(d), int(h), int(mi), int(s)
    if month < 1 or month > 12 or day < 1 or hour > 23 or minute > 59 or second > 59:
        return None, ""
    # JavaScript's Date.UTC reads years 0..99 as 1900..1999; mirrored so both engines agree on them.
    cal_year = year + 1900 if 0 <= year <= 99 else year
    if day > _days_in_month(cal_year, month):
        return None, ""
    wall = ((_days_from_civil(cal_year, month, day) * 24 + hour) * 60 + minute) * 60000 + second * 1000
    frac_ms = int((frac[1:] + "000")[:3]) if frac else 0
    offset_ms = 0
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:])
        if oh > 23 or om > 59:
            return None, ""
        offset_ms = sign * (oh * 60 + om) * 60000
    ms = wall + frac_ms - offset_ms
    if offset_ms == 0:
        stored = "%s-%s-%s %s:%s:%s%s" % (y, mo, d, h, mi, s, frac or "")
    else:
        stored = _iso_from_ms(ms)
    return ms, stored


def _js_round(x: float) -> float:
    """Math.round: halves go towards +infinity."""
    return math.floor(x + 0.5)


def validate_fields(fields: List[str], rules: Rules, batch_ts_ms: int) -> Tuple[Optional[str], Optional[str], Optional[List[Optional[str]]]]:
    """(None, None, values) for a valid row, else (reason, detail, None). First failing check wins."""
    if len(fields) != rules.ncol:
        return "wrong_column_count", "%d fields, expected %d" % (len(fields), rules.ncol), None
    for i in rules.required_idx:
        if fields[i] == "":
            return "missing_required", "%s is empty" % rules.column_names[i], None
    for i, max_len, name in rules.length_checks:
        v = fields[i]
        if len(v) > max_len:  # Python counts code points, as PostgreSQL's VARCHAR(n) does
            return "field_too_long", "%s has %d characters, at most %d allowed" % (name, len(v), max_len), None
    for i, allowed, ordered, name, reason in rules.allowed_checks:
        v = fields[i]
        if v == "":
            continue  # required ones were checked above; an empty optional value is allowed
        if v not in allowed:
            return reason, "%s %s is not one of %s" % (name, _json_str(v), ", ".join(ordered)), None
    for i, limit, precision, scale, name, invalid, negative in rules.decimal_checks:
        v = fields[i]
        if v == "":
            continue
        value = float(v) if _DECIMAL.fullmatch(v) else float("nan")
        if not math.isfinite(value) or abs(_js_round(value * 10 ** scale) / 10 ** scale) >= limit:
            return invalid, "%s %s is not a DECIMAL(%d,%d) number" % (name, _json_str(v), precision, scale), None
        if value < 0:
            return negative, "%s %s is below 0" % (name, v), None
    ts_text = fields[rules.timestamp_idx]
    ms, stored = parse_timestamp(ts_text)
    ts_name = rules.column_names[rules.timestamp_idx]
    if ms is None:
        return "invalid_timestamp", "%s %s is not ISO-8601" % (ts_name, _json_str(ts_text)), None
    if ms < batch_ts_ms - rules.max_age_ms:
        return ("stale_timestamp",
                "%s %s is more than %g h before the batch timestamp %s" % (ts_name, ts_text, rules.max_age_ms / 3600000.0, _iso_z(batch_ts_ms)),
                None)
    if ms > batch_ts_ms + rules.future_ms:
        return "future_timestamp", "%s %s is after the batch timestamp %s" % (ts_name, ts_text, _iso_z(batch_ts_ms)), None
    values: List[Optional[str]] = [v if v != "" else None for v in fields]
    values[rules.timestamp_idx] = stored
    return None, None, values


def _iso_z(ms: int) -> str:
    return _iso_from_ms(ms).replace(" ", "T") + "Z"


def _json_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(ch, "\\u%04x" % ord(ch)))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def clip_raw(raw: str) -> str:
    """PostgreSQL TEXT cannot hold NUL; very long lines are clipped (as the TypeScript engine does)."""
    if "\x00" in raw:
        raw = raw.replace("\x00", "\ufffd")
    return raw[:MAX_RAW_CHARS] + "\u2026" if len(raw) > MAX_RAW_CHARS else raw


# ---------------------------------------------------------------------------------------------------
# Files.


def scan_file(name: str, content: Optional[bytes], rules: Rules, batch_ts_ms: int) -> Iterator[Record]:
    """All records of one file, in line order."""
    # PySpark hands BinaryType values over as bytearray.
    content = b"" if content is None else bytes(content)
    size = len(content)
    data = content[3:] if content.startswith(_BOM) else content
    # Common case: the whole file is UTF-8 without NUL, decoded at once. Otherwise line by line, so one
    # bad byte rejects one line. A newline byte never occurs inside a UTF-8 sequence, so both splits agree.
    lines: List[Any]
    try:
        text = data.decode("utf-8")
        lines = text.split("\n") if "\x00" not in text else data.split(b"\n")
    except UnicodeDecodeError:
        lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline ending the last line does not start another one

    header: Optional[str] = None
    data_rows = 0
    for idx, item in enumerate(lines):
        line_no = idx + 1
        if isinstance(item, bytes):
            try:
                line = item.decode("utf-8")
                bad = "\x00" in line
            except UnicodeDecodeError:
                bad = True
            if bad:
                # Not UTF-8, or a NUL byte: this line alone is rejected.
                data_rows += 1
                shown = item.decode("utf-8", "replace")
                if shown.endswith("\r"):
                    shown = shown[:-1]
                if header is None:
                    # A first line that cannot be decoded is not a header: the file has none. As in the
                    # TypeScript engine, no missing_header notice is written for it, and in a file with a
                    # bad header such a line is invalid_encoding, not bad_header (the encoding check is first).
                    header = "missing"
                nul = item.find(b"\x00")
                detail = "NUL byte at byte %d of the line" % (nul + 1) if nul != -1 else "the line is not valid UTF-8"
                yield (line_no, clip_raw(shown), "invalid_encoding", detail, None)
                continue
        else:
            line = item
        if line.endswith("\r"):
            line = line[:-1]
        if line == "":
            continue  # blank lines are not rows
        if header is None:
            if line_no == 1 and line.startswith("\ufeff"):
                line = line[1:]
            header = classify_header(line, rules)
            if header == "ok":
                continue
            if header == "bad":
                yield (0, None, "bad_header",
                       "header %s does not match %s; every row of the file is rejected" % (_json_str(line[:300]), rules.header), None)
                continue
            yield (0, None, "missing_header",
                   "first line is data, not the header %s; rows are read as data" % rules.header, None)
        data_rows += 1
        if header == "bad":
            yield (line_no, clip_raw(line), "bad_header", "the file header does not match the contract", None)
            continue
        fields, error = split_csv_line(line)
        if fields is None:
            yield (line_no, clip_raw(line), "malformed_csv", error, None)
            continue
        reason, detail, values = validate_fields(fields, rules, batch_ts_ms)
        if reason is not None:
            yield (line_no, clip_raw(line), reason, detail, None)
            continue
        yield (line_no, clip_raw(line), None, None, values)
    if data_rows == 0 and header != "bad":
        yield (0, None, "empty_file", "%s is empty (0 bytes)" % name if size == 0 else "%s has no data rows" % name, None)

"""Per-file parsing and row validation: pure Python, no Spark, run on the executors.

This evaluates the feed contract (spark/event_contract.json by default, or the file given to
`--contract`): the same JSON the TypeScript engine compiles (src/engine/validate.ts). The value semantics
(decimal rounding, timestamp forms and zones, trimming, JSON quoting) are implemented here from their
definition in words, `semantics` in the JSON (src/contract/schema.ts), not by imitating the other engine.
The golden vectors (test/fixtures/contract/vectors.json) run through both evaluators in `npm test`, and the
conformance suite (test/spark/conformance.test.ts) compares the tables both engines write.

Why the job parses the bytes itself instead of Spark's CSV reader: that reader drops the first line of
every file when `header` is set (a file without a header loses a row silently), decodes invalid UTF-8 to
U+FFFD (an encoding error becomes a different row), and knows no line numbers. The stream therefore
reads whole files (the `binaryFile` source, same FileStreamSource, same checkpoint) and each file is
parsed here with the contract's fixed schema: no inference, ever.

A file yields records `(line_number, raw_line, reason, detail, fields, quality)`:
- valid row:         reason None, fields = the column values ready for PostgreSQL ('' -> None;
                     timestamps as UTC wall-clock text, decimals as written), quality its score
                     (semantics.quality: the weight for the number of empty optional fields);
- rejected row:      reason = code, fields None, quality 0.0;
- file-level notice: line_number 0, raw_line None, reason a reader reason of the contract.
Duplicates are decided later, across the whole batch, by Spark.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from .contract import Contract

_BOM = b"\xef\xbb\xbf"
#: Entries of each memo of a pure per-value function (decimal checks, timestamps, calendar dates): feeds
#: repeat prices, days and, within a file, event times, so most rows hit; the bound keeps an executor's
#: memory flat on any input.
_MEMO = 8192
#: PostgreSQL's numeric input refuses larger written exponents (NUMERIC_MAX_PRECISION).
_MAX_DECIMAL_EXPONENT = 1000
_DAY_MS = 86400000

Record = Tuple[int, Optional[str], Optional[str], Optional[str], Optional[List[Optional[str]]], float]
Failure = Tuple[str, str]
#: (reason, detail, values, quality): reason None and the values for PostgreSQL, or values None.
Validated = Tuple[Optional[str], Optional[str], Optional[List[Optional[str]]], float]


def render(template: str, **values: Any) -> str:
    """Fills `{name}` placeholders; an unknown name is left as written."""

    def sub(m: "re.Match[str]") -> str:
        v = values.get(m.group(1))
        return m.group(0) if v is None else (fmt_number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))

    return re.sub(r"\{([a-z_]+)\}", sub, template)


def fmt_number(x: Any) -> str:
    """semantics.numbers: shortest decimal, no exponent, no trailing '.0'."""
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def around_value(template: str, **values: Any) -> Tuple[str, str]:
    """A template split at its {value}, the rest filled: for details built by Spark or SQL from a column."""
    before, _, after = template.partition("{value}")
    return render(before, **values), render(after, **values)


class Check(NamedTuple):
    """One contract check compiled: `test`, a Python expression over the row's values `v<i>`, the parsed
    timestamps `t<i>` and `now`, true when the row passes (names it uses are in `env`); and `fail`, the
    check's (reason, detail) for a row it refuses."""

    test: str
    env: Dict[str, Any]
    fail: Callable[[List[str], int], Failure]


class Rules(object):
    """The contract compiled for rows: small and picklable for executors (checks are rebuilt on load)."""

    def __init__(self, contract: Contract, key_column: Optional[str] = None) -> None:
        self.contract_raw = contract.raw
        self.source = contract.source
        self._build(contract)
        if key_column is not None and key_column != contract.conflict_key:
            raise ValueError("key column %s is not the contract's conflict key %s" % (key_column, contract.conflict_key))

    def _build(self, contract: Contract) -> None:
        cols = contract.columns
        self.header = contract.header
        self.ncol = len(cols)
        self.column_names = list(contract.column_names)
        self.key_idx = contract.index(contract.conflict_key)
        self.optional_idx = [i for i, c in enumerate(cols) if not c["required"]]
        self.timestamp_idx = [i for i, c in enumerate(cols) if c["type"] == "timestamp"]
        self.weights = contract.quality_weights
        self.reader = contract.reader
        self.split_details = contract.split_details
        self.max_line_bytes = int(contract.limits["maxLineBytes"])
        self.max_raw_chars = int(contract.limits["maxRawChars"])
        self.identifier = re.compile(contract.identifier_pattern)
        self.trim_chars = contract.trim_characters
        self.decimal_re = re.compile(contract.decimal_pattern)
        self.timestamp_re = re.compile(contract.timestamp_pattern)
        self.max_age_ms = float(contract.max_event_age_hours) * 3600000
        self.future_ms = float(contract.future_tolerance_seconds) * 1000
        self.hours = contract.max_event_age_hours
        self.steps = [self._check(k, c, contract) for k, c in enumerate(contract.checks)]
        self.validate = self._compile(contract)

    def __getstate__(self) -> Dict[str, Any]:
        return {"contract_raw": self.contract_raw, "source": self.source}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.contract_raw = state["contract_raw"]
        self.source = state["source"]
        self._build(Contract(self.contract_raw, self.source))

    def _compile(self, contract: Contract) -> Callable[[List[str], int], Validated]:
        """The checks as one Python function `validate(fields, now)` -> `Validated`: each check's test in
        contract order (the first failing check wins), then the values for PostgreSQL and the row's
        quality. Generated because a row then costs one call instead of one per check: the executors'
        parsing was the Spark job's largest CPU cost (docs/performance.md). No text of the contract enters
        the source, only column indexes and lengths (ints); sets, patterns and bounds go in by name."""
        if not self.steps or contract.checks[0]["check"] != "column_count":
            raise ValueError("%s: the first check must be column_count (the others read the row's fields)" % self.source)
        n = self.ncol
        names = ", ".join("v%d" % i for i in range(n))
        env: Dict[str, Any] = {"WEIGHTS": self.weights}
        body = ["def validate(f, now):"]
        for k, step in enumerate(self.steps):
            env.update(step.env)
            env["FAIL%d" % k] = step.fail
            body.append("    if not (%s): return (*FAIL%d(f, now), None, 0.0)" % (step.test, k))
            if k == 0:
                body.append("    %s, = f" % names)
        parsed = {i for i in self.timestamp_idx if any(c.get("column") == self.column_names[i] and c["check"] == "timestamp" for c in contract.checks)}
        values = ", ".join(("(t%d[1] if v%d else None)" % (i, i)) if i in parsed else ("v%d or None" % i) for i in range(n))
        missing = " + ".join('(v%d == "")' % i for i in self.optional_idx) or "0"
        body.append("    return None, None, [%s], WEIGHTS[min(%s, %d)]" % (values, missing, len(self.weights) - 1))
        code = compile("\n".join(body) + "\n", "<contract checks of %s>" % self.source, "exec")
        exec(code, env)
        return env["validate"]  # type: ignore[no-any-return]

    def _check(self, k: int, c: Dict[str, Any], contract: Contract) -> Check:
        """Check `k` of the contract compiled; the checks of the whole row first, then one column's."""
        kind, reason, t = c["check"], c["reason"], c["detail"]
        cols = contract.columns
        ncol = self.ncol
        if kind == "column_count":
            return Check("len(f) == %d" % ncol, {}, lambda f, now: (reason, render(t, count=len(f), expected=ncol)))
        if kind == "required":
            req = [(i, cols[i]["name"]) for i, col in enumerate(cols) if col["required"]]

            def required(f: List[str], now: int) -> Failure:
                name = next(name for i, name in req if f[i] == "")
                return reason, render(t, column=name)

            return Check(" and ".join("v%d" % i for i, _ in req) or "True", {}, required)
        if kind == "max_length":
            checks = [(i, int(col["length"]), col["name"]) for i, col in enumerate(cols) if col.get("length")]

            def max_length(f: List[str], now: int) -> Failure:
                # code points, as semantics.length says
                i, max_len, name = next(x for x in checks if len(f[x[0]]) > x[1])
                return reason, render(t, column=name, length=len(f[i]), max=max_len)

            return Check(" and ".join("len(v%d) <= %d" % (i, m) for i, m, _ in checks) or "True", {}, max_length)
        if kind in ("timestamp", "not_stale", "not_future"):
            return self._time_check(k, c, contract)
        return self._value_check(k, c, contract)

    def _value_check(self, k: int, c: Dict[str, Any], contract: Contract) -> Check:
        """A check of one column's value by itself: allowed, pattern, decimal, min."""
        kind, reason, t, name = c["check"], c["reason"], c["detail"], c["column"]
        i = contract.index(name)
        col = contract.columns[i]
        v, key = "v%d" % i, "C%d" % k
        if kind == "allowed":
            listed = ", ".join(col["allowed"])
            return Check(
                "not %s or %s in %s" % (v, v, key),
                {key: frozenset(col["allowed"])},
                lambda f, now: (reason, render(t, allowed=listed, **_value_args(name, f[i]))),
            )
        if kind == "pattern":
            return Check(
                "not %s or %s(%s)" % (v, key, v),
                {key: re.compile(c["pattern"]).fullmatch},
                lambda f, now: (reason, render(t, pattern=c["pattern"], **_value_args(name, f[i]))),
            )
        rx = self.decimal_re
        if kind == "decimal":
            precision, scale = int(col["precision"]), int(col["scale"])

            @functools.lru_cache(maxsize=_MEMO)
            def fits(value: str) -> bool:
                d = parse_decimal(value, rx)
                return d is not None and decimal_fits(d, precision, scale)

            return Check(
                "not %s or %s(%s)" % (v, key, v),
                {key: fits},
                lambda f, now: (reason, render(t, precision=precision, scale=scale, **_value_args(name, f[i]))),
            )
        if kind == "min":
            minimum = parse_decimal(fmt_number(c["min"]), rx)

            @functools.lru_cache(maxsize=_MEMO)
            def below(value: str) -> bool:
                d = parse_decimal(value, rx)
                return d is not None and compare_decimal(d, minimum) < 0

            return Check("not %s or not %s(%s)" % (v, key, v), {key: below}, lambda f, now: (reason, render(t, min=c["min"], **_value_args(name, f[i]))))
        raise ValueError("%s: unknown check %r" % (self.source, kind))

    def _time_check(self, k: int, c: Dict[str, Any], contract: Contract) -> Check:
        """A timestamp column: its syntax (parsed into `t<i>`, read by the checks after it and by the
        values), then the batch timestamp's windows (not_stale, not_future)."""
        kind, reason, t, name = c["check"], c["reason"], c["detail"], c["column"]
        i = contract.index(name)
        v, key = "v%d" % i, "C%d" % k
        if kind == "timestamp":
            rx = self.timestamp_re

            @functools.lru_cache(maxsize=_MEMO)
            def parse(value: str) -> Tuple[Optional[int], str]:
                return parse_timestamp(value, rx)

            # t<i>: (epoch ms, stored text).
            return Check(
                "not %s or (t%d := %s(%s))[0] is not None" % (v, i, key, v),
                {key: parse},
                lambda f, now: (reason, render(t, **_value_args(name, f[i]))),
            )
        if not any(p.get("column") == name and p["check"] == "timestamp" for p in contract.checks[:k]):
            raise ValueError("%s: check %d (%s of %s) needs a timestamp check of %s before it" % (self.source, k + 1, kind, name, name))
        if kind == "not_stale":
            hours = self.hours
            return Check(
                "not %s or t%d[0] >= now - %s" % (v, i, key),
                {key: self.max_age_ms},
                lambda f, now: (reason, render(t, hours=hours, batch_timestamp=iso_z(now), **_value_args(name, f[i]))),
            )
        return Check(
            "not %s or t%d[0] <= now + %s" % (v, i, key),
            {key: self.future_ms},
            lambda f, now: (reason, render(t, batch_timestamp=iso_z(now), **_value_args(name, f[i]))),
        )


def _value_args(name: str, value: str) -> Dict[str, Any]:
    """The placeholders every column check's detail may use: {column}, {value}, {value_json}."""
    return {"column": name, "value": value, "value_json": json_string(value)}


# ---------------------------------------------------------------------------------------------------
# CSV: one physical line is one record (no quoted line breaks), as src/engine/csv-line.ts.


SplitError = Tuple[str, int]  # (failure code, 1-based column in code points), see semantics["csv"] in event_contract.json


def split_csv_line(line: str) -> Tuple[Optional[List[str]], Optional[SplitError]]:
    """RFC 4180 fields of one line: (fields, None) or (None, (code, column)). `""` inside quotes is a quote.

    The detail text is the contract's reader.malformed.detailSplit template for the code (split_detail).
    """
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
                    return None, ("unterminated_quote", start)
                if q + 1 < n and line[q + 1] == '"':
                    parts.append(line[start : q + 1])
                    i = start = q + 2
                    continue
                parts.append(line[start:q])
                i = q + 1
                break
            fields.append("".join(parts))
            if i == n:
                return fields, None
            if line[i] != ",":
                return None, ("after_closing_quote", i + 1)
            i += 1
        else:
            comma = line.find(",", i)
            end = n if comma == -1 else comma
            value = line[i:end]
            quote = value.find('"')
            if quote != -1:
                return None, ("quote_in_unquoted", i + 1 + quote)
            fields.append(value)
            if comma == -1:
                return fields, None
            i = comma + 1


def split_detail(error: SplitError, rules: Rules) -> str:
    """The malformed_csv detail of a splitter failure, from the contract's template."""
    return render(rules.split_details[error[0]], column=error[1])


def trim(s: str, rules: Rules) -> str:
    """semantics.trim: the contract's trim characters from both ends."""
    return s.strip(rules.trim_chars)


def classify_header(line: str, rules: Rules) -> str:
    """'ok' (the contract header), 'bad' (a header naming other columns) or 'missing' (the line is data)."""
    if line == rules.header:
        return "ok"
    fields, _ = split_csv_line(line)
    if fields is not None:
        trimmed = [trim(f, rules) for f in fields]
        if ",".join(trimmed) == rules.header:
            return "ok"
        if all(rules.identifier.fullmatch(f) for f in trimmed):
            return "bad"
    return "missing"


# ---------------------------------------------------------------------------------------------------
# Values, as `semantics` in the contract defines them.

Decimal = Tuple[bool, str, int]  # (negative, digits without leading/trailing zeros, point): 0.digits x 10^point


def parse_decimal(text: str, rx: "re.Pattern[str]") -> Optional[Decimal]:
    if not rx.fullmatch(text):
        return None
    negative = text[0] == "-"
    body = text[1:] if text[0] in "+-" else text
    mantissa, _, exp = body.replace("E", "e").partition("e")
    exponent = int(exp) if exp else 0
    if abs(exponent) > _MAX_DECIMAL_EXPONENT:
        return None
    int_part, _, frac = mantissa.partition(".")
    digits = int_part + frac
    stripped = digits.lstrip("0")
    lead = len(digits) - len(stripped)
    stripped = stripped.rstrip("0")
    return (negative and stripped != "", stripped, len(int_part) + exponent - lead)


def decimal_fits(d: Decimal, precision: int, scale: int) -> bool:
    """Rounded to `scale` places half away from zero, the magnitude is below 10^(precision-scale)."""
    _, digits, point = d
    if digits == "":
        return True
    keep = point + scale
    if keep < 0:
        return True
    if keep >= len(digits):
        int_digits = max(point, 0)
    else:
        carry = digits[keep] >= "5" and all(ch == "9" for ch in digits[:keep])
        int_digits = max(point + 1, 0) if carry else max(point, 0)
    return int_digits <= precision - scale


def compare_decimal(a: Decimal, b: Decimal) -> int:
    def sign(x: Decimal) -> int:
        return 0 if x[1] == "" else (-1 if x[0] else 1)

    sa, sb = sign(a), sign(b)
    if sa != sb or sa == 0:
        return (sa > sb) - (sa < sb)
    if a[2] != b[2]:
        mag = -1 if a[2] < b[2] else 1
    else:
        mag = 0 if a[1] == b[1] else (-1 if a[1] < b[1] else 1)
    return sa * mag


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


_MIN_MS = _days_from_civil(1, 1, 1) * _DAY_MS
_END_MS = _days_from_civil(10000, 1, 1) * _DAY_MS


def _civil_from_ms(ms: int) -> str:
    """UTC wall-clock "YYYY-MM-DD HH:MM:SS" of epoch milliseconds (whole seconds)."""
    days, rem = divmod(ms, _DAY_MS)
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
    return "%04d-%02d-%02d %02d:%02d:%02d" % (y, m, d, hh, mi, rem // 1000)


def iso_z(ms: int) -> str:
    """ISO-8601 with milliseconds and Z, for details."""
    return "%sT%s.%03dZ" % (_civil_from_ms(ms)[:10], _civil_from_ms(ms)[11:], ms % 1000)


@functools.lru_cache(maxsize=_MEMO)
def _date_ms(y: str, mo: str, d: str) -> Optional[int]:
    """Epoch milliseconds of midnight UTC of a written date, None if the calendar has no such day."""
    year, month, day = int(y), int(mo), int(d)
    if year < 1 or not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return None
    return _days_from_civil(year, month, day) * _DAY_MS


def parse_timestamp(text: str, rx: "re.Pattern[str]") -> Tuple[Optional[int], str]:
    """semantics.timestamp: (epoch milliseconds, text for a TIMESTAMP column); (None, '') when invalid."""
    m = rx.fullmatch(text)
    if m is None:
        return None, ""
    y, mo, d, h, mi, s, frac, zone = m.groups()
    day_ms = _date_ms(y, mo, d)
    hour, minute, second = int(h), int(mi), int(s)
    if day_ms is None or hour > 23 or minute > 59 or second > 59:
        return None, ""
    wall = day_ms + (hour * 60 + minute) * 60000 + second * 1000
    frac_ms = int((frac[1:] + "00")[:3]) if frac else 0
    offset_ms = 0
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:])
        if oh > 23 or om > 59:
            return None, ""
        offset_ms = (-1 if zone[0] == "-" else 1) * (oh * 60 + om) * 60000
    if offset_ms == 0:
        return wall + frac_ms, "%s-%s-%s %s:%s:%s%s" % (y, mo, d, h, mi, s, frac or "")
    utc = wall - offset_ms
    if utc < _MIN_MS or utc >= _END_MS:
        return None, ""
    return utc + frac_ms, _civil_from_ms(utc) + (frac or "")


def validate_fields(fields: List[str], rules: Rules, batch_ts_ms: int) -> Validated:
    """(None, None, values, quality) for a valid row, else (reason, detail, None, 0.0). The first failing
    check wins."""
    return rules.validate(fields, batch_ts_ms)


def json_string(s: str) -> str:
    """semantics.json_string."""
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


def clip_raw(raw: str, rules: Rules) -> str:
    """semantics.raw: NUL -> U+FFFD (PostgreSQL TEXT cannot hold NUL), clipped to maxRawChars."""
    if "\x00" in raw:
        raw = raw.replace("\x00", "\ufffd")
    n = rules.max_raw_chars
    return raw[:n] + "\u2026" if len(raw) > n else raw


# ---------------------------------------------------------------------------------------------------
# Files.


def scan_file(name: str, content: Optional[bytes], rules: Rules, batch_ts_ms: int) -> Iterator[Record]:
    """All records of one file, in line order (semantics.lines, encoding, header, csv)."""
    # PySpark hands BinaryType values over as bytearray.
    content = b"" if content is None else bytes(content)
    lines = _split_lines(content)
    rd = rules.reader
    malformed, bad_header = rd["malformed"], rd["badHeader"]
    max_bytes, max_raw, validate = rules.max_line_bytes, rules.max_raw_chars, rules.validate
    # limits.maxLineBytes counts the bytes before the LF: a decoded line may have 4 bytes per character,
    # so only a str longer than this needs encoding to know.
    in_bytes = bool(lines) and isinstance(lines[0], bytes)
    may_be_long = max_bytes if in_bytes else (max_bytes + 3) // 4

    header: Optional[str] = None
    data_rows = 0
    for line_no, item in enumerate(lines, 1):
        if len(item) >= may_be_long:
            too_long = _too_long(line_no, item, rules)
            if too_long is not None:
                data_rows += 1
                header = header or "missing"
                yield too_long
                continue
        if in_bytes:
            line, undecodable = _decode_line(line_no, item, rules)
            if undecodable is not None:
                # A first line that cannot be decoded is not a header: the file has none, and no
                # missing_header notice is written.
                data_rows += 1
                header = header or "missing"
                yield undecodable
                continue
        else:
            line = item
        if line[-1:] == "\r":
            line = line[:-1]
        if not line:
            continue  # blank lines are not rows
        if header is None:
            if line_no == 1 and line.startswith("\ufeff"):
                line = line[1:]
            header, notice = _header(line, rules)
            if notice is not None:
                yield notice
            if header != "missing":
                continue
        data_rows += 1
        # No line here holds a NUL (see above), so clip_raw only clips: skipped for the short ones.
        raw = line if len(line) <= max_raw else clip_raw(line, rules)
        if header == "bad":
            yield (line_no, raw, bad_header["reason"], bad_header["detail"], None, 0.0)
            continue
        if '"' in line:
            fields, error = split_csv_line(line)
            if fields is None:
                yield (line_no, raw, malformed["reason"], split_detail(error, rules), None, 0.0)
                continue
        else:
            fields = line.split(",")
        reason, detail, values, score = validate(fields, batch_ts_ms)
        yield (line_no, raw, reason, detail, values, score)
    if data_rows == 0 and header != "bad":
        e = rd["emptyFile"]
        yield (0, None, e["reason"], render(e["noticeZeroBytes"] if not content else e["noticeNoRows"], file=name), None, 0.0)


def _split_lines(content: bytes) -> List[Any]:
    """The file's lines without their LF, BOM removed: str when the whole file is UTF-8 without NUL
    (decoded at once, the common case), else bytes, so one bad byte rejects one line. A newline byte
    never occurs inside a UTF-8 sequence, so both splits agree."""
    data = content[3:] if content.startswith(_BOM) else content
    lines: List[Any]
    try:
        text = data.decode("utf-8")
        lines = text.split("\n") if "\x00" not in text else data.split(b"\n")
    except UnicodeDecodeError:
        lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline ending the last line does not start another one
    return lines


def _too_long(line_no: int, item: Any, rules: Rules) -> Optional[Record]:
    """The malformed record of a line of limits.maxLineBytes bytes or more, else None."""
    raw_bytes = item if isinstance(item, bytes) else item.encode("utf-8")
    if len(raw_bytes) < rules.max_line_bytes:
        return None
    malformed = rules.reader["malformed"]
    detail = render(malformed["detailTooLong"], max=rules.max_line_bytes)
    return (line_no, clip_raw(raw_bytes[:200].decode("utf-8", "replace"), rules), malformed["reason"], detail, None, 0.0)


def _decode_line(line_no: int, item: bytes, rules: Rules) -> Tuple[str, Optional[Record]]:
    """A line of a file that is not all UTF-8: (its text, None), or ("", the invalid_encoding record)
    when it is not UTF-8 or holds a NUL byte."""
    try:
        line = item.decode("utf-8")
        if "\x00" not in line:
            return line, None
    except UnicodeDecodeError:
        pass
    enc = rules.reader["invalidEncoding"]
    shown = item.decode("utf-8", "replace")
    if shown.endswith("\r"):
        shown = shown[:-1]
    nul = item.find(b"\x00")
    detail = render(enc["detailNul"], byte=nul + 1) if nul != -1 else enc["detailUtf8"]
    return "", (line_no, clip_raw(shown, rules), enc["reason"], detail, None, 0.0)


def _header(line: str, rules: Rules) -> Tuple[str, Optional[Record]]:
    """The first non-empty line: ("ok", None) for the contract's header; ("bad", notice) for a header
    naming other columns; ("missing", notice) when the line is data."""
    header = classify_header(line, rules)
    rd = rules.reader
    if header == "bad":
        notice = render(rd["badHeader"]["notice"], header_json=json_string(line[:300]), expected=rules.header)
        return header, (0, None, rd["badHeader"]["reason"], notice, None, 0.0)
    if header == "missing":
        return header, (0, None, rd["missingHeader"]["reason"], render(rd["missingHeader"]["notice"], expected=rules.header), None, 0.0)
    return header, None

//! Event timestamps: every schema unit to nanoseconds since the Unix epoch (UTC).

use crate::schema::TimestampUnit;
use crate::semantics::Value;

/// 100-nanosecond ticks from 1601-01-01 to 1970-01-01 (Windows FILETIME epoch).
const FILETIME_EPOCH_TICKS: i64 = 116_444_736_000_000_000;

/// The timestamp of `value` in nanoseconds since the epoch, or `None` when it is not a
/// timestamp in `unit`. Numbers (and strings of digits) count units since the epoch;
/// `rfc3339` also takes epoch milliseconds, as Elasticsearch's default date format does.
pub fn to_nanos(value: &Value, unit: TimestampUnit) -> Option<i64> {
    let scale = |number: f64, per_unit: f64| {
        let nanos = number * per_unit;
        (nanos.is_finite() && nanos.abs() < 9.2e18).then_some(nanos as i64)
    };
    let integer = |number: i64, per_unit: i64| number.checked_mul(per_unit);
    match (value, unit) {
        (Value::Long(number), TimestampUnit::Ns) => Some(*number),
        (Value::Long(number), TimestampUnit::Us) => integer(*number, 1_000),
        (Value::Long(number), TimestampUnit::Ms | TimestampUnit::Rfc3339) => integer(*number, 1_000_000),
        (Value::Long(number), TimestampUnit::S) => integer(*number, 1_000_000_000),
        (Value::Long(ticks), TimestampUnit::Filetime) => ticks.checked_sub(FILETIME_EPOCH_TICKS)?.checked_mul(100),
        (Value::Double(number), TimestampUnit::Ns) => scale(*number, 1.0),
        (Value::Double(number), TimestampUnit::Us) => scale(*number, 1e3),
        (Value::Double(number), TimestampUnit::Ms | TimestampUnit::Rfc3339) => scale(*number, 1e6),
        (Value::Double(number), TimestampUnit::S) => scale(*number, 1e9),
        (Value::Double(ticks), TimestampUnit::Filetime) => scale(*ticks - FILETIME_EPOCH_TICKS as f64, 100.0),
        (Value::Str(text), _) => text_to_nanos(text, unit),
        _ => None,
    }
}

/// [`to_nanos`] of a string value.
pub fn text_to_nanos(text: &str, unit: TimestampUnit) -> Option<i64> {
    if unit == TimestampUnit::Rfc3339
        && let Some(nanos) = parse_canonical(text.as_bytes())
    {
        return Some(nanos);
    }
    non_canonical_to_nanos(text, unit)
}

/// [`text_to_nanos`] of text that is not in the canonical form.
fn non_canonical_to_nanos(text: &str, unit: TimestampUnit) -> Option<i64> {
    let text = text.trim();
    if unit == TimestampUnit::Rfc3339
        && let Some(nanos) = parse_general(text)
    {
        return Some(nanos);
    }
    if let Ok(number) = text.parse::<i64>() {
        return to_nanos(&Value::Long(number), unit);
    }
    if unit == TimestampUnit::Rfc3339 {
        return None;
    }
    text.parse::<f64>().ok().and_then(|number| to_nanos(&Value::Double(number), unit))
}

/// A date literal of a rule, in nanoseconds since the epoch: an RFC 3339 date (as
/// [`parse_rfc3339`] reads it) or epoch milliseconds (Elasticsearch's default date
/// format is `strict_date_optional_time||epoch_millis`).
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    match text.parse::<i64>() {
        Ok(millis) => millis.checked_mul(1_000_000),
        Err(_) => parse_rfc3339(text),
    }
}

/// Nanoseconds per unit of a fraction of *n* digits (index *n*, up to 9).
const SCALE: [i64; 10] = [1_000_000_000, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

/// The form nearly every event's timestamp has, `2024-05-04T12:00:00Z` with an optional
/// fraction (`.001`, up to nine digits read): read with fixed offsets, no search. `None`
/// for any other text, which [`parse_rfc3339`] then reads (to the same value when this
/// gives one).
fn parse_canonical(bytes: &[u8]) -> Option<i64> {
    canonical_rest(canonical_minute(bytes.get(..16)?.try_into().ok()?)?, &bytes[16..])
}

/// `YYYY-MM-DDTHH:MM` of the canonical form, checked: its minute in seconds since the
/// epoch.
fn canonical_minute(head: &[u8; 16]) -> Option<i64> {
    if head[4] != b'-' || head[7] != b'-' || head[10] != b'T' || head[13] != b':' {
        return None;
    }
    let digit = |at: usize| {
        let value = head[at].wrapping_sub(b'0');
        (value < 10).then_some(i64::from(value))
    };
    let two = |at: usize| Some(digit(at)? * 10 + digit(at + 1)?);
    let year = two(0)? * 100 + two(2)?;
    let (month, day, hour, minute) = (two(5)?, two(8)?, two(11)?, two(14)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60)
}

/// The rest of the canonical form after its minute, `:SS[.f]Z`, checked: the
/// timestamp in nanoseconds, `minute` (seconds since the epoch) included.
fn canonical_rest(minute: i64, rest: &[u8]) -> Option<i64> {
    let [b':', tens, ones, tail @ ..] = rest else { return None };
    let (tens, ones) = (tens.wrapping_sub(b'0'), ones.wrapping_sub(b'0'));
    let second = i64::from(tens) * 10 + i64::from(ones);
    if tens >= 10 || ones >= 10 || second > 60 {
        return None;
    }
    let nanos = match tail {
        [b'.', fraction @ .., b'Z'] if !fraction.is_empty() => {
            // Every digit is checked; the first nine are read, then scaled to nanoseconds.
            let mut value = 0i64;
            for (idx, byte) in fraction.iter().enumerate() {
                let digit = byte.wrapping_sub(b'0');
                if digit >= 10 {
                    return None;
                }
                if idx < 9 {
                    value = value * 10 + i64::from(digit);
                }
            }
            value * SCALE[fraction.len().min(9)]
        }
        b"Z" => 0,
        _ => return None,
    };
    (minute + second).checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// [`text_to_nanos`] for a stream of timestamps, remembering the minute of the last one
/// in the canonical form: events come in time order, so most share the minute of the
/// one before, and only their seconds and fraction are read (the date and time before
/// them were checked when the minute was first seen).
#[derive(Clone, Debug, Default)]
pub struct MinuteCache {
    /// `YYYY-MM-DDTHH:MM` of the last canonical timestamp, and its minute in seconds
    /// since the epoch.
    last: Option<([u8; 16], i64)>,
}

impl MinuteCache {
    /// [`text_to_nanos`], reading a canonical timestamp in the last one's minute from
    /// its seconds on.
    pub fn text_to_nanos(&mut self, text: &str, unit: TimestampUnit) -> Option<i64> {
        if unit == TimestampUnit::Rfc3339
            && let Some(nanos) = self.canonical(text.as_bytes())
        {
            return Some(nanos);
        }
        // Not canonical (the canonical reader was just tried, through the cache).
        non_canonical_to_nanos(text, unit)
    }

    fn canonical(&mut self, bytes: &[u8]) -> Option<i64> {
        let head: &[u8; 16] = bytes.get(..16)?.try_into().ok()?;
        let minute = match self.last {
            Some((prefix, minute)) if prefix == *head => minute,
            _ => {
                let minute = canonical_minute(head)?;
                self.last = Some((*head, minute));
                minute
            }
        };
        canonical_rest(minute, &bytes[16..])
    }
}

/// `2024-05-04T12:00:00.001Z`, `2024-05-04 12:00:00+02:00`, `2024-05-04T12:00Z`,
/// `2024-05-04` (midnight UTC); without a zone the time is UTC.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    parse_canonical(text.as_bytes()).or_else(|| parse_general(text))
}

/// [`parse_rfc3339`] of any form.
fn parse_general(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = bytes.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // At most 4 digits: no overflow.
        Some(digits.iter().fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') || !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    let mut nanos: i64 = 0;
    let mut at = 10;
    if at < bytes.len() {
        if !matches!(bytes[at], b'T' | b't' | b' ') {
            return None;
        }
        let (hour, minute) = (number(at + 1..at + 3)?, number(at + 4..at + 6)?);
        if bytes.get(at + 3) != Some(&b':') || hour > 23 || minute > 59 {
            return None;
        }
        seconds += hour * 3600 + minute * 60;
        at += 6;
        if bytes.get(at) == Some(&b':') {
            let second = number(at + 1..at + 3)?;
            if second > 60 {
                return None;
            }
            seconds += second;
            at += 3;
            if bytes.get(at) == Some(&b'.') {
                let start = at + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                if end == start {
                    return None;
                }
                let digits = &bytes[start..end.min(start + 9)];
                nanos = digits.iter().fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0')) * 10_i64.pow(9 - digits.len() as u32);
                at = end;
            }
        }
        match bytes.get(at) {
            None => {}
            Some(b'Z' | b'z') if at + 1 == bytes.len() => {}
            Some(sign @ (b'+' | b'-')) => {
                let (hours, minutes) = (number(at + 1..at + 3)?, number(at + 4..at + 6)?);
                if bytes.get(at + 3) != Some(&b':') || at + 6 != bytes.len() || hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = hours * 3600 + minutes * 60;
                seconds -= if *sign == b'+' { offset } else { -offset };
            }
            _ => return None,
        }
    }
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Formats nanoseconds since the epoch as RFC 3339 in UTC with nanoseconds,
/// e.g. `2024-05-04T12:00:00.001000000Z`.
pub fn format_rfc3339(nanos: i64) -> String {
    let mut out = String::with_capacity(30);
    push_rfc3339(&mut out, nanos);
    out
}

/// [`format_rfc3339`] appended to `out`, without the formatting machinery (the live
/// sensor writes three per event).
pub fn push_rfc3339(out: &mut String, nanos: i64) {
    let seconds = nanos.div_euclid(1_000_000_000);
    let fraction = nanos.rem_euclid(1_000_000_000) as u64;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400) as u64;
    let (year, month, day) = civil_from_days(days);
    // As `{year:04}`: at least four characters, a sign counting as one.
    if year < 0 {
        out.push('-');
        push_padded(out, year.unsigned_abs(), 3);
    } else {
        push_padded(out, year as u64, 4);
    }
    for (separator, value, width) in
        [('-', month as u64, 2), ('-', day as u64, 2), ('T', of_day / 3600, 2), (':', of_day % 3600 / 60, 2), (':', of_day % 60, 2), ('.', fraction, 9)]
    {
        out.push(separator);
        push_padded(out, value, width);
    }
    out.push('Z');
}

/// Appends `value` in decimal, zero-padded to at least `width` digits.
fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = value;
    while rest > 0 || digits.len() - at < width {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_written_as_the_formatter_would() {
        let reference = |nanos: i64| {
            let seconds = nanos.div_euclid(1_000_000_000);
            let fraction = nanos.rem_euclid(1_000_000_000);
            let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
            let of_day = seconds.rem_euclid(86_400);
            format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:09}Z", of_day / 3600, of_day % 3600 / 60, of_day % 60)
        };
        let mut state: u64 = 3;
        let mut cases = vec![0, 1, -1, i64::MIN, i64::MAX, 1_764_392_400_123_456_789, -9_000_000_000_000_000_000, 9_000_000_000_000_000_000];
        for _ in 0..2000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            cases.push(state as i64);
            cases.push((state >> 8) as i64 - (1 << 55));
        }
        for nanos in cases {
            assert_eq!(format_rfc3339(nanos), reference(nanos), "{nanos}");
        }
    }

    /// The fixed-offset reader gives what the general one gives, wherever it reads.
    #[test]
    fn the_canonical_form_reads_as_the_general_reader_reads_it() {
        let seeds = [
            "2024-05-01T00:00:00.000319Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:60.123456789012Z",
            "1999-12-31T23:59:59.9Z",
            "2024-05-01T00:00:00.Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T00:60:00Z",
            "2024-05-01T00:00:61Z",
            "2024-05-01t00:00:00z",
            "2024-05-01 00:00:00Z",
            "2024-05-01T00:00:00+02:00",
            "2024-05-01T00:00:00.5x",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ];
        let mut checked = 0;
        for seed in seeds {
            // Every one-byte change of each seed, too (digits, separators, letters).
            let mut texts = vec![seed.to_string()];
            for at in 0..seed.len() {
                for byte in [b'0', b'5', b'9', b'-', b':', b'.', b'T', b'Z', b' ', b'a'] {
                    let mut bytes = seed.as_bytes().to_vec();
                    bytes[at] = byte;
                    texts.push(String::from_utf8(bytes).expect("ASCII"));
                }
            }
            // The minute cache, fed the seed first, then every text in turn: what it
            // reads is what the uncached reader reads.
            let mut cache = MinuteCache::default();
            for text in texts {
                assert_eq!(cache.text_to_nanos(&text, TimestampUnit::Rfc3339), text_to_nanos(&text, TimestampUnit::Rfc3339), "cached: {text}");
                if let Some(fast) = parse_canonical(text.as_bytes()) {
                    assert_eq!(Some(fast), parse_general(&text), "{text}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "only {checked} texts had the canonical form");
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2022-05-04T12:00:00.001Z"), Some(1_651_665_600_001_000_000));
        assert_eq!(parse_rfc3339("2022-05-04 14:00:00+02:00"), parse_rfc3339("2022-05-04T12:00:00Z"));
        assert_eq!(parse_rfc3339("2022-05-04"), Some(1_651_622_400_000_000_000));
        assert_eq!(parse_rfc3339("2024-02-29T00:00Z"), Some(1_709_164_800_000_000_000));
        assert_eq!(parse_rfc3339("2023-02-29"), None);
        assert_eq!(parse_rfc3339("2022-13-01"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn units() {
        assert_eq!(to_nanos(&Value::Long(131509374020000000), TimestampUnit::Filetime), Some(1_506_463_802_000_000_000));
        assert_eq!(to_nanos(&Value::Str("1234567891".into()), TimestampUnit::Rfc3339), Some(1_234_567_891_000_000));
        assert_eq!(to_nanos(&Value::Long(5), TimestampUnit::S), Some(5_000_000_000));
        assert_eq!(to_nanos(&Value::Bool(true), TimestampUnit::S), None);
        assert_eq!(to_nanos(&Value::Long(i64::MAX), TimestampUnit::S), None);
    }

    #[test]
    fn formatting_round_trips() {
        for nanos in [0, 1_651_665_600_001_000_000, -86_400_000_000_001, 4_102_444_800_123_456_789] {
            assert_eq!(parse_rfc3339(&format_rfc3339(nanos)), Some(nanos), "{nanos}");
        }
    }
}

//! Times and durations as Jaeger's query API writes them: Go durations
//! (`100ms`, `1.5s`, `1m30s`) and RFC 3339 timestamps with nanoseconds
//! (`2026-08-20T15:20:54.123456789Z`, API v3's `query.start_time_min`).

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A Go duration (`300ms`, `1.5s`, `1m30s`, `2h`, `10us`, `10µs`, `5ns`) in nanoseconds.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration such as 100ms or 1.5s");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_len..];
    }
    Ok(total.round() as u64)
}

/// A duration as Go's `time.Duration.String` prints it (Jaeger's warnings
/// quote durations that way): `0s`, `750ns`, `1.5µs`, `12.3ms`, `1m30s`, `-2ms`.
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", decimal(u, 1_000))
    } else if u < NANOS_PER_SEC {
        format!("{}ms", decimal(u, 1_000_000))
    } else {
        let (hours, rest) = (u / 3_600_000_000_000, u % 3_600_000_000_000);
        let (minutes, seconds) = (rest / 60_000_000_000, rest % 60_000_000_000);
        let mut out = String::new();
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&format!("{}s", decimal(seconds, NANOS_PER_SEC)));
        out
    };
    format!("{sign}{body}")
}

/// `value / unit` with its fraction, trailing zeros dropped.
fn decimal(value: u64, unit: u64) -> String {
    let (whole, fraction) = (value / unit, value % unit);
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Nanoseconds since the epoch as RFC 3339 in UTC with nine fraction digits.
pub fn format_rfc3339(unix_nanos: u64) -> String {
    let secs = unix_nanos / NANOS_PER_SEC;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        unix_nanos % NANOS_PER_SEC
    )
}

/// RFC 3339 (`2000-01-02T12:30:08.999999998Z`, `…+08:00`) to nanoseconds
/// since the epoch, as Go's `time.Parse(time.RFC3339Nano, …)` reads it.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad =
        |why: &str| format!("{text:?} is not an RFC 3339 time such as 2026-08-20T15:04:05Z: {why}");
    let b = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text.get(range).ok_or_else(|| bad("too short"))?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("digits expected"));
        }
        part.parse::<i64>().map_err(|_| bad("digits expected"))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad("layout"));
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad("out of range"));
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return Err(bad("1 to 9 fraction digits"));
        }
        nanos = digits.parse::<i64>().map_err(|_| bad("fraction"))?
            * 10i64.pow(9 - digits.len() as u32);
    }
    let offset_secs = match text.get(i..) {
        Some("Z") => 0,
        Some(zone)
            if zone.len() == 6
                && (zone.starts_with('+') || zone.starts_with('-'))
                && zone.as_bytes()[3] == b':' =>
        {
            let (h, m) = (number(i + 1..i + 3)?, number(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return Err(bad("zone offset out of range"));
            }
            let secs = h * 3600 + m * 60;
            if zone.starts_with('-') { -secs } else { secs }
        }
        _ => return Err(bad("zone: Z or ±hh:mm expected")),
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    if secs < 0 {
        return Err(bad("before 1970"));
    }
    Ok(secs as u64 * NANOS_PER_SEC + nanos as u64)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_go_duration("1.2s"), Ok(1_200_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("10µs"), Ok(10_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        for bad in ["", "ms", "10", "10 parsecs", "1.2.3s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
        // What Go's time.Duration.String prints.
        for (nanos, text) in [
            (0, "0s"),
            (750, "750ns"),
            (1_500, "1.5µs"),
            (12_300_000, "12.3ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-2_000_000, "-2ms"),
        ] {
            assert_eq!(format_go_duration(nanos), text);
        }
    }

    #[test]
    fn rfc3339_both_ways() {
        // Jaeger's own test values (apiv3 http_gateway_test.go).
        let a = parse_rfc3339("2000-01-02T12:30:08.999999998Z").unwrap();
        assert_eq!(format_rfc3339(a), "2000-01-02T12:30:08.999999998Z");
        let b = parse_rfc3339("2000-04-05T21:55:16.999999992+08:00").unwrap();
        assert_eq!(format_rfc3339(b), "2000-04-05T13:55:16.999999992Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2026-08-20T15:20:54Z"),
            Ok(1_787_239_254 * NANOS_PER_SEC)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00.5-01:30").unwrap() % NANOS_PER_SEC,
            500_000_000
        );
        for bad in [
            "",
            "2026-08-20",
            "2026-08-20 15:20:54Z",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-08-20T15:20:54",
            "2026-08-20T15:20:54.Z",
            "2026-08-20T15:20:54+0800",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }
}

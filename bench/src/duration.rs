//! Durations on the command line: a whole number and a unit (`100ms`, `2s`, `15m`, `1h`), or
//! `0`. The same syntax as `ssecast serve`'s flags, parsed here so that the load generator
//! does not depend on the server crate.

use std::time::Duration;

/// Parses `100ms`, `2s`, `15m`, `1h` or `0`.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, like 2s or 100ms"))?;
    let ms_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err(format!("{s:?}: missing unit (ms, s, m or h)")),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m or h)")),
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?}: too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<u64>) {
        assert_eq!(
            parse(input).ok().map(|d| d.as_millis() as u64),
            expected,
            "{input:?}"
        );
    }

    #[test]
    fn syntax() {
        check("0", Some(0));
        check("0s", Some(0));
        check("100ms", Some(100));
        check(" 2s ", Some(2_000));
        check("15m", Some(900_000));
        check("1h", Some(3_600_000));
        check("2", None);
        check("s", None);
        check("2 s", None);
        check("1.5s", None);
        check("-1s", None);
        check("2d", None);
        check("18446744073709551615h", None);
    }
}

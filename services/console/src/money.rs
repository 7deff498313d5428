//! Amounts as people type them ("12.50") and as the services take them (1250 minor units).

/// The largest amount the console accepts in one transaction, in minor units (1,000,000.00; the
/// transaction service's default `MAX_AMOUNT`). The transaction service still applies its own.
pub const MAX_CENTS: i64 = 100_000_000;

/// Why a typed amount is not one the console sends.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty, or not digits with an optional decimal point.
    #[error("amount must be a number like 12.50, got {0:?}")]
    NotANumber(String),
    /// More than two digits after the point.
    #[error("amount must have at most 2 decimals, got {0:?}")]
    TooPrecise(String),
    /// Zero.
    #[error("amount must be positive, got {0:?}")]
    NotPositive(String),
    /// Above [`MAX_CENTS`].
    #[error("amount must be at most 1000000.00, got {0:?}")]
    TooLarge(String),
}

/// Parses a decimal currency amount ("12", "12.5", "12.50", "0.01") into minor units.
/// Refuses signs, exponents, separators, more than two decimals, zero and amounts above
/// [`MAX_CENTS`].
pub fn parse_cents(text: &str) -> Result<i64, AmountError> {
    let trimmed = text.trim();
    let owned = || trimmed.to_owned();
    let (whole, fraction) = match trimmed.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (trimmed, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(AmountError::NotANumber(owned()));
    }
    if fraction.len() > 2 {
        return Err(AmountError::TooPrecise(owned()));
    }
    let whole = whole.trim_start_matches('0');
    // More digits than MAX_CENTS's whole part can hold is too large, whatever they are.
    if whole.len() > 12 {
        return Err(AmountError::TooLarge(owned()));
    }
    let units: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| AmountError::NotANumber(owned()))?
    };
    let cents: i64 = match fraction.len() {
        0 => 0,
        1 => i64::from(fraction.as_bytes()[0] - b'0') * 10,
        _ => fraction
            .parse()
            .map_err(|_| AmountError::NotANumber(owned()))?,
    };
    let total = units * 100 + cents;
    if total <= 0 {
        return Err(AmountError::NotPositive(owned()));
    }
    if total > MAX_CENTS {
        return Err(AmountError::TooLarge(owned()));
    }
    Ok(total)
}

/// Minor units as a decimal amount: 1250 → "12.50", -5 → "-0.05".
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_become_cents() {
        for (text, cents) in [
            ("12.50", 1250),
            ("12.5", 1250),
            ("12", 1200),
            (" 0.01 ", 1),
            (".5", 50),
            ("7.", 700),
            ("007.05", 705),
            ("1000000", MAX_CENTS),
        ] {
            assert_eq!(parse_cents(text), Ok(cents), "{text}");
        }
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        use AmountError::*;
        type Expected = fn(String) -> AmountError;
        let cases: [(&str, Expected); 14] = [
            ("", NotANumber),
            (".", NotANumber),
            ("abc", NotANumber),
            ("-5", NotANumber),
            ("+5", NotANumber),
            ("1e3", NotANumber),
            ("1,000", NotANumber),
            ("1.2.3", NotANumber),
            ("12.345", TooPrecise),
            ("0", NotPositive),
            ("0.00", NotPositive),
            ("1000000.01", TooLarge),
            ("99999999999999999999", TooLarge),
            ("12 50", NotANumber),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_cents(text),
                Err(expected(text.trim().to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_largest_amount_is_the_one_in_the_message() {
        assert_eq!(format_cents(MAX_CENTS), "1000000.00");
    }

    #[test]
    fn cents_format_with_two_decimals() {
        assert_eq!(format_cents(1250), "12.50");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-5), "-0.05");
        assert_eq!(format_cents(0), "0.00");
    }
}

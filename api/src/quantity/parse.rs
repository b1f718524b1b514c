//! Parsing a quantity string: upstream's hand-written scanner (which accepts
//! a few odd strings such as `.` and `-`, both zero) and exact decimal digit
//! arithmetic for the value, so no input loses precision before rounding.

use super::{Format, Quantity, QuantityError, NANO};

/// The pieces of a quantity string: sign, integer digits (without leading
/// zeros, `0` if none), fraction digits and the raw suffix.
#[derive(Debug, PartialEq, Eq)]
struct Pieces<'a> {
    positive: bool,
    integer: &'a str,
    fraction: &'a str,
    suffix: &'a str,
}

pub(super) fn parse(text: &str) -> Result<Quantity, QuantityError> {
    if text.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    let pieces = split(text)?;
    let (base, exponent, mut format) = interpret_suffix(pieces.suffix)?;

    let mut digits: Vec<u8> = pieces
        .integer
        .bytes()
        .chain(pieces.fraction.bytes())
        .map(|digit| digit - b'0')
        .collect();
    let shift = match base {
        Base::Ten => i64::from(exponent) + 9,
        Base::Two => {
            for _ in 0..exponent {
                double(&mut digits);
            }
            9
        }
    };
    let mut magnitude = shift_and_round_up(&digits, pieces.fraction.len(), shift)?;

    if format == Format::BinarySI {
        let max_allowed = i128::from(i64::MAX) * NANO;
        magnitude = magnitude.min(max_allowed);
        if magnitude > 0 && magnitude < NANO {
            format = Format::DecimalSI;
        }
    }
    let nano = if pieces.positive {
        magnitude
    } else {
        -magnitude
    };
    Ok(Quantity { nano, format })
}

/// Upstream's scanner for `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`.
fn split(text: &str) -> Result<Pieces<'_>, QuantityError> {
    let bytes = text.as_bytes();
    let end = bytes.len();
    let mut position = 0;
    let mut positive = true;
    match bytes.first() {
        Some(b'-') => {
            positive = false;
            position += 1;
        }
        Some(b'+') => position += 1,
        _ => {}
    }
    let pieces = |integer, fraction, suffix| Pieces {
        positive,
        integer,
        fraction,
        suffix,
    };

    while position < end && bytes[position] == b'0' {
        position += 1;
    }
    if position >= end {
        return Ok(pieces("0", "", ""));
    }

    let integer_start = position;
    while position < end && bytes[position].is_ascii_digit() {
        position += 1;
    }
    let integer = match &text[integer_start..position] {
        "" => "0",
        digits => digits,
    };
    if position >= end {
        return Ok(pieces(integer, "", ""));
    }

    let mut fraction = "";
    if bytes[position] == b'.' {
        position += 1;
        let fraction_start = position;
        while position < end && bytes[position].is_ascii_digit() {
            position += 1;
        }
        fraction = &text[fraction_start..position];
        if position >= end {
            return Ok(pieces(integer, fraction, ""));
        }
    }

    let suffix_start = position;
    while position < end && b"eEinumkKMGTP".contains(&bytes[position]) {
        position += 1;
    }
    if position < end && matches!(bytes[position], b'-' | b'+') {
        position += 1;
    }
    while position < end && bytes[position].is_ascii_digit() {
        position += 1;
    }
    if position < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(pieces(integer, fraction, &text[suffix_start..]))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Two,
    Ten,
}

/// The base, exponent and format a suffix stands for.
fn interpret_suffix(suffix: &str) -> Result<(Base, i32, Format), QuantityError> {
    let decimal = |exponent| Ok((Base::Ten, exponent, Format::DecimalSI));
    let binary = |exponent| Ok((Base::Two, exponent, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .filter(|rest| !rest.is_empty())
                .and_then(|rest| rest.parse::<i64>().ok())
                .ok_or(QuantityError::Suffix)?;
            // Upstream narrows the parsed exponent to 32 bits the same way.
            Ok((Base::Ten, exponent as i32, Format::DecimalExponent))
        }
    }
}

/// Doubles a big-endian decimal digit string in place.
fn double(digits: &mut Vec<u8>) {
    let mut carry = 0;
    for digit in digits.iter_mut().rev() {
        let doubled = *digit * 2 + carry;
        *digit = doubled % 10;
        carry = doubled / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

/// `digits / 10^fraction_len * 10^shift`, rounded away from zero to an
/// integer, for a non-negative digit string.
fn shift_and_round_up(
    digits: &[u8],
    fraction_len: usize,
    shift: i64,
) -> Result<i128, QuantityError> {
    let integer_len = digits.len() as i64 - fraction_len as i64 + shift;
    let split_at = integer_len.clamp(0, digits.len() as i64) as usize;
    let (integer_digits, dropped) = digits.split_at(split_at);

    let mut value: i128 = 0;
    for digit in integer_digits {
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i128::from(*digit)))
            .ok_or(QuantityError::OutOfRange)?;
    }
    if value != 0 {
        let padding = integer_len - integer_digits.len() as i64;
        for _ in 0..padding {
            value = value.checked_mul(10).ok_or(QuantityError::OutOfRange)?;
        }
    }
    if dropped.iter().any(|digit| *digit != 0) {
        value = value.checked_add(1).ok_or(QuantityError::OutOfRange)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_upstream_scanner() {
        let cases = [
            ("0.025Ti", (true, "0", "025", "Ti")),
            ("1.025Ti", (true, "1", "025", "Ti")),
            ("-1.025Ti", (false, "1", "025", "Ti")),
            (".", (true, "0", "", "")),
            ("-.", (false, "0", "", "")),
            ("1E-3", (true, "1", "", "E-3")),
            ("-", (false, "0", "", "")),
            ("007", (true, "7", "", "")),
            ("000", (true, "0", "", "")),
            ("0Mi", (true, "0", "", "Mi")),
            ("1.", (true, "1", "", "")),
            ("1e", (true, "1", "", "e")),
        ];
        for (input, (positive, integer, fraction, suffix)) in cases {
            let expected = Pieces {
                positive,
                integer,
                fraction,
                suffix,
            };
            assert_eq!(split(input), Ok(expected), "input {input:?}");
        }
    }

    #[test]
    fn shift_and_round_up_rounds_any_dropped_digit_away_from_zero() {
        let cases: [(&[u8], usize, i64, i128); 7] = [
            (&[1, 5], 1, 0, 2),
            (&[1, 5], 1, 1, 15),
            (&[1, 5], 1, 3, 1500),
            (&[1, 0], 1, 0, 1),
            (&[0, 0, 1], 3, 0, 1),
            (&[0], 0, 1_000_000, 0),
            (&[1], 0, -1_000_000, 1),
        ];
        for (digits, fraction_len, shift, expected) in cases {
            assert_eq!(
                shift_and_round_up(digits, fraction_len, shift),
                Ok(expected),
                "{digits:?} {fraction_len} {shift}"
            );
        }
        assert_eq!(
            shift_and_round_up(&[1], 0, 40),
            Err(QuantityError::OutOfRange)
        );
    }

    #[test]
    fn double_carries_into_a_new_digit() {
        let mut digits = vec![5, 9];
        double(&mut digits);
        assert_eq!(digits, [1, 1, 8]);
    }
}

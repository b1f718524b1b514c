//! Tables of quantities: upstream's parse cases, canonical forms, errors,
//! conversions and arithmetic.

use super::*;

fn q(text: &str) -> Quantity {
    Quantity::parse(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

/// `mantissa × 10^exponent` as nano-units, to write expectations like upstream's `decQuantity`.
fn dec(mantissa: i128, exponent: i32) -> i128 {
    let shift = exponent + 9;
    assert!(shift >= 0, "test values are whole nano-units");
    mantissa * 10_i128.pow(shift as u32)
}

#[test]
fn parse_reads_values_and_formats_like_upstream() {
    use Format::{BinarySI, DecimalExponent, DecimalSI};
    let max_binary = i128::from(i64::MAX) * NANO;
    let cases: Vec<(&str, i128, Format)> = vec![
        ("0", 0, DecimalSI),
        ("0n", 0, DecimalSI),
        ("0m", 0, DecimalSI),
        ("0Ki", 0, BinarySI),
        ("0Mi", 0, BinarySI),
        ("0G", 0, DecimalSI),
        ("1", dec(1, 0), DecimalSI),
        ("1Ki", dec(1024, 0), BinarySI),
        ("8Ki", dec(8 * 1024, 0), BinarySI),
        ("7Mi", dec(7 << 20, 0), BinarySI),
        ("6Gi", dec(6 << 30, 0), BinarySI),
        ("5Ti", dec(5 << 40, 0), BinarySI),
        ("4Pi", dec(4 << 50, 0), BinarySI),
        ("3Ei", dec(3 << 60, 0), BinarySI),
        ("5n", dec(5, -9), DecimalSI),
        ("4u", dec(4, -6), DecimalSI),
        ("3m", dec(3, -3), DecimalSI),
        ("100m", dec(100, -3), DecimalSI),
        ("8k", dec(8, 3), DecimalSI),
        ("50k", dec(5, 4), DecimalSI),
        ("7M", dec(7, 6), DecimalSI),
        ("6G", dec(6, 9), DecimalSI),
        ("5T", dec(5, 12), DecimalSI),
        ("2P", dec(2, 15), DecimalSI),
        ("1E", dec(1, 18), DecimalSI),
        ("12E", dec(12, 18), DecimalSI),
        ("1E-3", dec(1, -3), DecimalExponent),
        ("1e3", dec(1, 3), DecimalExponent),
        ("1E6", dec(1, 6), DecimalExponent),
        ("1e+9", dec(1, 9), DecimalExponent),
        ("1.3E+6", dec(13, 5), DecimalExponent),
        ("1.7E18", dec(17, 17), DecimalExponent),
        ("100.035k", dec(100035, 0), DecimalSI),
        ("1.5", dec(15, -1), DecimalSI),
        ("0.001", dec(1, -3), DecimalSI),
        ("0.0005k", dec(5, -1), DecimalSI),
        ("0.5e-2", dec(5, -3), DecimalExponent),
        ("7.123456M", dec(7123456, 0), DecimalSI),
        ("6.987654321G", dec(6987654321, 0), DecimalSI),
        ("1.01E", dec(101, 16), DecimalSI),
        // Finer than a nano-unit rounds away from zero.
        ("3.001n", dec(4, -9), DecimalSI),
        ("1.1E-9", dec(2, -9), DecimalExponent),
        ("0.0000000001", dec(1, -9), DecimalSI),
        ("0.00000000050", dec(1, -9), DecimalSI),
        ("0.9n", dec(1, -9), DecimalSI),
        ("0.00000012345", dec(124, -9), DecimalSI),
        (
            "0.0000000000000000000000000000000000000000001",
            dec(1, -9),
            DecimalSI,
        ),
        ("1e-999999999", dec(1, -9), DecimalExponent),
        // Binary quantities saturate at 2^63-1.
        ("9Ei", max_binary, BinarySI),
        ("9223372036854775807Ki", max_binary, BinarySI),
        ("100.035Ki", dec(10243584, -2), BinarySI),
        ("0.5Mi", dec(512 * 1024, 0), BinarySI),
        ("0.05Gi", dec(536870912, -1), BinarySI),
        ("1.5Gi", dec(1536 << 20, 0), BinarySI),
        // Binary below one unit turns decimal.
        ("0.000000000001Ki", dec(2, -9), DecimalSI),
        (".001", dec(1, -3), DecimalSI),
        (".0001k", dec(100, -3), DecimalSI),
        ("1.", dec(1, 0), DecimalSI),
        ("1.G", dec(1, 9), DecimalSI),
        // Oddities upstream's scanner accepts.
        (".", 0, DecimalSI),
        ("-", 0, DecimalSI),
        ("+1", dec(1, 0), DecimalSI),
        ("007", dec(7, 0), DecimalSI),
        ("-1", dec(-1, 0), DecimalSI),
        ("-1.5Gi", -dec(1536 << 20, 0), BinarySI),
        ("-9Ei", -max_binary, BinarySI),
        ("-0.000000000001Ki", dec(-2, -9), DecimalSI),
    ];
    for (input, nano, format) in cases {
        let parsed = q(input);
        assert_eq!(parsed.nano_value(), nano, "value of {input:?}");
        assert_eq!(parsed.format(), format, "format of {input:?}");
    }
}

#[test]
fn parse_rejects_malformed_quantities_with_upstream_messages() {
    let format_wrong = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    let suffix = "unable to parse quantity's suffix";
    let cases = [
        ("", format_wrong),
        ("1.1.M", format_wrong),
        ("1+1.0M", format_wrong),
        ("0.1am", format_wrong),
        ("aoeu", format_wrong),
        (" 1", format_wrong),
        ("1 ", format_wrong),
        ("1KiB", format_wrong),
        ("1µ", format_wrong),
        ("0.1mi", suffix),
        (".5i", suffix),
        ("1i", suffix),
        ("-3.01i", suffix),
        ("-3.01e-", suffix),
        ("1e", suffix),
        ("1kk", suffix),
        ("1m5", suffix),
        ("1e99999999999999999999", suffix),
    ];
    for (input, message) in cases {
        let error = Quantity::parse(input).expect_err(input);
        assert_eq!(error.to_string(), message, "input {input:?}");
    }
}

#[test]
fn parse_rejects_magnitudes_beyond_i128_nano_units() {
    for input in [
        "1e30",
        "200000000000000000000000000000",
        "1000000000000E",
        "-1e40",
    ] {
        assert_eq!(
            Quantity::parse(input),
            Err(QuantityError::OutOfRange),
            "input {input:?}"
        );
    }
    assert_eq!(q("1e29").value(), 10_i128.pow(29));
}

#[test]
fn display_prints_upstream_canonical_form() {
    let cases = [
        ("1024Mi", "1Gi"),
        ("1Gi", "1Gi"),
        ("300Mi", "300Mi"),
        ("307200Ki", "300Mi"),
        ("6Ki", "6Ki"),
        ("1025024Mi", "1001Gi"),
        ("1024Gi", "1Ti"),
        ("1024Ei", "9223372036854775807"),
        ("1025Ki", "1025Ki"),
        ("1025", "1025"),
        ("1000m", "1"),
        ("1500m", "1500m"),
        ("1.5", "1500m"),
        ("0.5", "500m"),
        ("1.08", "1080m"),
        ("1080000000n", "1080m"),
        ("1000M", "1G"),
        ("0.001T", "1G"),
        ("1000u", "1m"),
        ("100m", "100m"),
        ("1234567M", "1234567M"),
        ("3k", "3k"),
        ("1G", "1G"),
        ("1000E", "1000E"),
        ("1e9", "1e9"),
        (".001e12", "1e9"),
        ("0.001e0", "1e-3"),
        ("1000e-12", "1e-9"),
        ("80e-3", "80e-3"),
        ("300e6", "300e6"),
        ("1.5e3", "1500"),
        ("1e21", "1e21"),
        ("0", "0"),
        ("00", "0"),
        ("0Gi", "0"),
        ("-0", "0"),
        ("+1", "1"),
        ("5", "5"),
        ("5Mi", "5Mi"),
        // Binary below 1024, or not whole, prints in decimal SI.
        ("0.5Ki", "512"),
        ("1000", "1k"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
        ("100.035Ki", "102435840m"),
        ("-1Gi", "-1Gi"),
        ("-1.5", "-1500m"),
        ("-80e-3", "-80e-3"),
    ];
    for (input, expected) in cases {
        let parsed = q(input);
        assert_eq!(parsed.to_string(), expected, "input {input:?}");
        let reparsed = q(expected);
        assert_eq!(reparsed, parsed, "round trip of {input:?}");
        assert_eq!(
            reparsed.to_string(),
            expected,
            "canonical form of {expected:?} is stable"
        );
    }
}

#[test]
fn milli_and_whole_values_round_up() {
    let cases = [
        ("100m", 100, 1),
        ("1", 1000, 1),
        ("1.5", 1500, 2),
        ("2Gi", (2 << 30) * 1000, 2 << 30),
        ("500Mi", 500 * 1024 * 1024 * 1000, 500 * 1024 * 1024),
        ("1n", 1, 1),
        ("0", 0, 0),
        ("-1.5", -1500, -1),
        ("-1n", 0, 0),
        ("1e3", 1_000_000, 1000),
    ];
    for (input, milli, whole) in cases {
        let parsed = q(input);
        assert_eq!(parsed.milli_value(), milli, "milli value of {input:?}");
        assert_eq!(parsed.value(), whole, "whole value of {input:?}");
    }
}

#[test]
fn comparison_ignores_format() {
    let cases = [
        ("1Gi", "1024Mi", Ordering::Equal),
        ("1", "1000m", Ordering::Equal),
        ("1k", "1e3", Ordering::Equal),
        ("1Ki", "1k", Ordering::Greater),
        ("999m", "1", Ordering::Less),
        ("-1", "0", Ordering::Less),
        ("1G", "1Gi", Ordering::Less),
    ];
    for (left, right, expected) in cases {
        assert_eq!(q(left).cmp(&q(right)), expected, "{left} vs {right}");
        assert_eq!(
            q(left) == q(right),
            expected == Ordering::Equal,
            "{left} == {right}"
        );
    }
    assert_eq!(q("2").max(q("1500m")).to_string(), "2");
}

#[test]
fn add_and_sub_keep_the_left_format_unless_it_is_zero() {
    let cases = [
        ("10", "10", "+", "20"),
        ("10", "1Ki", "+", "1034"),
        ("1Gi", "1Gi", "+", "2Gi"),
        ("1Gi", "1", "+", "1073741825"),
        ("0", "1Gi", "+", "1Gi"),
        ("0Ki", "1k", "+", "1k"),
        ("2Gi", "1Gi", "-", "1Gi"),
        ("1", "250m", "-", "750m"),
        ("0", "50", "-", "-50"),
        ("0", "1Gi", "-", "-1Gi"),
        ("50", "0", "-", "50"),
    ];
    for (left, right, operator, expected) in cases {
        let result = match operator {
            "+" => q(left) + q(right),
            _ => q(left) - q(right),
        };
        assert_eq!(result.to_string(), expected, "{left} {operator} {right}");
    }
    let mut total = q("100m");
    total += q("400m");
    total -= q("1");
    assert_eq!(total.to_string(), "-500m");
    assert_eq!((-q("1Gi")).to_string(), "-1Gi");
}

#[test]
fn sum_adds_requests_in_the_first_nonzero_format() {
    let requests = [q("0"), q("256Mi"), q("768Mi"), q("512Mi")];
    assert_eq!(requests.iter().sum::<Quantity>().to_string(), "1536Mi");
    let cpu: Quantity = ["100m", "250m", "650m"].into_iter().map(q).sum();
    assert_eq!(cpu.to_string(), "1");
    assert_eq!(
        std::iter::empty::<Quantity>().sum::<Quantity>().to_string(),
        "0"
    );
}

#[test]
fn checked_arithmetic_reports_overflow_and_operators_saturate() {
    let huge = Quantity::from_nano(i128::MAX, Format::DecimalSI);
    assert_eq!(huge.checked_add(q("1n")), None);
    assert_eq!(huge + q("1"), huge);
    assert_eq!(q("1").checked_sub(q("2")), Some(q("-1")));
    let tiny = Quantity::from_nano(i128::MIN, Format::DecimalSI);
    assert_eq!(tiny.checked_sub(q("1n")), None);
    assert_eq!(tiny - q("1"), tiny);
}

#[test]
fn constructors_build_whole_and_milli_quantities() {
    let cases = [
        (Quantity::new(1 << 30, Format::BinarySI), "1Gi"),
        (Quantity::new(4, Format::DecimalSI), "4"),
        (Quantity::new(0, Format::BinarySI), "0"),
        (Quantity::new_milli(1500, Format::DecimalSI), "1500m"),
        (Quantity::new_milli(2000, Format::DecimalSI), "2"),
        (Quantity::from_nano(1, Format::DecimalSI), "1n"),
        (Quantity::default(), "0"),
    ];
    for (quantity, expected) in cases {
        assert_eq!(quantity.to_string(), expected);
    }
    assert!(Quantity::default().is_zero());
    assert_eq!(q("-3").signum(), -1);
    assert_eq!(q("3m").signum(), 1);
}

#[test]
fn serde_writes_canonical_strings_and_reads_strings_or_numbers() {
    let cases = [
        (serde_json::json!("1.5"), "\"1500m\""),
        (serde_json::json!(" 2Gi "), "\"2Gi\""),
        (serde_json::json!(3), "\"3\""),
        (serde_json::json!(-3), "\"-3\""),
        (serde_json::json!(u64::MAX), "\"18446744073709551615\""),
        (serde_json::json!(0.25), "\"250m\""),
    ];
    for (raw, expected) in cases {
        let parsed: Quantity = serde_json::from_value(raw.clone()).expect("valid quantity");
        assert_eq!(
            serde_json::to_string(&parsed).expect("serializes"),
            expected,
            "{raw}"
        );
    }
    let error = serde_json::from_value::<Quantity>(serde_json::json!("1KiB")).expect_err("bad");
    assert!(
        error.to_string().starts_with("quantities must match"),
        "{error}"
    );
    assert!(serde_json::from_value::<Quantity>(serde_json::json!(true)).is_err());
}

#[test]
fn converts_to_and_from_openapi_quantity() {
    let openapi = OpenApiQuantity("1024Mi".to_string());
    let parsed = Quantity::try_from(&openapi).expect("valid");
    assert_eq!(
        OpenApiQuantity::from(parsed),
        OpenApiQuantity("1Gi".to_string())
    );
    assert!(Quantity::try_from(&OpenApiQuantity("x".to_string())).is_err());
}

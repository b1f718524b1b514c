//! Kubernetes resource quantities (`100m`, `1.5`, `2Gi`, `1e3`): parsed with
//! upstream's grammar and rounding, compared and summed exactly, and printed
//! in upstream's canonical form (`1000m` → `1`, `1024Mi` → `1Gi`). Values are
//! held as exact nano-units in an `i128`; nothing here does I/O.

mod parse;

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OpenApiQuantity;

/// Nano-units in one unit: quantities are exact to 10⁻⁹, as upstream rounds them.
const NANO: i128 = 1_000_000_000;

/// Why a string is not a quantity. The first two texts are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not have the shape of a number and a suffix.
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    /// The suffix is not one of `n u m k M G T P E`, `Ki`…`Ei` or `e<n>`.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// The magnitude is beyond what berth holds (about 1.7·10²⁹); upstream
    /// would accept it, but no real resource comes near.
    #[error("quantity is too large: the largest supported magnitude is about 1.7e29")]
    OutOfRange,
}

/// The suffix family a quantity was written in, kept so it prints back in the
/// same family (`500Mi` stays binary, `500M` decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `12e6`: a power of ten written as `e<n>`.
    DecimalExponent,
    /// `12Mi`: powers of 1024 (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`).
    BinarySI,
    /// `12M`: SI powers of ten (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or none.
    #[default]
    DecimalSI,
}

/// A resource quantity: an exact value to the nano-unit and the format to
/// print it in. Equality, ordering and hashing look at the value only, so
/// `1Gi == 1024Mi` and `1 == 1000m`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantity {
    nano: i128,
    format: Format,
}

impl Quantity {
    /// Parses upstream's grammar: an optional sign, digits with an optional
    /// `.`, and an optional suffix. Values finer than 10⁻⁹ round away from
    /// zero; binary quantities saturate at 2⁶³−1, as upstream.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        parse::parse(text)
    }

    /// `value` whole units in `format` (upstream's `NewQuantity`), e.g. a
    /// node's memory in bytes as `BinarySI`.
    pub fn new(value: i64, format: Format) -> Self {
        Quantity {
            nano: i128::from(value) * NANO,
            format,
        }
    }

    /// `milli` thousandths of a unit in `format` (upstream's
    /// `NewMilliQuantity`), e.g. CPU in millicores.
    pub fn new_milli(milli: i64, format: Format) -> Self {
        Quantity {
            nano: i128::from(milli) * 1_000_000,
            format,
        }
    }

    /// `nano` billionths of a unit in `format`: the exact internal value.
    pub fn from_nano(nano: i128, format: Format) -> Self {
        Quantity { nano, format }
    }

    /// The exact value in billionths of a unit.
    pub fn nano_value(&self) -> i128 {
        self.nano
    }

    /// The value in thousandths, rounded up (towards +∞): CPU in millicores,
    /// as the scheduler and kubelet count it.
    pub fn milli_value(&self) -> i128 {
        ceil_div(self.nano, 1_000_000)
    }

    /// The value in whole units, rounded up (towards +∞): memory and storage
    /// in bytes, pod counts.
    pub fn value(&self) -> i128 {
        ceil_div(self.nano, NANO)
    }

    /// The suffix family this quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nano == 0
    }

    /// -1, 0 or 1 with the sign of the value.
    pub fn signum(&self) -> i32 {
        self.nano.signum() as i32
    }

    /// `self + other`, or `None` if the sum leaves the representable range.
    /// The format is `self`'s, unless `self` is zero (upstream's rule).
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Some(Quantity {
            nano: self.nano.checked_add(other.nano)?,
            format: self.format_for_result(other),
        })
    }

    /// `self - other`, or `None` if the difference leaves the range.
    /// The format is `self`'s, unless `self` is zero (upstream's rule).
    pub fn checked_sub(self, other: Quantity) -> Option<Quantity> {
        Some(Quantity {
            nano: self.nano.checked_sub(other.nano)?,
            format: self.format_for_result(other),
        })
    }

    fn format_for_result(self, other: Quantity) -> Format {
        if self.nano == 0 {
            other.format
        } else {
            self.format
        }
    }
}

/// The canonical form, as upstream's `Quantity.String()`: the largest suffix
/// of the quantity's family that keeps the number an integer, decimal
/// exponents in multiples of three, `0` for zero. Binary quantities below
/// 1024 or not whole print in decimal SI. Decimal values beyond `E` keep
/// the `E` suffix (upstream drops the suffix there, a bug not copied).
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nano == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySI
            && self.nano.unsigned_abs() >= (1024 * NANO) as u128
            && self.nano % NANO == 0
        {
            let mut amount = self.nano / NANO;
            let mut power = 0;
            while power < 6 && amount % 1024 == 0 {
                amount /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{amount}{suffix}");
        }
        // Decimal: mantissa × 10^exponent with the exponent a multiple of three.
        let mut mantissa = self.nano;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        while exponent % 3 != 0 {
            mantissa *= 10;
            exponent -= 1;
        }
        if self.format == Format::DecimalExponent {
            return if exponent == 0 {
                write!(f, "{mantissa}")
            } else {
                write!(f, "{mantissa}e{exponent}")
            };
        }
        while exponent > 18 {
            mantissa *= 1000;
            exponent -= 3;
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        write!(f, "{mantissa}{suffix}")
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Quantity::parse(text)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nano == other.nano
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nano.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nano.cmp(&other.nano)
    }
}

/// Saturates at the ends of the range instead of overflowing; use
/// [`Quantity::checked_add`] to detect that.
impl Add for Quantity {
    type Output = Quantity;

    fn add(self, other: Quantity) -> Quantity {
        Quantity {
            nano: self.nano.saturating_add(other.nano),
            format: self.format_for_result(other),
        }
    }
}

/// Saturates at the ends of the range instead of overflowing; use
/// [`Quantity::checked_sub`] to detect that.
impl Sub for Quantity {
    type Output = Quantity;

    fn sub(self, other: Quantity) -> Quantity {
        Quantity {
            nano: self.nano.saturating_sub(other.nano),
            format: self.format_for_result(other),
        }
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, other: Quantity) {
        *self = *self + other;
    }
}

impl SubAssign for Quantity {
    fn sub_assign(&mut self, other: Quantity) {
        *self = *self - other;
    }
}

impl Neg for Quantity {
    type Output = Quantity;

    fn neg(self) -> Quantity {
        Quantity {
            nano: self.nano.saturating_neg(),
            format: self.format,
        }
    }
}

/// Sums requests across pods or containers; the format is that of the first
/// non-zero term.
impl Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::default(), Add::add)
    }
}

impl<'a> Sum<&'a Quantity> for Quantity {
    fn sum<I: Iterator<Item = &'a Quantity>>(iter: I) -> Quantity {
        iter.copied().sum()
    }
}

impl TryFrom<&OpenApiQuantity> for Quantity {
    type Error = QuantityError;

    fn try_from(quantity: &OpenApiQuantity) -> Result<Self, Self::Error> {
        Quantity::parse(&quantity.0)
    }
}

impl From<Quantity> for OpenApiQuantity {
    fn from(quantity: Quantity) -> Self {
        OpenApiQuantity(quantity.to_string())
    }
}

/// Written as its canonical string, as upstream marshals it.
impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read from a string (surrounding whitespace ignored) or a JSON number, as
/// upstream's `UnmarshalJSON` accepts both.
impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as \"100m\" or \"1Gi\", or a number")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Quantity, E> {
                Quantity::parse(text.trim()).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Quantity, E> {
                Ok(Quantity::new(value, Format::DecimalSI))
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Quantity, E> {
                Ok(Quantity::from_nano(
                    i128::from(value) * NANO,
                    Format::DecimalSI,
                ))
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Quantity, E> {
                Quantity::parse(&value.to_string()).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// `value / divisor` rounded towards +∞, for a positive divisor.
fn ceil_div(value: i128, divisor: i128) -> i128 {
    let quotient = value.div_euclid(divisor);
    if value.rem_euclid(divisor) == 0 {
        quotient
    } else {
        quotient + 1
    }
}

#[cfg(test)]
mod tests;

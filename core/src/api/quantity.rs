//! Kubernetes quantity strings (`"300m"`, `"0.25"`, `"1Gi"`, `"2e3"`) as numbers.
//!
//! Spec numbers that are not counts are quantities, never floats (API conventions), so every number a
//! user writes goes through here. Parsing is exact (decimal digits, not `f64::from_str` per suffix), so
//! `milli_ceil` gives what Kubernetes' `Quantity.MilliValue()` gives, which HPA's arithmetic relies on.

use std::fmt;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{input:?} is not a Kubernetes quantity: {problem} (write a number with an optional suffix, such as \"300m\", \"0.25\", \"2\" or \"1Gi\")"
)]
pub struct QuantityError {
    pub input: String,
    pub problem: &'static str,
}

/// A parsed quantity: `digits × 10^exp10 × 2^exp2`, exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    negative: bool,
    digits: u128,
    exp10: i32,
    exp2: u32,
}

impl Quantity {
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let error = |problem| QuantityError { input: input.to_owned(), problem };
        let s = input.trim();
        if s.is_empty() {
            return Err(error("it is empty"));
        }
        let (negative, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let number_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(error("it does not start with a number"));
        }
        let mut digits: u128 = 0;
        let mut exp10: i32 = 0;
        let mut after_point = false;
        for c in number.chars() {
            if c == '.' {
                after_point = true;
                continue;
            }
            if digits > u128::MAX / 100 {
                return Err(error("it has too many digits"));
            }
            digits = digits * 10 + u128::from(c as u8 - b'0');
            if after_point {
                exp10 -= 1;
            }
        }
        let (suffix_exp10, exp2) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            exponent if exponent.starts_with(['e', 'E']) => {
                let value: i32 = exponent[1..].parse().map_err(|_| error("its exponent is not an integer"))?;
                if value.abs() > 30 {
                    return Err(error("its exponent is out of range"));
                }
                (value, 0)
            }
            _ => return Err(error("its suffix is unknown (use n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or eN)")),
        };
        Ok(Quantity { negative, digits, exp10: exp10 + suffix_exp10, exp2 })
    }

    pub fn as_f64(&self) -> f64 {
        // Dividing by an exact power of ten rounds once: "0.41" is 0.41, not 41 × 0.01.
        let decimal = if self.exp10 < 0 {
            self.digits as f64 / 10f64.powi(-self.exp10)
        } else {
            self.digits as f64 * 10f64.powi(self.exp10)
        };
        let magnitude = decimal * 2f64.powi(self.exp2 as i32);
        if self.negative { -magnitude } else { magnitude }
    }

    pub fn is_positive(&self) -> bool {
        !self.negative && self.digits > 0
    }

    /// `ceil(value × 1000)`, exactly as Kubernetes' `Quantity.MilliValue()` rounds.
    pub fn milli_ceil(&self) -> i64 {
        let exp10 = self.exp10 + 3;
        let scaled = (self.digits as f64 * 2f64.powi(self.exp2 as i32)) as u128;
        let magnitude_ceil = if exp10 >= 0 {
            scaled.saturating_mul(10u128.saturating_pow(exp10 as u32)) as f64
        } else {
            let divisor = 10u128.checked_pow((-exp10) as u32).unwrap_or(u128::MAX);
            let (quotient, remainder) = (scaled / divisor, scaled % divisor);
            // Ceiling of a negative value rounds towards zero.
            (quotient + u128::from(remainder > 0 && !self.negative)) as f64
        };
        let milli = if self.negative { -magnitude_ceil } else { magnitude_ceil };
        milli.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

/// `ceil(value × 1000)` of a measured value, the way Kubernetes turns a metric into a milli-quantity.
/// Values like 1.1 are not exact in binary; a product within rounding error of an integer counts as
/// that integer, so 1.1 gives 1100 (as the quantity "1.1" does), not 1101.
pub fn milli_ceil_of(value: f64) -> i64 {
    let milli = value * 1000.0;
    let nearest = milli.round();
    if (milli - nearest).abs() <= 1e-9 * nearest.abs().max(1.0) { nearest as i64 } else { milli.ceil() as i64 }
}

/// Formats money or a measured value for status fields and messages: at most `decimals` places, no
/// trailing zeros, so it is also a valid quantity string.
pub fn format_decimal(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// What a spec field holding a quantity accepts, as HPA's `resource.Quantity` does: a string
/// (`"300m"`, `"0.25"`) or a number. The API server takes whole numbers unquoted (the CRD says
/// `x-kubernetes-int-or-string`); `trimtab decide`, `simulate` and `check` take any JSON or YAML
/// number (YAML 1.2 reads `2e2` and `0.5` as floats). The field keeps the text, so the rest of
/// Trimtab sees one form.
pub struct QuantityText(pub String);

impl<'de> serde::Deserialize<'de> for QuantityText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityTextVisitor)
    }
}

struct QuantityTextVisitor;

impl serde::de::Visitor<'_> for QuantityTextVisitor {
    type Value = QuantityText;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a quantity: a number, or a string such as \"300m\", \"0.25\" or \"1Gi\"")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<QuantityText, E> {
        Ok(QuantityText(text.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<QuantityText, E> {
        Ok(QuantityText(text))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<QuantityText, E> {
        Ok(QuantityText(value.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<QuantityText, E> {
        Ok(QuantityText(value.to_string()))
    }

    fn visit_i128<E: serde::de::Error>(self, value: i128) -> Result<QuantityText, E> {
        Ok(QuantityText(value.to_string()))
    }

    fn visit_u128<E: serde::de::Error>(self, value: u128) -> Result<QuantityText, E> {
        Ok(QuantityText(value.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<QuantityText, E> {
        if !value.is_finite() {
            return Err(E::custom(format!("{value} is not a quantity: write a finite number, such as 0.25 or \"250m\"")));
        }
        // Debug keeps an exponent for very large or small numbers ("1e-7"), which Quantity parses.
        Ok(QuantityText(format!("{value:?}")))
    }
}

/// `#[serde(deserialize_with)]` for a `String` quantity field: a string or any number.
pub fn deserialize_quantity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    <QuantityText as serde::Deserialize>::deserialize(deserializer).map(|q| q.0)
}

/// `#[serde(deserialize_with)]` for an `Option<String>` quantity field (with `#[serde(default)]`).
pub fn deserialize_optional_quantity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    <Option<QuantityText> as serde::Deserialize>::deserialize(deserializer).map(|q| q.map(|q| q.0))
}

/// The suffix of a quantity string: binary (Ki..Ei), decimal (n..E) or an integer exponent.
const SUFFIX_PATTERN: &str = r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?";

/// A quantity above zero, written as a string: no sign but `+`, and a digit other than 0.
pub fn positive_quantity_pattern() -> String {
    format!(r"^\+?([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*){SUFFIX_PATTERN}$")
}

/// A quantity of zero or more, written as a string.
pub fn non_negative_quantity_pattern() -> String {
    format!(r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+){SUFFIX_PATTERN}$")
}

/// The CRD schema of a quantity field, as k8s-openapi writes `resource.Quantity`: an integer or a
/// string (`x-kubernetes-int-or-string`; kube's structural rewrite would empty an `anyOf` of types). The string form is checked by a pattern and the integer
/// form by `minimum`, not by CEL: CEL sizes an int-or-string value at the largest request the API
/// server takes, and two `quantity()` calls per objective would exceed the CRD's cost budget.
fn quantity_schema(pattern: String, minimum: i64) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-int-or-string": true,
        "pattern": pattern,
        "maxLength": 64,
        "minimum": minimum,
    })
}

/// `#[schemars(schema_with)]` for a quantity that must be above zero.
pub fn positive_quantity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    quantity_schema(positive_quantity_pattern(), 1)
}

/// `#[schemars(schema_with)]` for a quantity of zero or more.
pub fn non_negative_quantity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    quantity_schema(non_negative_quantity_pattern(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(s: &str) -> i64 {
        Quantity::parse(s).unwrap().milli_ceil()
    }

    #[test]
    fn decimal_and_binary_suffixes_scale_the_number() {
        assert_eq!(Quantity::parse("300m").unwrap().as_f64(), 0.3);
        assert_eq!(Quantity::parse("1.5k").unwrap().as_f64(), 1500.0);
        assert_eq!(Quantity::parse("1Gi").unwrap().as_f64(), 1073741824.0);
        assert_eq!(Quantity::parse("2e3").unwrap().as_f64(), 2000.0);
        assert_eq!(Quantity::parse("-0.5").unwrap().as_f64(), -0.5);
    }

    #[test]
    fn milli_values_round_up_exactly_like_kubernetes() {
        assert_eq!(milli("1.1"), 1100);
        assert_eq!(milli("0.0001"), 1);
        assert_eq!(milli("412"), 412_000);
        assert_eq!(milli("300m"), 300);
        assert_eq!(milli("1n"), 1);
        assert_eq!(milli("-1.5m"), -1);
    }

    #[test]
    fn measured_values_near_an_integer_milli_value_are_not_rounded_up() {
        assert_eq!(milli_ceil_of(1.1), 1100);
        assert_eq!(milli_ceil_of(0.4125), 413);
        assert_eq!(milli_ceil_of(412.0), 412_000);
    }

    #[test]
    fn text_that_is_not_a_quantity_is_rejected_with_the_reason() {
        for bad in ["", "abc", "1.2.3", "5 pods", "1x", ".", "1e"] {
            let error = Quantity::parse(bad).unwrap_err();
            assert!(error.to_string().contains("is not a Kubernetes quantity"), "{bad}: {error}");
        }
    }

    #[test]
    fn formatted_decimals_drop_trailing_zeros() {
        assert_eq!(format_decimal(1.5, 2), "1.5");
        assert_eq!(format_decimal(2.0, 2), "2");
        assert_eq!(format_decimal(0.4126, 3), "0.413");
    }

    #[derive(serde::Deserialize)]
    struct Field {
        #[serde(deserialize_with = "deserialize_quantity")]
        target: String,
        #[serde(default, deserialize_with = "deserialize_optional_quantity")]
        tolerance: Option<String>,
    }

    fn read(json: &str) -> Result<Field, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn a_quantity_field_takes_a_string_or_any_number() {
        assert_eq!(read(r#"{"target": "300m"}"#).unwrap().target, "300m");
        assert_eq!(read(r#"{"target": 50}"#).unwrap().target, "50");
        assert_eq!(read(r#"{"target": -2}"#).unwrap().target, "-2");
        for (number, value) in [("0.25", 0.25), ("2e2", 200.0), ("1e-7", 1e-7), ("1.5E3", 1500.0)] {
            let text = read(&format!(r#"{{"target": {number}}}"#)).unwrap().target;
            assert_eq!(Quantity::parse(&text).unwrap().as_f64(), value, "{number} became {text:?}");
        }
        assert_eq!(read(r#"{"target": "1", "tolerance": 0.05}"#).unwrap().tolerance.as_deref(), Some("0.05"));
        assert_eq!(read(r#"{"target": "1"}"#).unwrap().tolerance, None);
    }

    #[test]
    fn a_quantity_field_refuses_what_is_not_a_number_or_a_string() {
        for bad in [r#"{"target": true}"#, r#"{"target": [1]}"#, r#"{"target": {"value": 1}}"#] {
            let error = read(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("a quantity: a number, or a string"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_crd_patterns_accept_exactly_the_quantities_of_their_sign() {
        let positive = regex::Regex::new(&positive_quantity_pattern()).unwrap();
        let non_negative = regex::Regex::new(&non_negative_quantity_pattern()).unwrap();
        let texts = [
            "300m", "0.01", "50", "1", "1.", ".5", "+2", "1.5k", "1Gi", "2e3", "2E-3", "0", "0.0", "0m", "000", ".0", "0e5",
            "-1", "-0.5", "", "abc", "1.2.3", "5 pods", "1x", ".", "1e", "e3", "1Ki5",
        ];
        for text in texts {
            let parsed = Quantity::parse(text).ok();
            let is_positive = parsed.is_some_and(|q| q.is_positive());
            let is_non_negative = parsed.is_some_and(|q| q.as_f64() >= 0.0);
            assert_eq!(positive.is_match(text), is_positive, "positive pattern on {text:?}");
            assert_eq!(non_negative.is_match(text), is_non_negative, "non-negative pattern on {text:?}");
        }
    }
}

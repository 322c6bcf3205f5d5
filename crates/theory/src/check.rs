//! The one family of parameter checks of the workspace (theory and DLN crates alike): one wording
//! per rule and one value format, each returning the value or an [`InvalidParameter`] naming
//! the field; and the rules of a spectrum of singular values, stated once.

use std::fmt::{Debug, Display};

use crate::error::InvalidParameter;

/// The result of a check.
pub type Checked<T> = Result<T, InvalidParameter>;

/// `value` is finite.
pub fn finite(field: &str, value: f64) -> Checked<f64> {
    if value.is_finite() { Ok(value) } else { Err(InvalidParameter::new(field, "must be finite", value)) }
}

/// `value` is finite and `> 0`.
pub fn positive(field: &str, value: f64) -> Checked<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(InvalidParameter::new(field, "must be finite and positive", value))
    }
}

/// `value` is finite and `≥ 0`.
pub fn non_negative(field: &str, value: f64) -> Checked<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(InvalidParameter::new(field, "must be finite and non-negative", value))
    }
}

/// `value ≥ min` (counts, sizes, depths).
pub fn at_least<T: PartialOrd + Debug + Display>(field: &str, value: T, min: T) -> Checked<T> {
    if value >= min { Ok(value) } else { Err(InvalidParameter::new(field, format!("must be at least {min}"), value)) }
}

/// `0 < value < 1`.
pub fn open_unit(field: &str, value: f64) -> Checked<f64> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(InvalidParameter::new(field, "must lie strictly between 0 and 1", value))
    }
}

/// The rules of a spectrum `s` of singular values: at least one, each finite and positive,
/// non-increasing. Fields are `s` and `s[k]` (place them with [`InvalidParameter::within`]).
pub fn singular_values(s: &[f64]) -> Checked<&[f64]> {
    if s.is_empty() {
        return Err(InvalidParameter::new("s", "must hold at least one singular value", "[]"));
    }
    for (k, &v) in s.iter().enumerate() {
        positive(&format!("s[{k}]"), v)?;
        if k > 0 && v > s[k - 1] {
            return Err(InvalidParameter::new(
                format!("s[{k}]"),
                format!("must not exceed the previous value {} (singular values are non-increasing)", s[k - 1]),
                v,
            ));
        }
    }
    Ok(s)
}

/// The variant named `text` in a table of names (`[(variant, name), …]`), or an error listing
/// every name: `must be one of a, b, c`. The one parser of every enum with a name table.
pub fn one_of<T: Copy>(field: &str, text: &str, names: &[(T, &'static str)]) -> Checked<T> {
    names.iter().find(|(_, name)| *name == text).map(|&(value, _)| value).ok_or_else(|| {
        let list: Vec<&str> = names.iter().map(|&(_, name)| name).collect();
        InvalidParameter::new(field, format!("must be one of {}", list.join(", ")), text)
    })
}

/// The name of `value` in a table of names (`[(variant, name), …]`, which lists every variant).
pub fn name_in<T: PartialEq + Debug>(value: &T, names: &[(T, &'static str)]) -> &'static str {
    names.iter().find(|(v, _)| v == value).map_or_else(|| panic!("{value:?} is missing from its name table"), |n| n.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_has_one_wording() {
        assert_eq!(positive("lr", 0.5), Ok(0.5));
        assert_eq!(positive("lr", 0.0).unwrap_err().to_string(), "lr: must be finite and positive (got 0.0)");
        assert_eq!(positive("lr", f64::NAN).unwrap_err().value, "NaN");
        assert_eq!(non_negative("sigma", 0.0), Ok(0.0));
        assert_eq!(
            non_negative("sigma", -1.0).unwrap_err().to_string(),
            "sigma: must be finite and non-negative (got -1.0)"
        );
        assert_eq!(finite("gamma", f64::INFINITY).unwrap_err().to_string(), "gamma: must be finite (got inf)");
        assert_eq!(at_least("batch", 0u32, 1).unwrap_err().to_string(), "batch: must be at least 1 (got 0)");
        assert_eq!(at_least("batch", 1u32, 1), Ok(1));
        assert_eq!(open_unit("rho", 1.0).unwrap_err().rule, "must lie strictly between 0 and 1");
    }

    #[test]
    fn name_tables_parse_and_name_every_variant() {
        const NAMES: [(u8, &str); 3] = [(1, "one"), (2, "two"), (3, "three")];
        assert_eq!(one_of("n", "two", &NAMES), Ok(2));
        assert_eq!(
            one_of("n", "four", &NAMES).unwrap_err().to_string(),
            "n: must be one of one, two, three (got four)"
        );
        assert_eq!(name_in(&3, &NAMES), "three");
    }

    #[test]
    fn spectra_are_non_empty_positive_and_non_increasing() {
        assert!(singular_values(&[3.0, 3.0, 1.0]).is_ok());
        assert_eq!(singular_values(&[]).unwrap_err().field, "s");
        assert_eq!(
            singular_values(&[1.0, 2.0]).unwrap_err().to_string(),
            "s[1]: must not exceed the previous value 1 (singular values are non-increasing) (got 2.0)"
        );
        assert_eq!(
            singular_values(&[2.0, 0.0]).unwrap_err().to_string(),
            "s[1]: must be finite and positive (got 0.0)"
        );
    }
}

//! Typed errors of the theory crate: the one [`InvalidParameter`] of the whole workspace (the
//! DLN and experiments crates wrap it too), and numerical failures.

use std::fmt::Debug;

/// A parameter broke its rule: the one parameter error of the workspace.
///
/// `field` is the parameter's path as users write it (`lr`, `s[1]`, `train.teacher.spectrum.s[1]`),
/// built up with [`within`](Self::within) as the error travels outwards; `rule` says what the
/// value must satisfy, in words; `value` is the offending value, formatted the one way every crate
/// uses (see [`new`](Self::new)). Displayed as `{field}: {rule} (got {value})`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule} (got {value})")]
pub struct InvalidParameter {
    /// The parameter's path.
    pub field: String,
    /// The rule it must satisfy, in words.
    pub rule: String,
    /// The offending value as written.
    pub value: String,
}

impl InvalidParameter {
    /// Builds the error. The value is formatted with `{:?}` with the quotes of a string
    /// removed, so floats always show their decimal point or exponent (`-1.0`, `NaN`, `inf`,
    /// `1e-20`), lists their brackets (`[3]`) and strings their text (`cuda`).
    pub fn new(field: impl Into<String>, rule: impl Into<String>, value: impl Debug) -> Self {
        let value = format!("{value:?}");
        let value = value.trim_matches('"').to_string();
        Self { field: field.into(), rule: rule.into(), value }
    }

    /// The same error with its field placed inside `prefix`: `lr` within `train` is `train.lr`,
    /// `s[1]` within `train.teacher.spectrum` is `train.teacher.spectrum.s[1]`, an index `[2]`
    /// within `seeds` is `seeds[2]`. A prefix ending in `:` is a label rather than a path
    /// (`sweep point 1 (lr=0.1):`) and is followed by a space.
    pub fn within(self, prefix: &str) -> Self {
        Self { field: field_within(prefix, &self.field), ..self }
    }
}

/// The path of `field` inside `prefix` (the rule of [`InvalidParameter::within`]), for errors
/// of other shapes that name a field too.
pub fn field_within(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else if prefix.ends_with(':') {
        format!("{prefix} {field}")
    } else if field.starts_with('[') {
        format!("{prefix}{field}")
    } else {
        format!("{prefix}.{field}")
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TheoryError {
    /// A parameter broke its rule; its field is the parameter's name as users write it
    /// (`depth`, `s`, `sigma`, `lr`, `batch`, `w0`, `paths`, …).
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    /// A quantity is undefined or could not be computed reliably for valid parameters.
    #[error("{what}: {reason}")]
    Numerical {
        /// What was being computed.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A long computation was stopped on request (see [`crate::Mode::ensemble_until`]).
    #[error("interrupted")]
    Interrupted,
}

impl TheoryError {
    /// Builds an [`TheoryError::InvalidParameter`] (see [`InvalidParameter::new`]).
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>, value: impl Debug) -> Self {
        InvalidParameter::new(field, rule, value).into()
    }

    /// The broken parameter rule, if the error is one.
    pub fn invalid_parameter(&self) -> Option<&InvalidParameter> {
        match self {
            Self::InvalidParameter(p) => Some(p),
            Self::Numerical { .. } | Self::Interrupted => None,
        }
    }

    /// The name of the offending field, if the error is about one.
    pub fn field(&self) -> Option<&str> {
        self.invalid_parameter().map(|p| p.field.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_nest_as_paths_and_values_have_one_format() {
        let e = InvalidParameter::new("lr", "must be finite and positive", -1.0).within("train");
        assert_eq!(e.to_string(), "train.lr: must be finite and positive (got -1.0)");
        let e = InvalidParameter::new("s[1]", "r", 2.0).within("train.teacher.spectrum");
        assert_eq!(e.field, "train.teacher.spectrum.s[1]");
        assert_eq!(InvalidParameter::new("[2]", "r", 1u64).within("seeds").field, "seeds[2]");
        let e = InvalidParameter::new("lr", "r", f64::NAN).within("train").within("sweep point 1 (lr=nan):");
        assert_eq!(e.to_string(), "sweep point 1 (lr=nan): train.lr: r (got NaN)");
        assert_eq!(InvalidParameter::new("x", "r", "cuda").value, "cuda");
        assert_eq!(InvalidParameter::new("x", "r", vec![3usize]).value, "[3]");
        assert_eq!(InvalidParameter::new("x", "r", f64::INFINITY).value, "inf");
        assert_eq!(InvalidParameter::new("x", "r", "a").within("").field, "x");
    }
}

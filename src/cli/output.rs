//! Printing a command's report: one compact JSON object (`--json`) or a `key: value` listing.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

/// The output options shared by the commands that print a report.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Print the report as one JSON object on one line instead of a `key: value` listing.
    #[arg(long)]
    pub json: bool,
}

impl OutputArgs {
    /// Prints `report` (a struct of scalar fields) to stdout in the chosen format.
    pub fn print(&self, report: &impl Serialize) -> anyhow::Result<()> {
        let json = serde_json::to_string(report).context("cannot encode the report as JSON")?;
        let text = if self.json { json } else { listing(&json)? };
        writeln!(std::io::stdout().lock(), "{text}").context("cannot write to stdout")
    }
}

/// Renders a JSON object as `key: value` lines, in the object's order (serde_json keeps it
/// with its `preserve_order` feature); `null` reads `none`.
fn listing(json: &str) -> anyhow::Result<String> {
    let Value::Object(fields) = serde_json::from_str(json).context("a report must be JSON")? else {
        anyhow::bail!("a report must be a JSON object");
    };
    let lines: Vec<String> = fields
        .into_iter()
        .map(|(key, value)| match value {
            Value::Null => format!("{key}: none"),
            Value::String(text) => format!("{key}: {text}"),
            other => format!("{key}: {other}"),
        })
        .collect();
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_keeps_the_field_order_and_spells_null_as_none() {
        let listing = listing(r#"{"z":1.5,"a":null,"law":"dirac","ok":true}"#).unwrap();
        assert_eq!(listing, "z: 1.5\na: none\nlaw: dirac\nok: true");
    }
}

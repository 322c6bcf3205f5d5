//! Printing a command's report: one compact JSON object (`--json`) or a `key: value` listing.

use std::fmt;
use std::io::Write;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
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

/// Renders a JSON object as `key: value` lines, in the object's order; `null` reads `none`.
fn listing(json: &str) -> anyhow::Result<String> {
    let Fields(fields) = serde_json::from_str(json).context("a report must be a JSON object")?;
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

/// The entries of a JSON object in their written order (`serde_json::Map` sorts its keys).
struct Fields(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
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

//! JSON Schema of every kind, generated from the Rust types, for `ds01ctl schema` and editors.

use schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Value, json};

use crate::{
    API_VERSION, ContainerLifecyclePolicySpec, DcgmExporterSpec, GpuOrphanPolicySpec, Kind,
    Metadata,
};

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

fn spec_schema(generator: &mut SchemaGenerator, kind: Kind) -> Value {
    let schema = match kind {
        Kind::DcgmExporter => generator.subschema_for::<DcgmExporterSpec>(),
        Kind::GpuOrphanPolicy => generator.subschema_for::<GpuOrphanPolicySpec>(),
        Kind::ContainerLifecyclePolicy => generator.subschema_for::<ContainerLifecyclePolicySpec>(),
    };
    schema.to_value()
}

fn finish(root: Value, generator: &mut SchemaGenerator) -> Value {
    let mut ordered = serde_json::Map::new();
    ordered.insert("$schema".to_owned(), json!(DIALECT));
    if let Value::Object(fields) = root {
        ordered.extend(fields);
    }
    ordered.insert(
        "$defs".to_owned(),
        Value::Object(generator.take_definitions(true)),
    );
    Value::Object(ordered)
}

/// The schema of one kind's document (envelope and spec).
#[must_use]
pub fn kind_schema(kind: Kind) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let metadata = generator.subschema_for::<Metadata>().to_value();
    let spec = spec_schema(&mut generator, kind);
    let root = json!({
        "title": kind.as_str(),
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": { "const": API_VERSION },
            "kind": { "const": kind.as_str() },
            "metadata": metadata,
            "spec": spec,
        },
    });
    finish(root, &mut generator)
}

/// One schema for any ds01 document: the spec's shape follows its `kind`. This is the file
/// editors load through `# yaml-language-server: $schema=…`.
#[must_use]
pub fn editor_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let metadata = generator.subschema_for::<Metadata>().to_value();
    let branches: Vec<Value> = Kind::ALL
        .into_iter()
        .map(|kind| {
            json!({
                "if": { "properties": { "kind": { "const": kind.as_str() } }, "required": ["kind"] },
                "then": { "properties": { "spec": spec_schema(&mut generator, kind) } },
            })
        })
        .collect();
    let root = json!({
        "title": "ds01 spec",
        "description": "A ds01 desired-state document (apiVersion ds01.io/v1alpha1)",
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": { "const": API_VERSION },
            "kind": { "enum": Kind::ALL.map(Kind::as_str) },
            "metadata": metadata,
            "spec": { "type": "object" },
        },
        "allOf": branches,
    });
    finish(root, &mut generator)
}

/// The schema text checked into the repository (`schemas/ds01.schema.json`).
#[must_use]
pub fn editor_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&editor_schema()).unwrap_or_default();
    text.push('\n');
    text
}

//! Spec text to typed resources: every document of every file checked, every problem reported
//! with file, line, column and field path, and nothing accepted unless all of it is valid.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    ContainerLifecyclePolicySpec, DcgmExporterSpec, Diagnostic, Diagnostics, GpuOrphanPolicySpec,
    Kind, Resource, SpecBody,
    kinds::envelope::{API_VERSION, Envelope},
    validate::Report,
    yaml::{self, Locations, YamlDocument},
};

/// Type errors reported per document before giving up on it.
const MAX_ERRORS_PER_DOCUMENT: usize = 32;

/// Spec text and the name it is reported under.
#[derive(Clone, Debug)]
pub struct Source {
    /// File path as given, or `<stdin>`.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// A valid resource and where it came from.
#[derive(Clone, Debug)]
pub struct ParsedResource {
    /// File it came from.
    pub file: String,
    /// 1-based document index within the file.
    pub document: usize,
    /// The resource, with defaults filled in.
    pub resource: Resource,
    /// The document exactly as written (for diffs and storage).
    pub written: Value,
}

/// Parses every source and checks the set as a whole (e.g. duplicate kind/name).
///
/// # Errors
/// All problems of all documents, if there is any; then no resource is returned.
pub fn parse_sources(sources: &[Source]) -> Result<Vec<ParsedResource>, Diagnostics> {
    let mut resources = Vec::new();
    let mut diagnostics = Vec::new();
    let mut seen: HashMap<(Kind, String), (String, usize)> = HashMap::new();
    let mut budget = yaml::Budget::default();
    for source in sources {
        let (parsed, problems) = parse_source_within(source, &mut budget);
        diagnostics.extend(problems);
        for (resource, locations) in parsed {
            let key = (
                resource.resource.kind(),
                resource.resource.metadata.name.clone(),
            );
            if let Some((file, document)) = seen.get(&key) {
                diagnostics.push(Diagnostic {
                    file: resource.file.clone(),
                    position: locations.value("metadata.name"),
                    document: resource.document,
                    resource: Some(resource.resource.reference()),
                    path: "metadata.name".to_owned(),
                    message: format!(
                        "{} is defined twice in this set (first in {file}, document {document})",
                        resource.resource.reference()
                    ),
                });
            } else {
                seen.insert(key, (resource.file.clone(), resource.document));
            }
            resources.push(resource);
        }
    }
    if diagnostics.is_empty() {
        Ok(resources)
    } else {
        Err(Diagnostics(diagnostics))
    }
}

/// Parses one source; returns the valid resources with their locations, and all problems.
#[must_use]
pub fn parse_source(source: &Source) -> (Vec<(ParsedResource, Locations)>, Vec<Diagnostic>) {
    parse_source_within(source, &mut yaml::Budget::default())
}

/// [`parse_source`] charging a budget shared with the other files of the set.
fn parse_source_within(
    source: &Source,
    budget: &mut yaml::Budget,
) -> (Vec<(ParsedResource, Locations)>, Vec<Diagnostic>) {
    let stream = yaml::parse_stream_within(&source.text, budget);
    let mut resources = Vec::new();
    let mut diagnostics = Vec::new();
    for (index, document) in stream.documents.into_iter().enumerate() {
        if document.value.is_null() && document.problems.is_empty() {
            continue; // comments only, or a trailing `---`
        }
        let mut context = DocumentContext {
            source,
            number: index + 1,
            resource: None,
            diagnostics: &mut diagnostics,
        };
        if let Some(resource) = parse_document(&document, &mut context) {
            resources.push((resource, document.locations));
        }
    }
    if let Some(problem) = stream.syntax_error {
        diagnostics.push(Diagnostic {
            file: source.name.clone(),
            position: Some(problem.position),
            document: resources.len() + 1,
            resource: None,
            path: problem.path,
            message: problem.message,
        });
    }
    (resources, diagnostics)
}

struct DocumentContext<'a> {
    source: &'a Source,
    number: usize,
    resource: Option<String>,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl DocumentContext<'_> {
    fn report(&mut self, position: Option<yaml::Position>, path: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.source.name.clone(),
            position,
            document: self.number,
            resource: self.resource.clone(),
            path: path.to_owned(),
            message: message.into(),
        });
    }
}

fn parse_document(
    document: &YamlDocument,
    context: &mut DocumentContext<'_>,
) -> Option<ParsedResource> {
    let locations = &document.locations;
    for problem in &document.problems {
        context.report(
            Some(problem.position),
            &problem.path,
            problem.message.clone(),
        );
    }
    let Value::Object(fields) = &document.value else {
        context.report(
            Some(document.start),
            "",
            "a spec document must be a mapping with apiVersion, kind, metadata and spec",
        );
        return None;
    };
    let name = fields
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str);
    let kind = match fields.get("kind") {
        None => {
            context.report(
                Some(document.start),
                "kind",
                "missing field `kind` (DcgmExporter, GpuOrphanPolicy or ContainerLifecyclePolicy)",
            );
            None
        }
        Some(Value::String(text)) => match Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
        {
            Some(kind) => Some(kind),
            None => {
                context.report(locations.value("kind"), "kind", format!("unknown kind `{text}`: use DcgmExporter, GpuOrphanPolicy or ContainerLifecyclePolicy"));
                None
            }
        },
        Some(_) => {
            context.report(locations.value("kind"), "kind", "must be a string");
            None
        }
    };
    if let (Some(kind), Some(name)) = (kind, name) {
        context.resource = Some(format!("{}/{name}", kind.lowercase()));
    }
    match fields.get("apiVersion") {
        Some(Value::String(version)) if version == API_VERSION => {}
        Some(other) => context.report(
            locations.value("apiVersion"),
            "apiVersion",
            format!("unsupported apiVersion {other}: this controller understands `{API_VERSION}`"),
        ),
        None => context.report(
            Some(document.start),
            "apiVersion",
            format!("missing field `apiVersion` (write `apiVersion: {API_VERSION}`)"),
        ),
    }
    let spec = match kind? {
        Kind::DcgmExporter => typed::<DcgmExporterSpec>(document, context)
            .map(|(m, s)| (m, SpecBody::DcgmExporter(Box::new(s)))),
        Kind::GpuOrphanPolicy => typed::<GpuOrphanPolicySpec>(document, context)
            .map(|(m, s)| (m, SpecBody::GpuOrphanPolicy(s))),
        Kind::ContainerLifecyclePolicy => typed::<ContainerLifecyclePolicySpec>(document, context)
            .map(|(m, s)| (m, SpecBody::ContainerLifecyclePolicy(Box::new(s)))),
    };
    let (metadata, spec) = spec?;
    let resource = Resource { metadata, spec };
    let mut report = Report::default();
    resource.metadata.validate(&mut report);
    resource.spec.validate(&mut report);
    let issues = report.into_issues();
    let valid = issues.is_empty()
        && document.problems.is_empty()
        && context
            .diagnostics
            .iter()
            .all(|d| d.file != context.source.name || d.document != context.number);
    for issue in issues {
        context.report(locations.value(&issue.path), &issue.path, issue.message);
    }
    valid.then(|| ParsedResource {
        file: context.source.name.clone(),
        document: context.number,
        resource,
        written: document.value.clone(),
    })
}

/// Deserialises the envelope with spec type `S`, reporting every type error and unknown
/// field: after each error the offending value is dropped and deserialisation retried.
fn typed<S: DeserializeOwned + Default>(
    document: &YamlDocument,
    context: &mut DocumentContext<'_>,
) -> Option<(crate::Metadata, S)> {
    let mut value = document.value.clone();
    let mut failed = false;
    for _ in 0..MAX_ERRORS_PER_DOCUMENT {
        match serde_path_to_error::deserialize::<_, Envelope<S>>(value.clone()) {
            Ok(envelope) => return (!failed).then_some((envelope.metadata, envelope.spec)),
            Err(error) => {
                failed = true;
                let mut segments: Vec<Segment> = error
                    .path()
                    .iter()
                    .filter_map(Segment::from_serde)
                    .collect();
                let message = error.inner().to_string();
                let unknown = unknown_field(&message);
                if let Some(field) = &unknown
                    && segments
                        .last()
                        .is_none_or(|last| *last != Segment::Key(field.clone()))
                {
                    segments.push(Segment::Key(field.clone()));
                }
                let path = render(&segments);
                let position = if unknown.is_some() {
                    document.locations.key(&path)
                } else {
                    document.locations.value(&path)
                };
                context.report(position, &path, friendly(&message));
                if message.starts_with("missing field") || !remove(&mut value, &segments) {
                    return None;
                }
            }
        }
    }
    None
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Segment {
    fn from_serde(segment: &serde_path_to_error::Segment) -> Option<Segment> {
        match segment {
            serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
            _ => None,
        }
    }
}

fn render(segments: &[Segment]) -> String {
    segments
        .iter()
        .fold(String::new(), |path, segment| match segment {
            Segment::Key(key) => yaml::join_key(&path, key),
            Segment::Index(index) => yaml::join_index(&path, *index),
        })
}

/// Removes the value at `segments`; false when there is nothing there to remove.
fn remove(value: &mut Value, segments: &[Segment]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut current = value;
    for segment in parents {
        current = match (segment, current) {
            (Segment::Key(key), Value::Object(map)) => match map.get_mut(key) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Index(index), Value::Array(items)) => match items.get_mut(*index) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, current) {
        (Segment::Key(key), Value::Object(map)) => map.shift_remove(key).is_some(),
        (Segment::Index(index), Value::Array(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

/// The field named by serde's "unknown field `x`, expected …" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// Shortens serde's unknown-field message and suggests the closest known field.
fn friendly(message: &str) -> String {
    let Some(field) = unknown_field(message) else {
        return message.to_owned();
    };
    let expected: Vec<&str> = message
        .split_once("expected ")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let closest = expected
        .iter()
        .map(|candidate| {
            (
                edit_distance(&field.to_ascii_lowercase(), &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, _)| *distance <= 3)
        .min();
    match closest {
        Some((_, candidate)) => format!("unknown field `{field}` (did you mean `{candidate}`?)"),
        None if expected.is_empty() => format!("unknown field `{field}`"),
        None => format!(
            "unknown field `{field}` (known fields: {})",
            expected.join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

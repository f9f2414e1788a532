//! YAML text to JSON-shaped documents that remember where every field path came from.
//!
//! # Background
//! Typed deserialisation stops at the first error and knows nothing of lines. We therefore
//! read the YAML event stream ourselves (saphyr-parser, YAML 1.2), build one
//! `serde_json::Value` per document and record, for each field path such as
//! `spec.groups.student.idleTimeout` or `spec.exemptions[0].user`, the line and column of its
//! key and of its value. Every later error (type, unknown field, semantic rule) is then
//! reported at the exact place an admin has to edit.
//!
//! # Limits
//! Reading costs bounded work whoever submits the text (the controller parses what any local
//! user sends for `apply --dry-run`): one [`Budget`] per submitted set allows at most
//! [`MAX_NODES`] nodes and [`MAX_SCALAR_BYTES`] bytes of keys and scalars, where every alias
//! counts as a full copy of what it names. A "billion laughs" alias bomb therefore stops at
//! the limit with an error that names it, before anything is copied past it.

use std::{borrow::Cow, collections::HashMap};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

pub use crate::locations::{Locations, Position, join_index, join_key};
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted; deeper input is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;
/// Most nodes (scalars, keys, sequences, mappings) one budget allows, aliases counted as the
/// copies they make.
pub const MAX_NODES: usize = 100_000;
/// Most bytes of keys and scalar text one budget allows, aliases counted as copies.
pub const MAX_SCALAR_BYTES: usize = 4 << 20;

/// What is left of the work one submitted set may cost (see the module's Limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    nodes: usize,
    bytes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            nodes: MAX_NODES,
            bytes: MAX_SCALAR_BYTES,
        }
    }
}

/// What one node cost, to charge again for every alias of it.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    nodes: usize,
    bytes: usize,
}

impl Budget {
    fn charge(&mut self, cost: Cost, path: &str, position: Position) -> Result<(), YamlProblem> {
        let problem = |message: String| YamlProblem {
            path: path.to_owned(),
            position,
            message,
        };
        self.nodes = self.nodes.checked_sub(cost.nodes).ok_or_else(|| {
            problem(format!(
                "the YAML expands to more than {MAX_NODES} nodes (the limit per submitted set; \
                 each alias counts as a copy of what it names)"
            ))
        })?;
        self.bytes = self.bytes.checked_sub(cost.bytes).ok_or_else(|| {
            problem(format!(
                "the YAML expands to more than {MAX_SCALAR_BYTES} bytes of text (the limit per \
                 submitted set; each alias counts as a copy of what it names)"
            ))
        })?;
        Ok(())
    }

    fn spent_since(&self, before: Budget) -> Cost {
        Cost {
            nodes: before.nodes.saturating_sub(self.nodes),
            bytes: before.bytes.saturating_sub(self.bytes),
        }
    }
}

/// A problem found while reading the YAML itself, before any typing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlProblem {
    /// Field path the problem belongs to (empty for the document root).
    pub path: String,
    /// Where it is.
    pub position: Position,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

/// One `---`-separated document of a YAML stream.
#[derive(Clone, Debug)]
pub struct YamlDocument {
    /// The content, as JSON-shaped data.
    pub value: Value,
    /// Where the document starts.
    pub start: Position,
    /// Positions of every field path.
    pub locations: Locations,
    /// Structural problems (duplicate keys, non-scalar keys, excessive depth).
    pub problems: Vec<YamlProblem>,
}

/// Every document of a stream, plus the syntax error that ended reading early, if any.
#[derive(Clone, Debug, Default)]
pub struct YamlStream {
    /// Documents read before the end or before a syntax error.
    pub documents: Vec<YamlDocument>,
    /// A syntax error: reading stopped there.
    pub syntax_error: Option<YamlProblem>,
}

/// Reads every document of `text` within a fresh [`Budget`].
#[must_use]
pub fn parse_stream(text: &str) -> YamlStream {
    parse_stream_within(text, &mut Budget::default())
}

/// Reads every document of `text`, charging `budget` (shared by the files of one set). When
/// the budget runs out, reading stops with a `syntax_error` naming the limit.
#[must_use]
pub fn parse_stream_within(text: &str, budget: &mut Budget) -> YamlStream {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        stream: YamlStream::default(),
        budget,
    };
    if let Err(problem) = builder.read_stream() {
        builder.stream.syntax_error = Some(problem);
    }
    builder.stream
}

struct Builder<'input, 'budget> {
    parser: Parser<'input, saphyr_parser::StrInput<'input>>,
    stream: YamlStream,
    budget: &'budget mut Budget,
}

struct DocumentState {
    locations: Locations,
    problems: Vec<YamlProblem>,
    anchors: HashMap<usize, (Value, Cost)>,
}

impl<'input> Builder<'input, '_> {
    fn next(&mut self) -> Result<(Event<'input>, Span), YamlProblem> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(YamlProblem {
                path: String::new(),
                position: (*error.marker()).into(),
                message: format!("invalid YAML: {}", error.info()),
            }),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    fn read_stream(&mut self) -> Result<(), YamlProblem> {
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamEnd => return Ok(()),
                Event::DocumentStart(_) => self.read_document(span.start.into())?,
                _ => {}
            }
        }
    }

    fn read_document(&mut self, start: Position) -> Result<(), YamlProblem> {
        let mut state = DocumentState {
            locations: Locations::default(),
            problems: Vec::new(),
            anchors: HashMap::new(),
        };
        let mut value = Value::Null;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::DocumentEnd | Event::StreamEnd => break,
                event => value = self.read_node(event, span, "", 0, &mut state)?,
            }
        }
        self.stream.documents.push(YamlDocument {
            value,
            start,
            locations: state.locations,
            problems: state.problems,
        });
        Ok(())
    }

    fn read_node(
        &mut self,
        event: Event<'input>,
        span: Span,
        path: &str,
        depth: usize,
        state: &mut DocumentState,
    ) -> Result<Value, YamlProblem> {
        let position: Position = span.start.into();
        state
            .locations
            .values
            .entry(path.to_owned())
            .or_insert(position);
        if depth > MAX_DEPTH {
            return Err(YamlProblem {
                path: path.to_owned(),
                position,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        let before = *self.budget;
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let cost = Cost {
                    nodes: 1,
                    bytes: text.len(),
                };
                self.budget.charge(cost, path, position)?;
                (resolve_scalar(&text, style, tag), anchor)
            }
            Event::Alias(anchor) => match state.anchors.get(&anchor) {
                Some((value, cost)) => {
                    // Charged before copying: a copy past the limit is never made.
                    self.budget.charge(*cost, path, position)?;
                    (value.clone(), 0)
                }
                None => (Value::Null, 0),
            },
            Event::SequenceStart(anchor, _) => {
                self.budget
                    .charge(Cost { nodes: 1, bytes: 0 }, path, position)?;
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd | Event::StreamEnd) {
                        break;
                    }
                    let item_path = join_index(path, items.len());
                    items.push(self.read_node(event, span, &item_path, depth + 1, state)?);
                }
                (Value::Array(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.budget
                    .charge(Cost { nodes: 1, bytes: 0 }, path, position)?;
                (
                    Value::Object(self.read_mapping(path, depth, state)?),
                    anchor,
                )
            }
            _ => (Value::Null, 0),
        };
        if anchor != 0 {
            let cost = self.budget.spent_since(before);
            state.anchors.insert(anchor, (value.clone(), cost));
        }
        Ok(value)
    }

    fn read_mapping(
        &mut self,
        path: &str,
        depth: usize,
        state: &mut DocumentState,
    ) -> Result<Map<String, Value>, YamlProblem> {
        let mut map = Map::new();
        loop {
            let (event, span) = self.next()?;
            let key_position: Position = span.start.into();
            let key = match event {
                Event::MappingEnd | Event::StreamEnd => return Ok(map),
                Event::Scalar(text, ..) => {
                    let cost = Cost {
                        nodes: 1,
                        bytes: text.len(),
                    };
                    self.budget.charge(cost, path, key_position)?;
                    text.into_owned()
                }
                other => {
                    // Read and drop the complex key, then its value, and say why.
                    self.read_node(other, span, path, depth + 1, state)?;
                    let (value_event, value_span) = self.next()?;
                    self.read_node(value_event, value_span, path, depth + 1, state)?;
                    state.problems.push(YamlProblem {
                        path: path.to_owned(),
                        position: key_position,
                        message: "mapping keys must be plain strings".to_owned(),
                    });
                    continue;
                }
            };
            let field_path = join_key(path, &key);
            let (value_event, value_span) = self.next()?;
            if map.contains_key(&key) {
                state.problems.push(YamlProblem {
                    path: field_path.clone(),
                    position: key_position,
                    message: format!("duplicate key `{key}`"),
                });
                self.read_node(value_event, value_span, &field_path, depth + 1, state)?;
                continue;
            }
            state
                .locations
                .keys
                .insert(field_path.clone(), key_position);
            let value = self.read_node(value_event, value_span, &field_path, depth + 1, state)?;
            map.insert(key, value);
        }
    }
}

/// YAML 1.2 core-schema resolution of a scalar: plain scalars may be null, booleans or
/// numbers; quoted and block scalars, and `!!str`, are always strings.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<Cow<'_, Tag>>) -> Value {
    let forced_string = tag
        .as_deref()
        .is_some_and(|tag| tag.handle == "tag:yaml.org,2002:" && tag.suffix == "str")
        || tag
            .as_deref()
            .is_some_and(|tag| tag.suffix == "str" && tag.handle == "!!");
    if style != ScalarStyle::Plain || forced_string {
        return Value::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    resolve_number(text).unwrap_or_else(|| Value::String(text.to_owned()))
}

fn resolve_number(text: &str) -> Option<Value> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let first = digits.chars().next()?;
    if !(first.is_ascii_digit() || first == '.') {
        return None;
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16)
            .ok()
            .map(|n| Value::Number(n.into()));
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8)
            .ok()
            .map(|n| Value::Number(n.into()));
    }
    if digits.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Value::Number(n.into()));
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(Value::Number(n.into()));
        }
    }
    let looks_float = digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if looks_float {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;

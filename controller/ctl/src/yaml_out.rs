//! Rendering JSON values as YAML for people (`-o yaml`, `diff`): block style, keys in their
//! order, strings quoted only when YAML would read them as something else.

use serde_json::Value;

/// The YAML text of `value`.
#[must_use]
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => {
            let plain = !text.is_empty()
                && !text.starts_with([
                    ' ', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>',
                    '\'', '"', '%', '@', '`',
                ])
                && !text.ends_with(' ')
                && !text.contains(": ")
                && !text.contains(" #")
                && !text.chars().any(crate::printer::is_unsafe)
                && !matches!(
                    text.as_str(),
                    "null"
                        | "Null"
                        | "NULL"
                        | "~"
                        | "true"
                        | "True"
                        | "TRUE"
                        | "false"
                        | "False"
                        | "FALSE"
                        | "yes"
                        | "no"
                        | "on"
                        | "off"
                )
                && text.parse::<f64>().is_err();
            if plain {
                text.clone()
            } else {
                // A JSON string is a YAML double-quoted scalar; `\uXXXX` escapes are valid in both.
                crate::printer::json_safe(&serde_json::to_string(text).unwrap_or_default())
                    .into_owned()
            }
        }
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        _ => String::new(),
    }
}

fn is_block(value: &Value) -> bool {
    matches!(value, Value::Array(items) if !items.is_empty())
        || matches!(value, Value::Object(map) if !map.is_empty())
}

fn write_value(out: &mut String, value: &Value, indent: usize, inline_first: bool) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (index, (key, item)) in map.iter().enumerate() {
                if !(inline_first && index == 0) {
                    out.push_str(&pad);
                }
                out.push_str(&scalar(&Value::String(key.clone())));
                out.push(':');
                if is_block(item) {
                    out.push('\n');
                    let child_indent = if item.is_array() { indent } else { indent + 2 };
                    write_value(out, item, child_indent, false);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                if is_block(item) {
                    if item.is_object() {
                        write_value(out, item, indent + 2, true);
                    } else {
                        out.push('\n');
                        write_value(out, item, indent + 2, false);
                    }
                } else {
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_block_yaml_that_reads_back_as_the_same_value() {
        let value = json!({
            "apiVersion": "ds01.io/v1alpha1",
            "spec": {"gracePeriod": "1m", "list": ["a", "true", 3, {"x": 1, "y": [1, 2]}], "empty": [], "none": null, "colon": "a: b", "num": "5"},
        });
        let text = to_yaml(&value);
        let stream = ds01_spec::yaml::parse_stream(&text);
        assert!(stream.syntax_error.is_none(), "{text}");
        assert_eq!(stream.documents[0].value, value, "{text}");
    }
}

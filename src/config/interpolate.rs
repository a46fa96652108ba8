//! `${ENV_VAR}` expansion in configuration strings, so secrets stay out of the files.

use serde_json::Value;

/// Expands `${NAME}` in every string of `value`. On a missing variable returns the JSON path of
/// the string and a message naming the variable.
pub fn expand_env(value: &mut Value, path: &str) -> Result<(), (String, String)> {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = expand_str(s).map_err(|name| {
                (
                    path.to_string(),
                    format!(
                        "environment variable {name} is not set; export it before running runner"
                    ),
                )
            })?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(item, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                expand_env(item, &child)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = std::env::var(name).map_err(|_| name.to_string())?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

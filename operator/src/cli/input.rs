//! Reading user files strictly: YAML or JSON, every unknown field and every bad value reported with
//! its path, so the error names the field to fix.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{source_name}: not valid YAML or JSON: {message}")]
    Syntax { source_name: String, message: String },
    #[error("{source_name}: {path}: {message}")]
    Field { source_name: String, path: String, message: String },
    #[error("{source_name}: unknown field {path} (check its spelling and indentation)")]
    UnknownField { source_name: String, path: String },
    #[error("cannot read {source_name}: {source}")]
    Io { source_name: String, source: std::io::Error },
}

/// Reads a file, or stdin for `-`.
pub fn read_source(path: &Path) -> Result<String, InputError> {
    let source_name = path.display().to_string();
    let mut text = String::new();
    let result = if source_name == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    result.map_err(|source| InputError::Io { source_name, source })?;
    Ok(text)
}

/// Parses YAML (JSON is YAML) into `T`, rejecting unknown fields and naming the field of any error.
pub fn parse_strict<T: DeserializeOwned>(source_name: &str, text: &str) -> Result<T, InputError> {
    let value: serde_json::Value = serde_saphyr::from_str(text)
        .map_err(|e| InputError::Syntax { source_name: source_name.to_owned(), message: e.to_string() })?;
    from_value_strict(source_name, value)
}

/// Every document of a YAML stream (`---`-separated), each still to be parsed with [`from_value_strict`].
pub fn documents(source_name: &str, text: &str) -> Result<Vec<serde_json::Value>, InputError> {
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| InputError::Syntax { source_name: source_name.to_owned(), message: e.to_string() })?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

/// Like [`parse_strict`], from an already parsed value.
pub fn from_value_strict<T: DeserializeOwned>(source_name: &str, value: serde_json::Value) -> Result<T, InputError> {
    let mut unknown = Vec::new();
    let mut remember_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let ignoring = serde_ignored::Deserializer::new(value, &mut remember_unknown);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(ignoring);
    let parsed = parsed.map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        // A misspelled required field is both missing and unknown: name what was written.
        let near: Vec<&String> = unknown.iter().filter(|u| u.starts_with(&path) || path == ".").collect();
        if !near.is_empty() {
            let near: Vec<&str> = near.iter().map(|u| u.as_str()).collect();
            message = format!("{message} (unknown field {}: check its spelling)", near.join(", "));
        }
        InputError::Field { source_name: source_name.to_owned(), path, message }
    })?;
    // Resource types take apiVersion and kind from their own type and skip them; that is not a typo.
    let is_type_meta =
        |path: &String| path == "apiVersion" || path == "kind" || path.ends_with(".apiVersion") || path.ends_with(".kind");
    match unknown.into_iter().find(|path| !is_type_meta(path)) {
        Some(path) => Err(InputError::UnknownField { source_name: source_name.to_owned(), path }),
        None => Ok(parsed),
    }
}

/// Every document of `text`, each of `kind`: another kind is an error naming the document.
pub fn of_kind<T: DeserializeOwned>(source_name: &str, text: &str, kind: &str) -> Result<Vec<T>, InputError> {
    let mut found = Vec::new();
    for (i, document) in documents(source_name, text)?.into_iter().enumerate() {
        match document.get("kind").and_then(|k| k.as_str()) {
            Some(other) if other != kind => {
                return Err(InputError::Field {
                    source_name: source_name.to_owned(),
                    path: format!("document {} kind", i + 1),
                    message: format!("is {other}; this file should hold only {kind} documents"),
                });
            }
            _ => found.push(from_value_strict(source_name, document)?),
        }
    }
    Ok(found)
}

/// The one `kind` document of `text`.
pub fn only_of_kind<T: DeserializeOwned>(source_name: &str, text: &str, kind: &str) -> Result<T, InputError> {
    let mut all: Vec<T> = of_kind(source_name, text, kind)?;
    if all.len() != 1 {
        return Err(InputError::Field {
            source_name: source_name.to_owned(),
            path: "(the file)".into(),
            message: format!("holds {} {kind} documents; give exactly one", all.len()),
        });
    }
    Ok(all.remove(0))
}

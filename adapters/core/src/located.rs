//! TOML text and errors located in it: the file a profile or the gateway config came from, and
//! how to point at a line and field of it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One error in one TOML file (a profile or the gateway config), located as precisely as the
/// loader can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LocatedError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when the error can be tied to a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), with `line`.
    pub column: Option<usize>,
    /// The field, as a path like `parameters[2].range.min`, when known.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The text of the offending line, for display.
    pub snippet: Option<String>,
}

impl fmt::Display for LocatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// A TOML file's path and full text, kept so that any later check (an adapter's profile section,
/// the gateway's cross-checks) can point at a line and field.
#[derive(Debug, Clone, Default)]
pub struct TomlSource {
    path: PathBuf,
    text: Arc<str>,
}

impl LocatedError {
    /// An error about a whole file (it cannot be read, it is too large), with no place in it.
    pub fn in_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
            snippet: None,
        }
    }
}

impl TomlSource {
    /// Reads the file at `path` as UTF-8 text, refusing files over `max_size` bytes before
    /// reading them. `what` names the kind of file in errors (`profile`, `config`).
    pub fn read(path: &Path, max_size: u64, what: &str) -> Result<Self, LocatedError> {
        let size = std::fs::metadata(path)
            .map_err(|e| LocatedError::in_file(path, format!("cannot read the {what}: {e}")))?
            .len();
        if size > max_size {
            return Err(LocatedError::in_file(
                path,
                format!("the file is {size} bytes; {what}s are limited to {max_size} bytes"),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            LocatedError::in_file(path, format!("cannot read the {what} as UTF-8 text: {e}"))
        })?;
        Ok(Self::new(path, text))
    }

    /// Wraps a file's path and text.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// An error about the field at `field` (a path like `parameters[2].range`), located at that
    /// field's value when the file has it, or at the file when it does not.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> LocatedError {
        let span = DeTable::parse(&self.text)
            .ok()
            .and_then(|root| span_of_path(&root, field));
        self.error_with_span(Some(field.to_owned()), span, message.into())
    }

    /// An error from deserializing part of this file: located by the error's span, with the
    /// field named by the innermost key whose value holds that span.
    pub fn error_from_toml(&self, err: &toml::de::Error) -> LocatedError {
        let span = err.span();
        let field = span.clone().and_then(|span| {
            DeTable::parse(&self.text)
                .ok()
                .and_then(|root| field_at_span(&root, &span))
        });
        self.error_with_span(field, span, err.message().trim().to_owned())
    }

    /// Deserializes the top-level table named `key` (an adapter's protocol section) into `T`,
    /// with every error located in this file.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<T, LocatedError> {
        let root = DeTable::parse(&self.text).map_err(|e| self.error_from_toml(&e))?;
        let Some(value) = root.get_ref().get(key) else {
            return Err(self.error_with_span(
                Some(key.to_owned()),
                None,
                format!("missing section `[{key}]`; a `{key}` profile describes its device's protocol mapping there"),
            ));
        };
        T::deserialize(toml::de::ValueDeserializer::from(value.clone()))
            .map_err(|e| self.error_from_toml(&e))
    }

    fn error_with_span(
        &self,
        field: Option<String>,
        span: Option<Range<usize>>,
        message: String,
    ) -> LocatedError {
        let located = span.map(|span| self.line_and_column(span.start));
        LocatedError {
            file: self.path.clone(),
            line: located.as_ref().map(|l| l.0),
            column: located.as_ref().map(|l| l.1),
            field,
            message,
            snippet: located.map(|l| l.2),
        }
    }

    /// 1-based line and column of a byte offset, and the text of that line.
    fn line_and_column(&self, offset: usize) -> (usize, usize, String) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self
            .text
            .get(line_start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        let line_text = self
            .text
            .get(line_start..)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_default()
            .to_owned();
        (line, column, line_text)
    }
}

/// The span of the value at a path like `parameters[2].range.min`, or of the deepest part of the
/// path that exists.
fn span_of_path(root: &Spanned<DeTable<'_>>, path: &str) -> Option<Range<usize>> {
    let mut current: Option<&Spanned<DeValue<'_>>> = None;
    let mut best: Option<Range<usize>> = None;
    for segment in parse_path(path) {
        let next = match (&segment, current) {
            (Segment::Key(key), None) => root.get_ref().get(key.as_str()),
            (Segment::Key(key), Some(value)) => {
                value.get_ref().as_table().and_then(|t| t.get(key.as_str()))
            }
            (Segment::Index(i), Some(value)) => value.get_ref().as_array().and_then(|a| a.get(*i)),
            (Segment::Index(_), None) => None,
        };
        match next {
            Some(value) => {
                best = Some(value.span());
                current = Some(value);
            }
            None => break,
        }
    }
    best
}

/// The path of the innermost value (or key) whose span holds `span`.
///
/// Header tables (`[poll]`) and arrays of tables do not span their bodies, so every value is
/// visited and the narrowest match wins.
fn field_at_span(root: &Spanned<DeTable<'_>>, span: &Range<usize>) -> Option<String> {
    fn visit(
        value: &Spanned<DeValue<'_>>,
        path: &str,
        span: &Range<usize>,
        best: &mut Option<(usize, String)>,
    ) {
        match value.get_ref() {
            DeValue::Table(table) => visit_table(table, path, span, best),
            DeValue::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let child_path = format!("{path}[{i}]");
                    consider(&child.span(), &child_path, span, best);
                    visit(child, &child_path, span, best);
                }
            }
            _ => {}
        }
    }
    fn visit_table(
        table: &DeTable<'_>,
        path: &str,
        span: &Range<usize>,
        best: &mut Option<(usize, String)>,
    ) {
        for (key, child) in table.iter() {
            let child_path = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            consider(&key.span(), &child_path, span, best);
            consider(&child.span(), &child_path, span, best);
            visit(child, &child_path, span, best);
        }
    }
    fn consider(
        candidate: &Range<usize>,
        path: &str,
        span: &Range<usize>,
        best: &mut Option<(usize, String)>,
    ) {
        if contains(candidate, span) {
            let width = candidate.end - candidate.start;
            if best.as_ref().is_none_or(|(w, _)| width <= *w) {
                *best = Some((width, path.to_owned()));
            }
        }
    }
    let mut best = None;
    visit_table(root.get_ref(), "", span, &mut best);
    best.map(|(_, path)| path)
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer != &(0..0)
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            segments.push(Segment::Key(rest[..open].to_owned()));
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    segments.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else {
            segments.push(Segment::Key(rest.to_owned()));
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "id = \"x\"\n[[parameters]]\nname = \"a\"\n[[parameters]]\nname = \"b\"\nrange = { min = 5, max = 1 }\n";

    #[test]
    fn read_should_refuse_a_file_over_the_limit_and_name_it() {
        let path = std::env::temp_dir().join(format!("iotmc-located-{}.toml", std::process::id()));
        std::fs::write(&path, "x".repeat(65)).unwrap();
        let err = TomlSource::read(&path, 64, "profile").unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(err.file, path);
        assert_eq!(
            err.message,
            "the file is 65 bytes; profiles are limited to 64 bytes"
        );
    }

    #[test]
    fn path_with_indices_should_split_into_keys_and_indices() {
        assert_eq!(
            parse_path("parameters[1].range.min"),
            vec![
                Segment::Key("parameters".into()),
                Segment::Index(1),
                Segment::Key("range".into()),
                Segment::Key("min".into()),
            ]
        );
    }

    #[test]
    fn error_at_field_should_point_at_its_line() {
        let source = TomlSource::new("p.toml", TEXT);
        let err = source.error_at("parameters[1].range", "min is above max");
        assert_eq!(err.line, Some(6));
        assert_eq!(err.field.as_deref(), Some("parameters[1].range"));
        assert_eq!(
            err.to_string(),
            "p.toml:6:9: field `parameters[1].range`: min is above max"
        );
    }

    #[test]
    fn missing_field_should_fall_back_to_its_deepest_existing_parent() {
        let source = TomlSource::new("p.toml", TEXT);
        let err = source.error_at("parameters[0].unit", "needs a unit");
        assert_eq!(err.line, Some(2), "{err}");
    }
}

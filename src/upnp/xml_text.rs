//! XML character data, written and checked the same way everywhere the face produces or reads
//! XML: SOAP responses and faults, descriptions, SCPDs, CMS lists, GENA property sets.

/// Whether `c` may appear in an XML 1.0 document at all.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Refuses text holding a character XML 1.0 cannot carry, naming it.
pub fn check_chars(text: &str) -> Result<(), String> {
    match text.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// Appends `text` escaped as XML character data. Characters XML 1.0 cannot carry at all (C0
/// controls other than tab, LF and CR) become U+FFFD; CR is written as a reference so it survives
/// the parser's line-end normalisation.
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// `text` escaped as XML character data (see [`escape_into`]).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(text, &mut out);
    out
}

/// Why a reference in untrusted XML text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// An entity other than the five XML predefines (its name, cut to 32 characters). We never
    /// declare or expand entities.
    Undeclared(String),
    /// A malformed or out-of-range character reference.
    BadCharacter(String),
}

/// The character a reference (`&amp;`, `&#233;`) in untrusted text stands for. Only the five
/// predefined entities and character references are accepted.
pub fn resolve_reference(
    reference: &quick_xml::events::BytesRef<'_>,
) -> Result<char, ReferenceError> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(ReferenceError::BadCharacter(
                "an invalid character reference".into(),
            )),
            Err(e) => Err(ReferenceError::BadCharacter(e.to_string())),
        };
    }
    match reference.as_ref() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(ReferenceError::Undeclared(other.chars().take(32).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_characters_xml_cannot_carry_should_never_reach_the_output() {
        assert_eq!(
            escape("a<b>&\"'\r\u{1}\u{FFFF}\tz"),
            "a&lt;b&gt;&amp;&quot;&apos;&#13;\u{FFFD}\u{FFFD}\tz"
        );
        assert!(is_xml_char('é') && is_xml_char('\n') && !is_xml_char('\u{0}'));
    }
}

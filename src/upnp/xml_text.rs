//! XML character data, written and checked the same way everywhere the face produces or reads
//! XML: SOAP responses and faults, descriptions, SCPDs, CMS lists, GENA property sets.

/// Whether `c` may appear in an XML 1.0 document at all.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
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

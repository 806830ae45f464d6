//! The NOTIFY body (UDA 2.0 §4.3.2): an `e:propertyset` with one `e:property` per changed
//! variable, and the set of changes it is built from.

use bytes::Bytes;

use crate::upnp::xml_text::escape_into;

/// The changes one NOTIFY carries: `(variable, value)` in order, each variable at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PropertySet {
    changes: Vec<(String, String)>,
}

impl PropertySet {
    /// Sets `name` to `value`: replaces the value if `name` is already in the set (keeping its
    /// place), appends it otherwise.
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.changes.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => value.clone_into(v),
            None => self.changes.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Folds `newer` into this set: each variable ends with its newest value.
    pub(crate) fn merge(&mut self, newer: &PropertySet) {
        for (name, value) in &newer.changes {
            self.set(name, value);
        }
    }

    /// Whether the set carries no change.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The value of `name` in this set.
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.changes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The variables in this set, in order.
    #[cfg(test)]
    pub(crate) fn names(&self) -> Vec<&str> {
        self.changes.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The NOTIFY body for this set. Variable names are checked when the service is registered;
    /// values are escaped here.
    pub(crate) fn to_body(&self) -> Bytes {
        let mut xml = String::with_capacity(
            96 + self
                .changes
                .iter()
                .map(|(n, v)| 2 * n.len() + v.len() + 32)
                .sum::<usize>(),
        );
        xml.push_str(r#"<?xml version="1.0"?>"#);
        xml.push_str(r#"<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">"#);
        for (name, value) in &self.changes {
            xml.push_str("<e:property><");
            xml.push_str(name);
            xml.push('>');
            escape_into(value, &mut xml);
            xml.push_str("</");
            xml.push_str(name);
            xml.push_str("></e:property>");
        }
        xml.push_str("</e:propertyset>");
        Bytes::from(xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(set: &PropertySet) -> String {
        String::from_utf8(set.to_body().to_vec()).unwrap()
    }

    #[test]
    fn propertyset_should_carry_one_property_per_variable_in_order() {
        let mut set = PropertySet::default();
        set.set("LifecycleState", "Active");
        set.set("Availability", "1");
        assert_eq!(
            body(&set),
            concat!(
                r#"<?xml version="1.0"?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">"#,
                "<e:property><LifecycleState>Active</LifecycleState></e:property>",
                "<e:property><Availability>1</Availability></e:property>",
                "</e:propertyset>"
            )
        );
    }

    #[test]
    fn propertyset_should_escape_markup_in_values() {
        let mut set = PropertySet::default();
        set.set("LastError", r#"<a href="x">&'</a>]]>"#);
        let xml = body(&set);
        assert!(
            xml.contains(
                "<LastError>&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;]]&gt;</LastError>"
            ),
            "{xml}"
        );
        let inner = xml
            .split_once("<LastError>")
            .and_then(|(_, rest)| rest.split_once("</LastError>"))
            .map(|(inner, _)| inner)
            .unwrap();
        let text = quick_xml::escape::unescape(inner).unwrap();
        assert_eq!(text, r#"<a href="x">&'</a>]]>"#);
    }

    #[test]
    fn propertyset_should_replace_characters_xml_cannot_carry() {
        let mut set = PropertySet::default();
        set.set("LastError", "a\u{0}b\u{1b}c\td\r\n");
        assert!(
            body(&set).contains("<LastError>a\u{FFFD}b\u{FFFD}c\td&#13;\n</LastError>"),
            "{}",
            body(&set)
        );
    }

    #[test]
    fn setting_a_variable_twice_should_keep_its_place_and_the_newest_value() {
        let mut set = PropertySet::default();
        set.set("A", "1");
        set.set("B", "1");
        let mut newer = PropertySet::default();
        newer.set("C", "3");
        newer.set("A", "2");
        set.merge(&newer);
        assert_eq!(set.names(), ["A", "B", "C"]);
        assert_eq!(set.get("A"), Some("2"));
    }
}

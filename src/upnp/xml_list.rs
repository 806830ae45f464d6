//! The small XML documents carried inside SOAP string arguments (ConfigurationManagement's
//! `ContentPathList` and `ParameterValueList`): a root element holding a list of items, each
//! either text or a record of text fields. Untrusted and bounded like the envelope itself.

use quick_xml::events::Event;
use quick_xml::reader::NsReader;

use crate::upnp::xml_text::{ReferenceError, check_chars, resolve_reference};

/// Most items one list may hold.
pub const MAX_ITEMS: usize = 1024;
/// Deepest nesting: root, item, field.
const MAX_DEPTH: usize = 3;

/// One item: its local element name, its own text, and its fields (local name, text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    /// Element name.
    pub name: String,
    /// Text directly inside the item.
    pub text: String,
    /// Child elements with their text.
    pub fields: Vec<(String, String)>,
}

impl Item {
    /// The text of field `name`, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `<root><item>text</item>...</root>` or `<root><item><f>text</f>...</item>...</root>`,
/// checking the root's local name. Errors are phrased for the operator.
pub fn parse(xml: &str, root: &str) -> Result<Vec<Item>, String> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = true;
    let mut depth = 0usize;
    let mut items: Vec<Item> = Vec::new();
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match event {
            Event::DocType(_) => return Err("DOCTYPE is refused".into()),
            Event::Start(start) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH} levels"));
                }
                let local = start.local_name().into_inner().to_owned();
                match depth {
                    1 if local == root && !seen_root => seen_root = true,
                    1 => return Err(format!("the root element must be {root}, not {local}")),
                    2 => {
                        if items.len() >= MAX_ITEMS {
                            return Err(format!("more than {MAX_ITEMS} items"));
                        }
                        items.push(Item {
                            name: local,
                            ..Item::default()
                        });
                    }
                    _ => {
                        if let Some(item) = items.last_mut() {
                            item.fields.push((local, String::new()));
                        }
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(text) => push_text(&mut items, depth, &text.xml10_content())?,
            Event::CData(data) => {
                let data: &str = data.as_ref();
                push_text(&mut items, depth, data)?;
            }
            Event::GeneralRef(reference) => {
                let c = resolve_reference(&reference).map_err(|e| match e {
                    ReferenceError::Undeclared(name) => {
                        format!("entity reference &{name}; is refused")
                    }
                    ReferenceError::BadCharacter(why) => format!("bad character reference: {why}"),
                })?;
                push_text(&mut items, depth, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::Empty(_) => return Err("unexpected empty element".into()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err(format!("no {root} element"));
    }
    if depth != 0 {
        return Err("not well-formed XML: elements are left open".into());
    }
    Ok(items)
}

fn push_text(items: &mut [Item], depth: usize, text: &str) -> Result<(), String> {
    check_chars(text)?;
    match (depth, items.last_mut()) {
        (2, Some(item)) => item.text.push_str(text),
        (3, Some(item)) => {
            if let Some((_, value)) = item.fields.last_mut() {
                value.push_str(text);
            }
        }
        _ if text.trim().is_empty() => {}
        _ => return Err("text outside an item".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_path_list_should_yield_its_paths() {
        let xml = r#"<?xml version="1.0"?><cms:ContentPathList xmlns:cms="urn:schemas-upnp-org:dm:cms">
            <ContentPath>/IoTMC/Parameters/setpoint</ContentPath><ContentPath>/UPnP/DM/&amp;</ContentPath>
            </cms:ContentPathList>"#;
        let items = parse(xml, "ContentPathList").unwrap();
        let paths: Vec<_> = items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(paths, ["/IoTMC/Parameters/setpoint", "/UPnP/DM/&"]);
    }

    #[test]
    fn a_parameter_value_list_should_yield_records() {
        let xml = r#"<cms:ParameterValueList xmlns:cms="urn:schemas-upnp-org:dm:cms"><Parameter><ParameterPath>/IoTMC/Parameters/setpoint</ParameterPath><Value>21.5</Value></Parameter><Parameter><ParameterPath>/x</ParameterPath><Value/></Parameter></cms:ParameterValueList>"#;
        let items = parse(xml, "ParameterValueList").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].field("ParameterPath"),
            Some("/IoTMC/Parameters/setpoint")
        );
        assert_eq!(items[0].field("Value"), Some("21.5"));
        assert_eq!(items[1].field("Value"), Some(""));
    }

    #[test]
    fn bad_lists_should_be_refused_with_a_reason() {
        for (xml, why) in [
            ("<Other/>", "root element"),
            ("<!DOCTYPE x><ContentPathList/>", "DOCTYPE"),
            (
                "<ContentPathList><a><b><c/></b></a></ContentPathList>",
                "nested",
            ),
            ("<ContentPathList>&ent;</ContentPathList>", "entity"),
            ("<ContentPathList>loose</ContentPathList>", "outside"),
            ("<ContentPathList><a>", "well-formed"),
            ("", "no ContentPathList"),
            (
                "<ContentPathList><p>&#1;</p></ContentPathList>",
                "not allowed",
            ),
        ] {
            let err = parse(xml, "ContentPathList").unwrap_err();
            assert!(err.contains(why), "{xml}: {err}");
        }
        let many = format!(
            "<ContentPathList>{}</ContentPathList>",
            "<ContentPath>/a</ContentPath>".repeat(MAX_ITEMS + 1)
        );
        assert!(
            parse(&many, "ContentPathList")
                .unwrap_err()
                .contains("more than")
        );
    }
}

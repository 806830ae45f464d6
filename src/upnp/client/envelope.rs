//! The client's side of SOAP 1.1 control (UDA 2.0 §3.2): the request envelope it POSTs and the
//! parsing of what comes back, a response envelope or a `UPnPError` fault. Pure: bytes in,
//! values out, no IO.
//!
//! Replies are untrusted. The parser refuses a DOCTYPE (so nothing is declared or expanded),
//! accepts only the five predefined entities and character references, bounds the nesting
//! depth and the number of out arguments, and never panics.

use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::upnp::soap::{ENCODING_STYLE, ENVELOPE_NS};
use crate::upnp::xml_text::{ReferenceError, check_chars, escape, resolve_reference};

/// Deepest element nesting accepted in a reply.
const MAX_DEPTH: usize = 16;
/// Most out arguments a reply may carry.
const MAX_OUT_ARGUMENTS: usize = 64;

/// What a control URL answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reply {
    /// `<u:{action}Response>`: the out arguments in order, values unescaped.
    Out(Vec<(String, String)>),
    /// A SOAP fault carrying a `UPnPError`.
    Fault {
        /// `errorCode`.
        code: u16,
        /// `errorDescription` (empty when the fault had none).
        description: String,
    },
}

/// Whether `name` can be written as an element name as it is (an action or argument name:
/// letters, digits, `_`, `-`, `.`, not starting with a digit, `-` or `.`).
pub(super) fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name.len() <= 128
}

/// The request envelope calling `action` of `service_type` with `args` (values escaped).
/// Names must pass [`is_plain_name`]; the caller checks.
pub(super) fn request(service_type: &str, action: &str, args: &[(&str, &str)]) -> String {
    let mut body =
        String::with_capacity(256 + args.iter().map(|(_, v)| v.len() + 32).sum::<usize>());
    let _ = write!(
        body,
        r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="{ENVELOPE_NS}" s:encodingStyle="{ENCODING_STYLE}"><s:Body><u:{action} xmlns:u="{}">"#,
        escape(service_type)
    );
    for (name, value) in args {
        let _ = write!(body, "<{name}>{}</{name}>", escape(value));
    }
    let _ = writeln!(body, "</u:{action}></s:Body></s:Envelope>");
    body
}

/// Where the parser is in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Document,
    Envelope,
    Header,
    Body,
    Response,
    Argument,
    Fault,
    Done,
}

/// Parses a reply to a call of `action`: its response envelope or its fault. The error says
/// what is wrong with the reply.
pub(super) fn parse_reply(body: &[u8], action: &str) -> Result<Reply, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the reply is not UTF-8".to_owned())?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = true;
    let expected = format!("{action}Response");

    let mut level = Level::Document;
    let mut depth = 0usize;
    // Depth at which the skipped s:Header, or the s:Fault, started.
    let mut section_depth = 0usize;
    let mut out: Vec<(String, String)> = Vec::new();
    let mut response_seen = false;
    // Inside a fault: the local name of the element whose text is being read, and its text.
    let mut fault_field: Option<(String, String)> = None;
    let mut code: Option<String> = None;
    let mut description: Option<String> = None;
    let mut fault_seen = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("the reply is not well-formed XML: {e}"))?;
        let in_envelope_ns = matches!(&ns, ResolveResult::Bound(n) if n.as_ref() == ENVELOPE_NS);
        match event {
            Event::DocType(_) => return Err("the reply holds a DOCTYPE, which is refused".into()),
            Event::Start(start) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "the reply nests elements deeper than {MAX_DEPTH} levels"
                    ));
                }
                let local = start.local_name().into_inner().to_owned();
                level = match level {
                    Level::Document if in_envelope_ns && local == "Envelope" => Level::Envelope,
                    Level::Document => {
                        return Err(format!(
                            "the reply is not a SOAP envelope (its root element is {})",
                            shown(&local)
                        ));
                    }
                    Level::Envelope if in_envelope_ns && local == "Header" => {
                        section_depth = depth;
                        Level::Header
                    }
                    Level::Envelope if in_envelope_ns && local == "Body" => Level::Body,
                    Level::Envelope => {
                        return Err("s:Envelope may only hold s:Header and s:Body".into());
                    }
                    Level::Header => Level::Header,
                    Level::Body if response_seen || fault_seen => {
                        return Err("s:Body holds more than one element".into());
                    }
                    Level::Body if in_envelope_ns && local == "Fault" => {
                        fault_seen = true;
                        section_depth = depth;
                        Level::Fault
                    }
                    Level::Body if local == expected => {
                        response_seen = true;
                        Level::Response
                    }
                    Level::Body => {
                        return Err(format!(
                            "the reply answers {} instead of {expected}",
                            shown(&local)
                        ));
                    }
                    Level::Response => {
                        if out.len() >= MAX_OUT_ARGUMENTS {
                            return Err(format!(
                                "the reply has more than {MAX_OUT_ARGUMENTS} out arguments"
                            ));
                        }
                        out.push((local, String::new()));
                        Level::Argument
                    }
                    Level::Argument => {
                        let name = out.last().map(|(n, _)| n.as_str()).unwrap_or_default();
                        return Err(format!(
                            "out argument {} holds XML elements instead of text",
                            shown(name)
                        ));
                    }
                    Level::Fault => {
                        if local == "errorCode" || local == "errorDescription" {
                            fault_field = Some((local, String::new()));
                        }
                        Level::Fault
                    }
                    Level::Done => return Err("something follows s:Body".into()),
                };
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                level = match level {
                    Level::Header if depth < section_depth => Level::Envelope,
                    Level::Fault if depth < section_depth => Level::Body,
                    Level::Fault => {
                        if let Some((name, value)) = fault_field.take() {
                            let slot = if name == "errorCode" {
                                &mut code
                            } else {
                                &mut description
                            };
                            slot.get_or_insert(value);
                        }
                        Level::Fault
                    }
                    Level::Argument => Level::Response,
                    Level::Response => Level::Body,
                    Level::Body | Level::Envelope | Level::Done => Level::Done,
                    other => other,
                };
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                push_text(level, &mut out, &mut fault_field, &content)?;
            }
            Event::CData(data) => {
                let data: &str = data.as_ref();
                push_text(level, &mut out, &mut fault_field, data)?;
            }
            Event::GeneralRef(reference) => {
                let c = resolve_reference(&reference).map_err(|e| match e {
                    ReferenceError::Undeclared(name) => {
                        format!("the reply uses the undeclared entity &{name};")
                    }
                    ReferenceError::BadCharacter(why) => {
                        format!("the reply has a bad character reference: {why}")
                    }
                })?;
                push_text(
                    level,
                    &mut out,
                    &mut fault_field,
                    c.encode_utf8(&mut [0; 4]),
                )?;
            }
            Event::Empty(_) => return Err("the reply is not well-formed XML".into()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if level != Level::Done {
        return Err("the reply's envelope is incomplete".into());
    }
    if fault_seen {
        let Some(code) = code else {
            return Err("the reply is a SOAP fault without a UPnPError errorCode".into());
        };
        let code = code.trim().parse::<u16>().map_err(|_| {
            format!(
                "the reply's UPnPError errorCode `{}` is not a number",
                shown(code.trim())
            )
        })?;
        return Ok(Reply::Fault {
            code,
            description: description.unwrap_or_default(),
        });
    }
    if !response_seen {
        return Err("the reply's s:Body is empty".into());
    }
    Ok(Reply::Out(out))
}

fn push_text(
    level: Level,
    out: &mut [(String, String)],
    fault_field: &mut Option<(String, String)>,
    text: &str,
) -> Result<(), String> {
    check_chars(text).map_err(|why| format!("the reply holds text XML forbids: {why}"))?;
    match level {
        Level::Argument => {
            if let Some((_, value)) = out.last_mut() {
                value.push_str(text);
            }
        }
        Level::Fault => {
            if let Some((_, value)) = fault_field.as_mut() {
                value.push_str(text);
            }
        }
        Level::Header => {}
        _ if text.trim().is_empty() => {}
        _ => return Err("the reply holds text outside an out argument".into()),
    }
    Ok(())
}

/// A name from the reply, cut for an error message.
fn shown(name: &str) -> String {
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upnp::soap::{UpnpError, fault, parse_request, response};

    const SERVICE: &str = "urn:iotmc-gateway-local:service:ManagementController:1";

    #[test]
    fn a_request_should_be_what_the_gateway_parses_with_values_intact() {
        let body = request(
            SERVICE,
            "ApproveEnrollment",
            &[
                ("DeviceUDN", "uuid:0a1b"),
                ("Group", "<lights> & \"fans\"\r"),
            ],
        );
        let call =
            parse_request(body.as_bytes(), &format!("\"{SERVICE}#ApproveEnrollment\"")).unwrap();
        assert_eq!(call.service_type, SERVICE);
        assert_eq!(call.action, "ApproveEnrollment");
        assert_eq!(
            call.arguments,
            [
                ("DeviceUDN".to_owned(), "uuid:0a1b".to_owned()),
                ("Group".to_owned(), "<lights> & \"fans\"\r".to_owned()),
            ]
        );
    }

    #[test]
    fn a_response_should_yield_its_out_arguments_in_order() {
        let body = response(
            SERVICE,
            "GetInventory",
            &[
                ("Inventory", "<Inventory/>".into()),
                ("Second", "b&c".into()),
            ],
        );
        assert_eq!(
            parse_reply(body.as_bytes(), "GetInventory").unwrap(),
            Reply::Out(vec![
                ("Inventory".into(), "<Inventory/>".into()),
                ("Second".into(), "b&c".into()),
            ])
        );
        let empty = response(SERVICE, "RejectEnrollment", &[]);
        assert_eq!(
            parse_reply(empty.as_bytes(), "RejectEnrollment").unwrap(),
            Reply::Out(Vec::new())
        );
    }

    #[test]
    fn a_fault_should_yield_the_upnp_error_code_and_description() {
        let body = fault(&UpnpError::not_authorized("needs <an> operator & HTTPS"));
        assert_eq!(
            parse_reply(body.as_bytes(), "SetValues").unwrap(),
            Reply::Fault {
                code: 606,
                description: "needs <an> operator & HTTPS".into()
            }
        );
    }

    #[test]
    fn a_fault_with_a_prefixed_upnp_error_and_a_header_should_still_parse() {
        let body = format!(
            r#"<?xml version="1.0"?><S:Envelope xmlns:S="{ENVELOPE_NS}"><S:Header><x><y>ignored</y></x></S:Header><S:Body><S:Fault><faultcode>S:Client</faultcode><faultstring>UPnPError</faultstring><detail><e:UPnPError xmlns:e="urn:schemas-upnp-org:control-1-0"><e:errorCode> 402 </e:errorCode></e:UPnPError></detail></S:Fault></S:Body></S:Envelope>"#
        );
        assert_eq!(
            parse_reply(body.as_bytes(), "X").unwrap(),
            Reply::Fault {
                code: 402,
                description: String::new()
            }
        );
    }

    #[test]
    fn malformed_replies_should_each_be_refused_with_a_reason() {
        let envelope = |inner: &str| {
            format!(r#"<s:Envelope xmlns:s="{ENVELOPE_NS}"><s:Body>{inner}</s:Body></s:Envelope>"#)
        };
        let cases = [
            ("<html>busy</html>".to_owned(), "not a SOAP envelope"),
            (
                envelope("<u:OtherResponse xmlns:u=\"x\"/>"),
                "instead of GetInventoryResponse",
            ),
            (
                envelope(
                    "<u:GetInventoryResponse xmlns:u=\"x\"><a><b/></a></u:GetInventoryResponse>",
                ),
                "holds XML elements",
            ),
            (
                envelope(
                    "<u:GetInventoryResponse xmlns:u=\"x\"/><u:GetInventoryResponse xmlns:u=\"x\"/>",
                ),
                "more than one",
            ),
            (envelope(""), "empty"),
            (
                format!(r#"<s:Envelope xmlns:s="{ENVELOPE_NS}"><s:Body>"#),
                "incomplete",
            ),
            (
                envelope(
                    "<u:GetInventoryResponse xmlns:u=\"x\"><a>&xxe;</a></u:GetInventoryResponse>",
                ),
                "undeclared entity &xxe;",
            ),
            (
                format!(r#"<!DOCTYPE x [<!ENTITY a "b">]><s:Envelope xmlns:s="{ENVELOPE_NS}"/>"#),
                "DOCTYPE",
            ),
            (
                envelope(r#"<s:Fault><faultstring>oops</faultstring></s:Fault>"#),
                "without a UPnPError",
            ),
            (
                envelope(
                    r#"<s:Fault><detail><UPnPError><errorCode>x1</errorCode></UPnPError></detail></s:Fault>"#,
                ),
                "not a number",
            ),
            (
                envelope("<u:GetInventoryResponse xmlns:u=\"x\">loose</u:GetInventoryResponse>"),
                "outside an out argument",
            ),
            (
                envelope(
                    "<u:GetInventoryResponse xmlns:u=\"x\"><a>&#1;</a></u:GetInventoryResponse>",
                ),
                "",
            ),
            (format!("{}{}", "<a>".repeat(40), "</a>".repeat(40)), ""),
        ];
        for (body, why) in cases {
            let err = parse_reply(body.as_bytes(), "GetInventory").unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
        assert!(
            parse_reply(&[0xff, 0xfe], "A")
                .unwrap_err()
                .contains("UTF-8")
        );
        let many: String = (0..=MAX_OUT_ARGUMENTS)
            .map(|i| format!("<a{i}/>"))
            .collect();
        let body = envelope(&format!(
            "<u:GetInventoryResponse xmlns:u=\"x\">{many}</u:GetInventoryResponse>"
        ));
        assert!(
            parse_reply(body.as_bytes(), "GetInventory")
                .unwrap_err()
                .contains("more than")
        );
    }

    #[test]
    fn every_prefix_of_a_reply_should_parse_or_fail_without_panicking() {
        let body = fault(&UpnpError::new(704, "value out of range"))
            + &response(SERVICE, "GetInventory", &[("Inventory", "<a>é</a>".into())]);
        for end in 0..body.len() {
            if body.is_char_boundary(end) {
                let _ = parse_reply(&body.as_bytes()[..end], "GetInventory");
            }
        }
    }

    #[test]
    fn only_plain_names_should_be_written_as_elements() {
        assert!(is_plain_name("DeviceUDN") && is_plain_name("A_ARG.x-1"));
        for bad in ["", "1a", "a b", "a>b", "-a", "a:b"] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }
}

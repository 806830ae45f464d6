//! SOAP 1.1 control messages (UDA 2.0 §3): the request envelope a control point POSTs, the
//! response envelope, and the `UPnPError` fault.
//!
//! The parser is namespace-aware (quick-xml's `NsReader`), takes untrusted bytes and is bounded:
//! no DOCTYPE (so no entity declarations and nothing to expand), only the five predefined entity
//! references and character references, a nesting depth limit, an argument count limit. It never
//! panics, whatever the input; `tests/fuzz` hammers it.

use std::fmt::Write as _;

use crate::upnp::xml_text::{ReferenceError, check_chars, escape, resolve_reference};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The SOAP envelope namespace.
pub const ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP encoding style UPnP requires.
pub const ENCODING_STYLE: &str = "http://schemas.xmlsoap.org/soap/encoding/";
/// The namespace of the `UPnPError` fault detail.
pub const CONTROL_NS: &str = "urn:schemas-upnp-org:control-1-0";

/// Largest request body accepted (answered with 413 above it).
pub const MAX_BODY: usize = 64 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 16;
/// Most arguments one action call may carry.
pub const MAX_ARGUMENTS: usize = 64;

/// A parsed action call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionCall {
    /// The service type the action element is qualified with.
    pub service_type: String,
    /// The action name.
    pub action: String,
    /// The arguments in the order they came, values unescaped.
    pub arguments: Vec<(String, String)>,
}

impl ActionCall {
    /// The value of argument `name`, if present.
    pub fn argument(&self, name: &str) -> Option<&str> {
        self.arguments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A UPnP error, answered as a SOAP fault with HTTP 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("UPnPError {code}: {description}")]
pub struct UpnpError {
    /// The UPnP error code (401, 402, 501, 600–606, or a service's 7xx).
    pub code: u16,
    /// What was wrong and what to do, for the operator.
    pub description: String,
}

impl UpnpError {
    /// An error with `code` and `description`.
    pub fn new(code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// 401 Invalid Action.
    pub fn invalid_action(description: impl Into<String>) -> Self {
        Self::new(401, description)
    }

    /// 402 Invalid Args.
    pub fn invalid_args(description: impl Into<String>) -> Self {
        Self::new(402, description)
    }

    /// 501 Action Failed.
    pub fn action_failed(description: impl Into<String>) -> Self {
        Self::new(501, description)
    }

    /// 600 Argument Value Invalid.
    pub fn argument_value_invalid(description: impl Into<String>) -> Self {
        Self::new(600, description)
    }

    /// 601 Argument Value Out of Range.
    pub fn out_of_range(description: impl Into<String>) -> Self {
        Self::new(601, description)
    }

    /// 602 Optional Action Not Implemented.
    pub fn not_implemented(description: impl Into<String>) -> Self {
        Self::new(602, description)
    }

    /// 605 String Argument Too Long.
    pub fn string_too_long(description: impl Into<String>) -> Self {
        Self::new(605, description)
    }

    /// 606 Action not authorized.
    pub fn not_authorized(description: impl Into<String>) -> Self {
        Self::new(606, description)
    }
}

/// Why a request envelope was refused. Each becomes a 402 Invalid Args or 401 Invalid Action
/// fault whose description is this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// The body is not UTF-8.
    #[error("the request body is not UTF-8")]
    NotUtf8,
    /// The XML is malformed.
    #[error("the request body is not well-formed XML: {0}")]
    Malformed(String),
    /// A DOCTYPE was present.
    #[error("DOCTYPE and entity declarations are refused in SOAP requests")]
    DocType,
    /// An entity reference other than the predefined five.
    #[error(
        "entity reference `&{0};` is refused: only &lt; &gt; &amp; &apos; &quot; and character references are accepted"
    )]
    Entity(String),
    /// Elements nested too deeply.
    #[error("elements are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Too many arguments.
    #[error("more than {MAX_ARGUMENTS} arguments")]
    TooManyArguments,
    /// The envelope structure is wrong.
    #[error("not a SOAP envelope: {0}")]
    NotEnvelope(&'static str),
    /// An argument holds elements instead of text.
    #[error(
        "argument `{0}` holds XML elements; argument values must be text (escape embedded XML)"
    )]
    ArgumentNotText(String),
    /// The SOAPACTION header is missing or malformed.
    #[error("the SOAPACTION header is missing or not `\"<service type>#<action>\"`")]
    BadSoapAction,
    /// The SOAPACTION header and the body disagree.
    #[error("the SOAPACTION header names `{header}` but the body calls `{body}`")]
    ActionMismatch {
        /// `service#action` from the header.
        header: String,
        /// `service#action` from the body.
        body: String,
    },
}

/// Splits a SOAPACTION header value (`"urn:...:service:X:1#Action"`, quotes optional) into
/// service type and action.
pub fn parse_soap_action(value: &str) -> Result<(String, String), SoapError> {
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let (service, action) = value.split_once('#').ok_or(SoapError::BadSoapAction)?;
    if service.is_empty() || action.is_empty() || value.len() > 512 {
        return Err(SoapError::BadSoapAction);
    }
    Ok((service.to_owned(), action.to_owned()))
}

/// Parses a request envelope and checks it against the SOAPACTION header value.
pub fn parse_request(body: &[u8], soap_action: &str) -> Result<ActionCall, SoapError> {
    let (header_service, header_action) = parse_soap_action(soap_action)?;
    let call = parse_envelope(body)?;
    if call.service_type != header_service || call.action != header_action {
        return Err(SoapError::ActionMismatch {
            header: format!("{header_service}#{header_action}"),
            body: format!("{}#{}", call.service_type, call.action),
        });
    }
    Ok(call)
}

/// Where the parser is in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Document,
    Envelope,
    Header,
    Body,
    Action,
    Argument,
    Done,
}

/// Parses a request envelope (without the SOAPACTION check).
pub fn parse_envelope(body: &[u8]) -> Result<ActionCall, SoapError> {
    if body.len() > MAX_BODY {
        return Err(SoapError::Malformed(format!(
            "the body exceeds {MAX_BODY} bytes"
        )));
    }
    let text = std::str::from_utf8(body).map_err(|_| SoapError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = true;

    let mut level = Level::Document;
    let mut depth = 0usize;
    let mut header_depth = 0usize;
    let mut call: Option<ActionCall> = None;
    let mut argument: Option<(String, String)> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| SoapError::Malformed(e.to_string()))?;
        let in_envelope_ns = matches!(&ns, ResolveResult::Bound(n) if n.as_ref() == ENVELOPE_NS);
        match event {
            Event::DocType(_) => return Err(SoapError::DocType),
            Event::Start(start) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(SoapError::TooDeep);
                }
                let local = start.local_name().into_inner().to_owned();
                level = match level {
                    Level::Document if in_envelope_ns && local == "Envelope" => Level::Envelope,
                    Level::Document => {
                        return Err(SoapError::NotEnvelope(
                            "the root element must be s:Envelope in the SOAP envelope namespace",
                        ));
                    }
                    Level::Envelope if in_envelope_ns && local == "Header" => {
                        header_depth = depth;
                        Level::Header
                    }
                    Level::Envelope if in_envelope_ns && local == "Body" => Level::Body,
                    Level::Envelope => {
                        return Err(SoapError::NotEnvelope(
                            "s:Envelope may only hold s:Header and s:Body",
                        ));
                    }
                    Level::Header => Level::Header,
                    Level::Body => {
                        let ResolveResult::Bound(service) = ns else {
                            return Err(SoapError::NotEnvelope(
                                "the action element must be qualified with the service type namespace",
                            ));
                        };
                        if call.is_some() {
                            return Err(SoapError::NotEnvelope(
                                "s:Body must hold exactly one action element",
                            ));
                        }
                        let service_type = AsRef::<str>::as_ref(&service).to_owned();
                        call = Some(ActionCall {
                            service_type,
                            action: local,
                            arguments: Vec::new(),
                        });
                        Level::Action
                    }
                    Level::Action => {
                        argument = Some((local, String::new()));
                        Level::Argument
                    }
                    Level::Argument => {
                        let name = argument.take().map(|(n, _)| n).unwrap_or_default();
                        return Err(SoapError::ArgumentNotText(name));
                    }
                    Level::Done => {
                        return Err(SoapError::NotEnvelope(
                            "nothing may follow s:Body inside s:Envelope",
                        ));
                    }
                };
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                level = match level {
                    Level::Header if depth < header_depth => Level::Envelope,
                    Level::Header => Level::Header,
                    Level::Argument => {
                        let Some(arg) = argument.take() else {
                            return Err(SoapError::NotEnvelope("unbalanced argument"));
                        };
                        let Some(c) = call.as_mut() else {
                            return Err(SoapError::NotEnvelope("argument outside an action"));
                        };
                        if c.arguments.len() >= MAX_ARGUMENTS {
                            return Err(SoapError::TooManyArguments);
                        }
                        c.arguments.push(arg);
                        Level::Action
                    }
                    Level::Action => Level::Body,
                    Level::Body => Level::Done,
                    Level::Done | Level::Envelope => Level::Done,
                    Level::Document => Level::Document,
                };
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                if let Some((_, value)) = argument.as_mut() {
                    push_bounded(value, &content)?;
                } else if !content.trim().is_empty() && level != Level::Header {
                    return Err(SoapError::NotEnvelope("text outside an argument element"));
                }
            }
            Event::CData(data) => {
                let Some((_, value)) = argument.as_mut() else {
                    return Err(SoapError::NotEnvelope("CDATA outside an argument element"));
                };
                let data: &str = data.as_ref();
                push_bounded(value, data)?;
            }
            Event::GeneralRef(reference) => {
                let c = resolve_reference(&reference).map_err(|e| match e {
                    ReferenceError::Undeclared(name) => SoapError::Entity(name),
                    ReferenceError::BadCharacter(why) => SoapError::Malformed(why),
                })?;
                if let Some((_, value)) = argument.as_mut() {
                    push_bounded(value, c.encode_utf8(&mut [0; 4]))?;
                } else if level != Level::Header {
                    return Err(SoapError::NotEnvelope("text outside an argument element"));
                }
            }
            Event::Empty(_) => {
                // expand_empty_elements turns these into Start + End.
                return Err(SoapError::Malformed("unexpected empty element".into()));
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    match (level, call) {
        (Level::Done, Some(call)) => Ok(call),
        (Level::Done, None) => Err(SoapError::NotEnvelope("s:Body holds no action element")),
        _ => Err(SoapError::NotEnvelope("the envelope is incomplete")),
    }
}

fn push_bounded(value: &mut String, more: &str) -> Result<(), SoapError> {
    check_chars(more).map_err(SoapError::Malformed)?;
    if value.len() + more.len() > MAX_BODY {
        return Err(SoapError::Malformed("an argument is too long".into()));
    }
    value.push_str(more);
    Ok(())
}

/// The response envelope for a successful call: `<u:{action}Response>` with the out arguments
/// in order, escaped.
pub fn response(service_type: &str, action: &str, out: &[(&str, String)]) -> String {
    let mut body = String::with_capacity(256 + out.iter().map(|(_, v)| v.len()).sum::<usize>());
    let _ = write!(
        body,
        r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="{ENVELOPE_NS}" s:encodingStyle="{ENCODING_STYLE}"><s:Body><u:{action}Response xmlns:u="{}">"#,
        escape(service_type)
    );
    for (name, value) in out {
        let _ = write!(body, "<{name}>{}</{name}>", escape(value.as_str()));
    }
    let _ = writeln!(body, "</u:{action}Response></s:Body></s:Envelope>");
    body
}

/// The fault envelope for `error` (sent with HTTP 500).
pub fn fault(error: &UpnpError) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="{ENVELOPE_NS}" s:encodingStyle="{ENCODING_STYLE}"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="{CONTROL_NS}"><errorCode>{}</errorCode><errorDescription>{}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>
"#,
        error.code,
        escape(error.description.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "urn:schemas-upnp-org:service:ConfigurationManagement:2";

    fn envelope(inner: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{inner}</s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn a_call_should_yield_service_action_and_unescaped_arguments() {
        let body = envelope(&format!(
            r#"<u:GetValues xmlns:u="{SERVICE}"><Parameters>&lt;cms:ContentPathList&gt;a&amp;b&#233;</Parameters><Empty/></u:GetValues>"#
        ));
        let call = parse_request(body.as_bytes(), &format!("\"{SERVICE}#GetValues\"")).unwrap();
        assert_eq!(call.service_type, SERVICE);
        assert_eq!(call.action, "GetValues");
        assert_eq!(
            call.argument("Parameters"),
            Some("<cms:ContentPathList>a&bé")
        );
        assert_eq!(call.argument("Empty"), Some(""));
    }

    #[test]
    fn namespace_prefixes_should_not_matter_only_namespaces() {
        let body = format!(
            r#"<E:Envelope xmlns:E="{ENVELOPE_NS}"><E:Header><x>ignored</x></E:Header><E:Body><Reboot xmlns="{SERVICE}"/></E:Body></E:Envelope>"#
        );
        let call = parse_envelope(body.as_bytes()).unwrap();
        assert_eq!(call.action, "Reboot");
        assert_eq!(call.service_type, SERVICE);
    }

    #[test]
    fn a_soapaction_that_disagrees_with_the_body_should_be_refused() {
        let body = envelope(&format!(r#"<u:Reboot xmlns:u="{SERVICE}"/>"#));
        let err =
            parse_request(body.as_bytes(), &format!("\"{SERVICE}#BaselineReset\"")).unwrap_err();
        assert!(matches!(err, SoapError::ActionMismatch { .. }), "{err}");
        assert!(err.to_string().contains("BaselineReset"));
        assert_eq!(
            parse_request(body.as_bytes(), "nonsense").unwrap_err(),
            SoapError::BadSoapAction
        );
    }

    #[test]
    fn a_doctype_should_be_refused_without_expanding_anything() {
        let body = format!(
            r#"<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><s:Envelope xmlns:s="{ENVELOPE_NS}"><s:Body><u:A xmlns:u="{SERVICE}"><x>&lol2;</x></u:A></s:Body></s:Envelope>"#
        );
        assert_eq!(
            parse_envelope(body.as_bytes()).unwrap_err(),
            SoapError::DocType
        );
    }

    #[test]
    fn an_undeclared_entity_should_be_refused_by_name() {
        let body = envelope(&format!(r#"<u:A xmlns:u="{SERVICE}"><x>&xxe;</x></u:A>"#));
        assert_eq!(
            parse_envelope(body.as_bytes()).unwrap_err(),
            SoapError::Entity("xxe".into())
        );
    }

    #[test]
    fn deep_nesting_should_be_refused() {
        let inner = "<a>".repeat(40) + &"</a>".repeat(40);
        let body = envelope(&format!(r#"<u:A xmlns:u="{SERVICE}">{inner}</u:A>"#));
        let err = parse_envelope(body.as_bytes()).unwrap_err();
        assert!(
            matches!(err, SoapError::TooDeep | SoapError::ArgumentNotText(_)),
            "{err}"
        );
        let deep_header = format!(
            r#"<s:Envelope xmlns:s="{ENVELOPE_NS}"><s:Header>{}{}</s:Header></s:Envelope>"#,
            "<h>".repeat(40),
            "</h>".repeat(40)
        );
        assert_eq!(
            parse_envelope(deep_header.as_bytes()).unwrap_err(),
            SoapError::TooDeep
        );
    }

    #[test]
    fn structural_mistakes_should_each_have_a_clear_error() {
        let cases = [
            ("<x/>".to_owned(), "root element"),
            (envelope(r#"<A/>"#), "qualified"),
            (
                envelope(&format!(
                    r#"<u:A xmlns:u="{SERVICE}"/><u:B xmlns:u="{SERVICE}"/>"#
                )),
                "exactly one",
            ),
            (envelope(""), "no action"),
            (
                format!(r#"<s:Envelope xmlns:s="{ENVELOPE_NS}"><s:Body>"#),
                "incomplete",
            ),
            (
                format!(r#"<s:Envelope xmlns:s="{ENVELOPE_NS}"></s:Body>"#),
                "well-formed",
            ),
            (
                envelope(&format!(r#"<u:A xmlns:u="{SERVICE}"><x><y/></x></u:A>"#)),
                "holds XML elements",
            ),
            (
                envelope(&format!(r#"<u:A xmlns:u="{SERVICE}">loose</u:A>"#)),
                "text outside",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_envelope(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
        assert_eq!(
            parse_envelope(&[0xff, 0xfe]).unwrap_err(),
            SoapError::NotUtf8
        );
    }

    #[test]
    fn characters_xml_cannot_carry_should_be_refused_raw_or_as_references() {
        for arg in ["&#1;", "a\u{1}b", "&#xFFFF;"] {
            let body = envelope(&format!(r#"<u:A xmlns:u="{SERVICE}"><x>{arg}</x></u:A>"#));
            let err = parse_envelope(body.as_bytes()).unwrap_err().to_string();
            assert!(
                err.contains("not allowed in XML") || err.contains("well-formed"),
                "{arg}: {err}"
            );
        }
    }

    #[test]
    fn too_many_arguments_should_be_refused() {
        let args: String = (0..=MAX_ARGUMENTS)
            .map(|i| format!("<a{i}>1</a{i}>"))
            .collect();
        let body = envelope(&format!(r#"<u:A xmlns:u="{SERVICE}">{args}</u:A>"#));
        assert_eq!(
            parse_envelope(body.as_bytes()).unwrap_err(),
            SoapError::TooManyArguments
        );
    }

    #[test]
    fn responses_and_faults_should_escape_and_round_trip() {
        let out = response(
            SERVICE,
            "GetValues",
            &[("ParameterValueList", "<a>&\"".into())],
        );
        let call = parse_envelope(out.as_bytes()).unwrap();
        assert_eq!(call.action, "GetValuesResponse");
        assert_eq!(call.argument("ParameterValueList"), Some("<a>&\""));

        let text = fault(&UpnpError::invalid_args("value <5> & more"));
        assert!(text.contains("<errorCode>402</errorCode>"));
        assert!(text.contains("value &lt;5&gt; &amp; more"));
    }
}

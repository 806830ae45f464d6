//! The located checks of `[mqtt.generic]`: what serde cannot check.

use iotmc_adapter::{LocatedError, Profile};
use serde_json::Value as Json;

use super::{
    CHUNK_SIZES, FIRMWARE_CHUNKED, GenericSection, LOGS_REQUEST, LOGS_TOPIC, MAX_PROOF_TIMEOUT,
    ProofMap, RequestMap, expand,
};
use crate::codec::generic::place;
use crate::codec::json::check_pointer;
use crate::topic;

/// Checks what serde cannot; every error located at its field.
pub(crate) fn check(profile: &Profile, section: &GenericSection) -> Vec<LocatedError> {
    let source = profile.source();
    let mut errors = Vec::new();
    let mut fail = |field: String, message: String| {
        errors.push(source.error_at(&format!("mqtt.generic.{field}"), message));
    };

    check_ptr(&mut fail, "error_pointer".into(), &section.error_pointer);
    if section.error_pointer.is_empty() {
        fail(
            "error_pointer".into(),
            "the error pointer cannot be the whole answer; use e.g. `/error`".into(),
        );
    }
    if let Some(a) = &section.availability {
        check_topic(&mut fail, "availability.topic".into(), &a.topic);
        if let Some(p) = &a.pointer {
            check_ptr(&mut fail, "availability.pointer".into(), p);
        }
        if a.online == a.offline {
            fail(
                "availability.offline".into(),
                format!("the online and offline payloads are both {:?}", a.online),
            );
        }
    }
    if let Some(i) = &section.identity {
        match (&i.request, &i.topic) {
            (Some(r), None) => check_request(&mut fail, "identity.request", r),
            (None, Some(t)) => check_topic(&mut fail, "identity.topic".into(), t),
            _ => fail(
                "identity".into(),
                "give either `request` (ask the device) or `topic` (a retained info topic), not both or neither".into(),
            ),
        }
        let pointers = [
            ("manufacturer", i.manufacturer.as_deref()),
            ("model", i.model.as_deref()),
            ("serial", Some(i.serial.as_str())),
            ("firmware_version", Some(i.firmware_version.as_str())),
            ("hardware_version", Some(i.hardware_version.as_str())),
        ];
        for (field, pointer) in pointers {
            if let Some(p) = pointer {
                check_ptr(&mut fail, format!("identity.{field}"), p);
            }
        }
        if let Some(proof) = &i.proof {
            check_proof(&mut fail, proof);
        }
    }

    for p in &profile.parameters {
        if !section.parameters.contains_key(&p.name) {
            fail(
                "parameters".into(),
                format!(
                    "parameter `{}` has no mapping; add `[mqtt.generic.parameters.{}]`",
                    p.name, p.name
                ),
            );
        }
    }
    for (name, map) in &section.parameters {
        let at = |f: &str| format!("parameters.{name}.{f}");
        let Some(parameter) = profile.parameter(name) else {
            fail(
                format!("parameters.{name}"),
                format!(
                    "the profile declares no parameter `{name}`; declare it under [[parameters]] or remove this mapping"
                ),
            );
            continue;
        };
        if let Some(p) = &map.pointer {
            check_ptr(&mut fail, at("pointer"), p);
        }
        if let Some(t) = &map.state_topic {
            check_topic(&mut fail, at("state_topic"), t);
            if map.pointer.is_none() {
                fail(
                    at("pointer"),
                    "a pushed value needs the `pointer` of the value in the state JSON (\"\" for the whole payload)".into(),
                );
            }
        }
        if parameter.access.can_read() {
            if map.state_topic.is_none() && map.read.is_none() {
                fail(
                    format!("parameters.{name}"),
                    format!(
                        "`{name}` is readable: give `state_topic` (pushed) and/or `read` (by request)"
                    ),
                );
            }
        } else {
            for (field, present) in [
                ("state_topic", map.state_topic.is_some()),
                ("read", map.read.is_some()),
            ] {
                if present {
                    fail(
                        at(field),
                        format!("`{name}` is write-only; remove `{field}` or make it read-write"),
                    );
                }
            }
        }
        if let Some(r) = &map.read {
            check_request(&mut fail, &at("read"), r);
            if map.read_pointer().is_none() {
                fail(
                    at("read.pointer"),
                    "say where the value is in the answer: `pointer` here or on the parameter"
                        .into(),
                );
            }
        }
        match (&map.write, parameter.access.can_write()) {
            (Some(w), true) => {
                check_request(&mut fail, &at("write"), w);
                match map.write_pointer() {
                    None => fail(
                        at("write.pointer"),
                        "say where the value goes in the payload: `pointer` here or on the parameter".into(),
                    ),
                    Some(p) if check_pointer(p).is_ok() => {
                        if let Err(why) = place(&mut w.payload.clone(), p, Json::Null) {
                            fail(at("write.pointer"), why);
                        }
                    }
                    Some(_) => {}
                }
            }
            (None, true) => fail(
                format!("parameters.{name}"),
                format!("`{name}` is writable: give `write` (topic, payload, pointer)"),
            ),
            (Some(_), false) => fail(
                at("write"),
                format!(
                    "`{name}` is read-only; remove `write` or declare `access = \"read-write\"`"
                ),
            ),
            (None, false) => {}
        }
    }

    for a in &profile.actions {
        if !section.actions.contains_key(&a.name) {
            fail(
                "actions".into(),
                format!(
                    "action `{}` has no mapping; add `[mqtt.generic.actions.{}]`",
                    a.name, a.name
                ),
            );
        }
    }
    for (name, map) in &section.actions {
        let at = |f: &str| format!("actions.{name}.{f}");
        let Some(action) = profile.action(name) else {
            fail(
                format!("actions.{name}"),
                format!(
                    "the profile declares no action `{name}`; declare it under [[actions]] or remove this mapping"
                ),
            );
            continue;
        };
        check_topic(&mut fail, at("topic"), &map.topic);
        for arg in &action.arguments {
            if !map.arguments.contains_key(&arg.name) {
                fail(
                    at("arguments"),
                    format!(
                        "argument `{}` needs the JSON pointer where it goes in the payload",
                        arg.name
                    ),
                );
            }
        }
        let mut payload = map.payload.clone();
        for (arg, pointer) in &map.arguments {
            if !action.arguments.iter().any(|a| &a.name == arg) {
                fail(
                    format!("actions.{name}.arguments.{arg}"),
                    format!("action `{name}` declares no argument `{arg}`"),
                );
            } else if let Err(why) = check_pointer(pointer) {
                fail(format!("actions.{name}.arguments.{arg}"), why);
            } else if let Err(why) = place(&mut payload, pointer, Json::Null) {
                fail(format!("actions.{name}.arguments.{arg}"), why);
            }
        }
        for (out, pointer) in &map.output {
            check_ptr(&mut fail, format!("actions.{name}.output.{out}"), pointer);
        }
        if map.restarts && section.availability.is_none() {
            fail(
                at("restarts"),
                "an action that restarts the device needs `availability`, to see it come back"
                    .into(),
            );
        }
    }

    check_firmware(profile, section, &mut fail);
    check_logs(profile, section, &mut fail);
    errors
}

fn check_topic(fail: &mut dyn FnMut(String, String), field: String, template: &str) {
    if let Err(why) = check_template(template) {
        fail(field, why);
    }
}

fn check_ptr(fail: &mut dyn FnMut(String, String), field: String, pointer: &str) {
    if let Err(why) = check_pointer(pointer) {
        fail(field, why);
    }
}

fn check_request(fail: &mut dyn FnMut(String, String), field: &str, request: &RequestMap) {
    check_topic(fail, format!("{field}.topic"), &request.topic);
    if let Some(p) = &request.pointer
        && let Err(why) = check_pointer(p)
    {
        fail(format!("{field}.pointer"), why);
    }
}

/// `identity.proof`: a request whose payload can take the nonce (and the address), and
/// distinct, non-empty pointers into the answer.
fn check_proof(fail: &mut dyn FnMut(String, String), proof: &ProofMap) {
    const AT: &str = "identity.proof";
    check_topic(fail, format!("{AT}.request.topic"), &proof.request.topic);
    if proof.request.pointer.is_some() {
        fail(
            format!("{AT}.request.pointer"),
            "the proof request places the nonce at `identity.proof.nonce`; remove `pointer`".into(),
        );
    }
    let mut payload = proof.request.payload.clone();
    let placed = [
        ("nonce", Some(&proof.nonce)),
        ("address", proof.address.as_ref()),
    ];
    for (field, pointer) in placed {
        let Some(pointer) = pointer else { continue };
        if pointer.is_empty() {
            fail(
                format!("{AT}.{field}"),
                format!(
                    "the {field} cannot be the whole payload; give a pointer such as `/{field}`"
                ),
            );
        } else if let Err(why) = check_pointer(pointer) {
            fail(format!("{AT}.{field}"), why);
        } else if let Err(why) = place(&mut payload, pointer, Json::Bool(true)) {
            fail(format!("{AT}.{field}"), why);
        }
    }
    if proof.address.as_ref() == Some(&proof.nonce) {
        fail(
            format!("{AT}.address"),
            format!(
                "the address and the nonce both go at `{}`; give them different pointers",
                proof.nonce
            ),
        );
    }
    let answered = [
        ("certificate", Some(&proof.certificate)),
        ("signature", Some(&proof.signature)),
        ("echo", proof.echo.as_ref()),
    ];
    for (field, pointer) in answered {
        let Some(pointer) = pointer else { continue };
        if pointer.is_empty() {
            fail(
                format!("{AT}.{field}"),
                format!(
                    "the {field} cannot be the whole answer; give a pointer such as `/{field}`"
                ),
            );
        } else {
            check_ptr(fail, format!("{AT}.{field}"), pointer);
        }
    }
    if proof.certificate == proof.signature {
        fail(
            format!("{AT}.signature"),
            format!(
                "the certificate and the signature are both read at `{}`; give them different pointers",
                proof.signature
            ),
        );
    }
    if let Some(timeout) = proof.timeout
        && (timeout.is_zero() || timeout > MAX_PROOF_TIMEOUT)
    {
        fail(
            format!("{AT}.timeout"),
            format!(
                "{} is outside 1ms ..= {}; give the time the device needs to sign, e.g. \"10s\"",
                humantime::format_duration(timeout),
                humantime::format_duration(MAX_PROOF_TIMEOUT)
            ),
        );
    }
}

fn check_firmware(
    profile: &Profile,
    section: &GenericSection,
    fail: &mut dyn FnMut(String, String),
) {
    let method = profile.firmware.method.as_str();
    match (method, &section.firmware) {
        ("none", None) => {}
        (FIRMWARE_CHUNKED, Some(map)) => {
            check_topic(fail, "firmware.topic".into(), &map.topic);
            if !CHUNK_SIZES.contains(&map.chunk_size) {
                fail(
                    "firmware.chunk_size".into(),
                    format!(
                        "{} bytes is outside {} ..= {}",
                        map.chunk_size,
                        CHUNK_SIZES.start(),
                        CHUNK_SIZES.end()
                    ),
                );
            }
            if map.confirm_required == Some(true) && !profile.firmware.dual_bank {
                fail(
                    "firmware.confirm_required".into(),
                    "only a dual-bank device can revert an unconfirmed image; set `firmware.dual_bank = true` or remove this".into(),
                );
            }
            if section.availability.is_none() {
                fail(
                    "firmware".into(),
                    "firmware activation restarts the device: give `availability` to see it come back".into(),
                );
            }
        }
        (FIRMWARE_CHUNKED, None) => fail(
            "firmware".into(),
            "`firmware.method = \"chunked\"` needs `[mqtt.generic.firmware]` with its `topic`"
                .into(),
        ),
        ("none", Some(_)) => fail(
            "firmware".into(),
            "the profile's `firmware.method` is \"none\"; set it to \"chunked\" or remove this table".into(),
        ),
        (other, _) => fail(
            "firmware".into(),
            format!("the generic dialect transfers firmware with method \"chunked\", not {other:?}; set `firmware.method = \"chunked\"`"),
        ),
    }
}

fn check_logs(profile: &Profile, section: &GenericSection, fail: &mut dyn FnMut(String, String)) {
    let method = profile.logs.method.as_str();
    let Some(map) = &section.logs else {
        if method != "none" {
            fail(
                "logs".into(),
                format!("`logs.method = {method:?}` needs `[mqtt.generic.logs]`"),
            );
        }
        return;
    };
    if !(1..=1000).contains(&map.max) {
        fail(
            "logs.max".into(),
            format!("{} is outside 1 ..= 1000", map.max),
        );
    }
    match method {
        LOGS_REQUEST => match &map.request_topic {
            Some(t) => check_topic(fail, "logs.request_topic".into(), t),
            None => fail(
                "logs.request_topic".into(),
                "`logs.method = \"request\"` needs `request_topic`".into(),
            ),
        },
        LOGS_TOPIC => match &map.topic {
            Some(t) => check_topic(fail, "logs.topic".into(), t),
            None => fail(
                "logs.topic".into(),
                "`logs.method = \"topic\"` needs `topic`".into(),
            ),
        },
        "none" => fail(
            "logs".into(),
            "the profile's `logs.method` is \"none\"; set it to \"request\" or \"topic\", or remove this table".into(),
        ),
        other => fail(
            "logs".into(),
            format!("the generic dialect reads logs with method \"request\" or \"topic\", not {other:?}"),
        ),
    }
    if method == LOGS_REQUEST && map.topic.is_some() {
        fail(
            "logs.topic".into(),
            "`topic` is for `logs.method = \"topic\"`; remove it or change the method".into(),
        );
    }
    if method == LOGS_TOPIC && map.request_topic.is_some() {
        fail(
            "logs.request_topic".into(),
            "`request_topic` is for `logs.method = \"request\"`; remove it or change the method"
                .into(),
        );
    }
}

/// Checks a topic template: `{device}` is the only placeholder, and the topic it expands to is
/// a valid topic name.
pub fn check_template(template: &str) -> Result<(), String> {
    let without = template.replace("{device}", "");
    if without.contains(['{', '}']) {
        return Err(format!(
            "topic {template:?} has a placeholder other than `{{device}}`"
        ));
    }
    topic::check_name(&expand(template, "device"))
        .map_err(|why| format!("topic {template:?}: {why}"))
}

//! `[enrollment]` and the zero-touch rules of `[[groups]]`: how declared devices get their
//! identity and who approves them.

use std::time::Duration;

use globset::{Glob, GlobMatcher};
use iotmc_adapter::{LocatedError, TomlSource, serde_duration};
use serde::Deserialize;

/// Shortest identity certificate validity accepted.
pub const MIN_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Longest identity certificate validity accepted (825 days, the CA/Browser Forum's old cap).
pub const MAX_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(825 * 24 * 3600);

/// `[enrollment]`: identities of the virtual devices and their enrollment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentSection {
    /// Enroll declared devices: each gets an identity certificate from the issuing CA and
    /// enrolls with the gateway's management controller over mutual TLS. Default: on when an
    /// issuing CA is configured (`[trust] issuing_ca_certificate`) or `lab_pki` is set; `true`
    /// without either is an error at start.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Labs only: generate whatever of the issuing CA, the gateway's certificate and the
    /// operator CA `[trust]` does not name, in `<state_dir>/pki`, on first start. Logged as a
    /// warning at every start: these keys live on the gateway's disk and nobody vetted them.
    #[serde(default)]
    pub lab_pki: bool,
    /// Validity of the identity certificates issued to devices (default 365days, 1day to
    /// 825days). A certificate is renewed when less than a tenth of it is left.
    #[serde(default = "default_validity", with = "serde_duration")]
    pub certificate_validity: Duration,
}

impl Default for EnrollmentSection {
    fn default() -> Self {
        Self {
            enabled: None,
            lab_pki: false,
            certificate_validity: default_validity(),
        }
    }
}

fn default_validity() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

/// `[groups.zero_touch]`: which devices a `approval = "zero-touch"` group approves without an
/// operator. Every list left empty matches anything; a device must match all given lists, and
/// must always have cryptographic identity evidence.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroTouchRule {
    /// Profile ids.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Address patterns (`*` any run of characters, `?` one, `[..]` a class), e.g.
    /// `plant/ahu-*`.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Evidence kinds accepted: `certificate`, `install-code`, `bonded-key` (default: any of
    /// them; `none` is never accepted).
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// Evidence kinds a zero-touch rule may name.
pub const CRYPTOGRAPHIC_EVIDENCE: [&str; 3] = ["certificate", "install-code", "bonded-key"];

impl ZeroTouchRule {
    /// Whether a device of `profile` at `address` with evidence of `kind` matches. `kind` is
    /// [`iotmc_adapter::IdentityEvidence::kind_name`]; `none` never matches.
    pub fn matches(&self, profile: &str, address: &str, kind: &str) -> bool {
        if !CRYPTOGRAPHIC_EVIDENCE.contains(&kind) {
            return false;
        }
        (self.evidence.is_empty() || self.evidence.iter().any(|e| e == kind))
            && (self.profiles.is_empty() || self.profiles.iter().any(|p| p == profile))
            && (self.addresses.is_empty()
                || self
                    .matchers()
                    .iter()
                    .any(|m| m.as_ref().is_ok_and(|m| m.is_match(address))))
    }

    fn matchers(&self) -> Vec<Result<GlobMatcher, globset::Error>> {
        self.addresses
            .iter()
            .map(|a| Glob::new(a).map(|g| g.compile_matcher()))
            .collect()
    }

    /// Located errors for patterns that do not compile and evidence kinds that do not exist.
    pub(super) fn check(&self, at: &str, source: &TomlSource, errors: &mut Vec<LocatedError>) {
        for (i, matcher) in self.matchers().into_iter().enumerate() {
            if let Err(e) = matcher {
                errors.push(source.error_at(
                    &format!("{at}.addresses[{i}]"),
                    format!("not an address pattern: {e}"),
                ));
            }
        }
        for (i, kind) in self.evidence.iter().enumerate() {
            if !CRYPTOGRAPHIC_EVIDENCE.contains(&kind.as_str()) {
                errors.push(source.error_at(
                    &format!("{at}.evidence[{i}]"),
                    format!(
                        "{kind:?} is not cryptographic evidence; zero-touch accepts {} (a device known only by address or serial number always waits for an operator)",
                        CRYPTOGRAPHIC_EVIDENCE.join(", ")
                    ),
                ));
            }
        }
    }
}

impl EnrollmentSection {
    pub(super) fn check(&self, source: &TomlSource, errors: &mut Vec<LocatedError>) {
        let v = self.certificate_validity;
        if !(MIN_CERTIFICATE_VALIDITY..=MAX_CERTIFICATE_VALIDITY).contains(&v) {
            errors.push(source.error_at(
                "enrollment.certificate_validity",
                format!(
                    "{} is outside 1day to 825days (default 365days)",
                    humantime::format_duration(v)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(profiles: &[&str], addresses: &[&str], evidence: &[&str]) -> ZeroTouchRule {
        let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        ZeroTouchRule {
            profiles: own(profiles),
            addresses: own(addresses),
            evidence: own(evidence),
        }
    }

    #[test]
    fn an_empty_rule_should_match_any_cryptographic_evidence_but_never_none() {
        let any = rule(&[], &[], &[]);
        assert!(any.matches("p", "a", "certificate"));
        assert!(any.matches("p", "a", "bonded-key"));
        assert!(!any.matches("p", "a", "none"));
    }

    #[test]
    fn a_rule_should_need_every_given_list_to_match() {
        let r = rule(&["mqtt5"], &["plant/ahu-*"], &["certificate"]);
        assert!(r.matches("mqtt5", "plant/ahu-3", "certificate"));
        assert!(!r.matches("mqtt5", "plant/chiller-1", "certificate"));
        assert!(!r.matches("other", "plant/ahu-3", "certificate"));
        assert!(!r.matches("mqtt5", "plant/ahu-3", "install-code"));
    }

    #[test]
    fn a_bad_pattern_or_evidence_kind_should_be_a_located_error_and_match_nothing() {
        let r = rule(&[], &["plant/[ahu"], &["serial-number"]);
        let source = TomlSource::new(std::path::Path::new("g.toml"), "");
        let mut errors = Vec::new();
        r.check("groups[0].zero_touch", &source, &mut errors);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("addresses[0]"), "{}", text[0]);
        assert!(
            text[1].contains("not cryptographic evidence"),
            "{}",
            text[1]
        );
        assert!(!r.matches("p", "plant/[ahu", "certificate"));
    }
}

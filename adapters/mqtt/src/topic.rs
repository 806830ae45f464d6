//! Topic names and filters (MQTT 5 §4.7): validation and matching, pure.

/// Longest topic name or filter accepted, in bytes (the protocol allows 65535; no device of ours
/// needs more than a few hundred).
pub const MAX_TOPIC_LEN: usize = 1024;

/// Why a topic name or filter is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Empty.
    #[error("a topic cannot be empty")]
    Empty,
    /// Longer than [`MAX_TOPIC_LEN`].
    #[error("the topic is {0} bytes long; at most {MAX_TOPIC_LEN} are accepted")]
    TooLong(usize),
    /// Holds a NUL character.
    #[error("a topic cannot hold a NUL character")]
    Nul,
    /// A topic name (to publish to) holds `+` or `#`.
    #[error("`{0}` holds a wildcard (`+` or `#`); only subscriptions may use wildcards")]
    Wildcard(String),
    /// A filter uses `+` or `#` other than as a whole level, or `#` not last.
    #[error(
        "`{0}` uses a wildcard wrongly: `+` must be a whole level and `#` the whole last level"
    )]
    BadWildcard(String),
}

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(topic.len()));
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// Checks a topic name to publish to.
pub fn check_name(topic: &str) -> Result<(), TopicError> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard(topic.to_owned()));
    }
    Ok(())
}

/// Checks a topic filter to subscribe to.
pub fn check_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let bad = match *level {
            "+" => false,
            "#" => i + 1 != levels.len(),
            other => other.contains(['+', '#']),
        };
        if bad {
            return Err(TopicError::BadWildcard(filter.to_owned()));
        }
    }
    Ok(())
}

/// Whether `topic` (a name) matches `filter`. Names starting with `$` are not matched by a
/// filter starting with a wildcard (MQTT 5 §4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut names = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if names.next().is_none() {
                    return false;
                }
            }
            exact => {
                if names.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    names.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_level_wildcard_should_match_exactly_one_level() {
        assert!(matches("tele/+/LWT", "tele/plug1/LWT"));
        assert!(!matches("tele/+/LWT", "tele/a/b/LWT"));
        assert!(!matches("tele/+/LWT", "tele/LWT"));
        assert!(matches("a/+", "a/"));
    }

    #[test]
    fn multi_level_wildcard_should_match_the_parent_and_everything_below() {
        assert!(matches("homie/5/dev/#", "homie/5/dev"));
        assert!(matches("homie/5/dev/#", "homie/5/dev/$state"));
        assert!(matches("homie/5/dev/#", "homie/5/dev/a/b/c"));
        assert!(!matches("homie/5/dev/#", "homie/5/other/$state"));
        assert!(matches("#", "anything/at/all"));
    }

    #[test]
    fn wildcard_filters_should_not_match_dollar_topics() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/broker/uptime", "$SYS/broker/uptime"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
    }

    #[test]
    fn exact_filters_should_not_match_longer_or_shorter_names() {
        assert!(matches("stat/plug/RESULT", "stat/plug/RESULT"));
        assert!(!matches("stat/plug/RESULT", "stat/plug/RESULT/x"));
        assert!(!matches("stat/plug/RESULT", "stat/plug"));
    }

    #[test]
    fn names_and_filters_should_be_checked() {
        assert_eq!(check_name(""), Err(TopicError::Empty));
        assert!(matches!(check_name("a/+/b"), Err(TopicError::Wildcard(_))));
        assert_eq!(check_name("a\0b"), Err(TopicError::Nul));
        assert!(matches!(
            check_name(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong(_))
        ));
        assert!(check_filter("a/+/b/#").is_ok());
        assert!(matches!(
            check_filter("a/#/b"),
            Err(TopicError::BadWildcard(_))
        ));
        assert!(matches!(
            check_filter("a/b+"),
            Err(TopicError::BadWildcard(_))
        ));
    }
}

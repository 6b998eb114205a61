//! The managed service's request limits for the runtime and events APIs, in
//! one place, and the one checker every one of their handlers runs its
//! request through ([`parse_request`]). A request that breaks a limit is a
//! 400 `InvalidInputException` naming each member by its path and the limit
//! (`eventList.3.recommendationId: at most 40 characters, got 41`); list
//! entries count from 1, as in the managed service's own messages.
//!
//! Source of the numbers: the Amazon Personalize API reference (each
//! request member's "Length Constraints", "Array Members" and "Map
//! Entries", for GetRecommendations, GetPersonalizedRanking, PutEvents,
//! PutItems and PutUsers) and its service quotas, as REFERENCE.md lists them.
//! Limits shared with batch jobs and the CLI are defined beside the code
//! that also uses them and re-exported here.

use std::fmt::Write as _;
use std::ops::RangeInclusive;

use serde::de::DeserializeOwned;

use super::error::ApiError;

pub use crate::campaign::MAX_NUM_RESULTS;
pub use crate::filter::{MAX_FILTER_KEY_CHARS, MAX_FILTER_VALUE_CHARS, MAX_FILTER_VALUES};

/// `userId`, `itemId`, `sessionId`, `eventId`, `trackingId`, `eventType`,
/// `impression` and `inputList` entries: 1 to 256 characters, none of them
/// a control character.
pub const ID_CHARS: usize = crate::schema::MAX_ID_CHARS;
/// `recommendationId` of an event: 1 to 40 characters.
pub const RECOMMENDATION_ID_CHARS: usize = 40;
/// `campaignArn`, `recommenderArn`, `filterArn`, `datasetArn`: at most 256 characters.
pub const ARN_CHARS: usize = 256;
/// PutEvents `eventList`: 1 to 10 events.
pub const EVENTS: RangeInclusive<usize> = 1..=10;
/// An event's `impression`: 1 to 25 item ids.
pub const IMPRESSION: RangeInclusive<usize> = 1..=25;
/// An event's `properties` (a JSON object encoded as a string): 1 to 1,024 characters.
pub const EVENT_PROPERTIES_CHARS: usize = 1_024;
/// An event's `metricAttribution.eventAttributionSource`: 1 to 1,024 characters.
pub const ATTRIBUTION_SOURCE_CHARS: usize = 1_024;
/// PutItems `items`, PutUsers `users`: 1 to 10 records.
pub const RECORDS: RangeInclusive<usize> = 1..=10;
/// An item's `properties`: 1 to 32,000 characters.
pub const ITEM_PROPERTIES_CHARS: usize = 32_000;
/// A user's `properties`: 1 to 24,000 characters.
pub const USER_PROPERTIES_CHARS: usize = 24_000;
/// GetPersonalizedRanking `inputList`: 1 to 500 item ids (a service quota).
pub const INPUT_LIST: RangeInclusive<usize> = 1..=MAX_NUM_RESULTS;
/// `context`: at most 150 entries; keys 1 to 150 letters, digits or `_`;
/// values at most 1,000 characters.
pub const CONTEXT_ENTRIES: usize = 150;
pub const CONTEXT_KEY_CHARS: usize = 150;
pub const CONTEXT_VALUE_CHARS: usize = 1_000;
/// `metadataColumns`: one dataset type (at most 256 characters) with at
/// most 99 columns of at most 150 characters each.
pub const METADATA_DATASETS: usize = 1;
pub const METADATA_DATASET_CHARS: usize = 256;
pub const METADATA_COLUMNS: usize = 99;
pub const METADATA_COLUMN_CHARS: usize = 150;
/// `promotions`: at most one; its `name` is 1 to 63 letters, digits, `-`
/// or `_` starting with a letter or digit; `percentPromotedItems` 1 to 100.
pub const PROMOTIONS: usize = 1;
pub const PERCENT_PROMOTED: RangeInclusive<i64> = 1..=100;
/// Problems listed in one answer; the rest are counted.
const MAX_LISTED: usize = 10;

/// A request of the runtime or events API, with its limits.
pub trait Limited {
    /// Records every limit the request breaks.
    fn check(&self, c: &mut Checker);
}

/// Parses a runtime or events request and checks its limits: every
/// handler of those APIs reads its body through this.
pub fn parse_request<T: DeserializeOwned + Limited>(body: &[u8]) -> Result<T, ApiError> {
    let request: T = super::parse_body(body)?;
    let mut c = Checker::default();
    request.check(&mut c);
    c.finish()?;
    Ok(request)
}

/// Where a member is: `eventList.3.recommendationId`.
#[derive(Debug, Clone, Default)]
pub struct Path(String);

impl Path {
    pub fn root() -> Path {
        Path::default()
    }

    /// A member of this object (or a key of this map).
    pub fn member(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// The entry of this list at zero-based `index`, written from 1.
    pub fn entry(&self, index: usize) -> Path {
        Path(format!("{}.{}", self.0, index + 1))
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collects the limits a request breaks.
#[derive(Debug, Default)]
pub struct Checker {
    problems: Vec<String>,
}

impl Checker {
    pub fn problem(&mut self, at: &Path, message: impl std::fmt::Display) {
        self.problems.push(format!("{at}: {message}"));
    }

    /// A member that must be given.
    pub fn required<T>(&mut self, at: &Path, v: &Option<T>) {
        if v.is_none() {
            self.problem(at, "required");
        }
    }

    /// A string of at most `max` characters (and at least one).
    pub fn chars(&mut self, at: &Path, v: &str, max: usize) {
        let n = v.chars().count();
        if n == 0 {
            self.problem(at, format!("must be 1 to {max} characters, got none"));
        } else if n > max {
            self.problem(at, format!("at most {max} characters, got {n}"));
        }
    }

    /// An id: 1 to `max` characters, none of them a control character
    /// (they would reach files, logs and terminals).
    pub fn id(&mut self, at: &Path, v: &str, max: usize) {
        self.chars(at, v, max);
        if let Some((i, c)) = v.chars().enumerate().find(|(_, c)| c.is_control()) {
            self.problem(
                at,
                format!(
                    "control characters are not allowed (U+{:04X} at character {})",
                    c as u32,
                    i + 1
                ),
            );
        }
    }

    /// An optional id.
    pub fn opt_id(&mut self, at: &Path, v: &Option<String>, max: usize) {
        if let Some(v) = v {
            self.id(at, v, max);
        }
    }

    /// A required id.
    pub fn req_id(&mut self, at: &Path, v: &Option<String>, max: usize) {
        match v {
            Some(v) => self.id(at, v, max),
            None => self.problem(at, "required"),
        }
    }

    /// A list or map of `n` entries within `range`.
    pub fn count(&mut self, at: &Path, n: usize, range: RangeInclusive<usize>) {
        if !range.contains(&n) {
            let (lo, hi) = (range.start(), range.end());
            if *lo == 0 {
                self.problem(at, format!("at most {hi} entries, got {n}"));
            } else {
                self.problem(at, format!("must have {lo} to {hi} entries, got {n}"));
            }
        }
    }

    /// A map key of 1 to `max` letters, digits or `_`.
    pub fn word_key(&mut self, at: &Path, key: &str, max: usize) {
        if key.is_empty()
            || key.chars().count() > max
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.problem(
                at,
                format!("the key must be 1 to {max} letters, digits or _, got {key:?}"),
            );
        }
    }

    /// `filterValues`: the managed service's limits on its keys and values.
    pub fn filter_values(
        &mut self,
        at: &Path,
        v: &Option<std::collections::BTreeMap<String, String>>,
    ) {
        let Some(v) = v else { return };
        self.count(at, v.len(), 0..=MAX_FILTER_VALUES);
        for (k, value) in v {
            let at = at.member(k);
            self.word_key(&at, k, MAX_FILTER_KEY_CHARS);
            if value.chars().count() > MAX_FILTER_VALUE_CHARS {
                self.problem(
                    &at,
                    format!(
                        "at most {MAX_FILTER_VALUE_CHARS} characters, got {}",
                        value.chars().count()
                    ),
                );
            }
        }
    }

    /// `context`: entries, keys and values within the managed service's limits.
    pub fn context(&mut self, at: &Path, v: &Option<std::collections::BTreeMap<String, String>>) {
        let Some(v) = v else { return };
        self.count(at, v.len(), 0..=CONTEXT_ENTRIES);
        for (k, value) in v {
            let at = at.member(k);
            self.word_key(&at, k, CONTEXT_KEY_CHARS);
            if value.chars().count() > CONTEXT_VALUE_CHARS {
                self.problem(
                    &at,
                    format!(
                        "at most {CONTEXT_VALUE_CHARS} characters, got {}",
                        value.chars().count()
                    ),
                );
            }
        }
    }

    /// `metadataColumns`: one dataset type and at most 99 columns.
    pub fn metadata_columns(
        &mut self,
        at: &Path,
        v: &Option<std::collections::BTreeMap<String, Vec<String>>>,
    ) {
        let Some(v) = v else { return };
        self.count(at, v.len(), 0..=METADATA_DATASETS);
        for (dataset, columns) in v {
            let at = at.member(dataset);
            if dataset.chars().count() > METADATA_DATASET_CHARS {
                self.problem(
                    &at,
                    format!("the dataset type must be at most {METADATA_DATASET_CHARS} characters"),
                );
            }
            self.count(&at, columns.len(), 0..=METADATA_COLUMNS);
            for (i, c) in columns.iter().enumerate() {
                self.chars(&at.entry(i), c, METADATA_COLUMN_CHARS);
            }
        }
    }

    /// The answer: `Ok` when nothing was broken, else every problem (the
    /// first ten listed, the rest counted).
    pub fn finish(self) -> Result<(), ApiError> {
        let n = self.problems.len();
        if n == 0 {
            return Ok(());
        }
        if n == 1 {
            return Err(ApiError::invalid(
                self.problems.into_iter().next().unwrap_or_default(),
            ));
        }
        let mut message = format!("{n} problems: ");
        message.push_str(
            &self
                .problems
                .iter()
                .take(MAX_LISTED)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        );
        if n > MAX_LISTED {
            let _ = write!(message, "; and {} more", n - MAX_LISTED);
        }
        Err(ApiError::invalid(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_count_entries_from_one() {
        let p = Path::root()
            .member("eventList")
            .entry(2)
            .member("recommendationId");
        assert_eq!(p.to_string(), "eventList.3.recommendationId");
    }

    #[test]
    fn ids_are_bounded_and_free_of_control_characters() {
        let mut c = Checker::default();
        let at = Path::root().member("userId");
        c.id(&at, "ok", ID_CHARS);
        c.id(&at, "a\0b", ID_CHARS);
        c.id(&at, &"x".repeat(257), ID_CHARS);
        c.id(&at, "", ID_CHARS);
        assert_eq!(
            c.problems,
            [
                "userId: control characters are not allowed (U+0000 at character 2)",
                "userId: at most 256 characters, got 257",
                "userId: must be 1 to 256 characters, got none",
            ]
        );
    }

    #[test]
    fn many_problems_are_listed_ten_at_a_time() {
        let mut c = Checker::default();
        for i in 0..12 {
            c.problem(&Path::root().member("inputList").entry(i), "bad");
        }
        let e = c.finish().unwrap_err();
        let m = e.message();
        assert!(m.starts_with("12 problems: inputList.1: bad; "), "{m}");
        assert!(m.ends_with("inputList.10: bad; and 2 more"), "{m}");
    }
}

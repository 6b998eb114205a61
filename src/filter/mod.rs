//! Filters in the managed service's expression language:
//! `INCLUDE ItemID WHERE Items.GENRE IN ($GENRE) | EXCLUDE ItemID WHERE
//! Interactions.EVENT_TYPE IN ("watch")`. This module parses an expression
//! (every error points at its column) and checks it against the dataset
//! schemas; [`catalog`] evaluates it into item or user masks.
//!
//! Semantics, as the managed service documents them: `|` joins expressions;
//! the result is the union of the active INCLUDE expressions (every item when
//! there is none) minus the union of the EXCLUDE expressions. AND / OR combine
//! conditions on one dataset, AND binding tighter. A trailing `IF
//! CurrentUser.F ...` makes an expression apply only to users it matches.

pub mod catalog;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::schema::{DatasetType, FieldType, Schema};

/// The managed service's limit on an expression's length.
pub const MAX_FILTER_CHARS: usize = 2_500;
/// Distinct dataset fields one filter may use.
pub const MAX_FILTER_FIELDS: usize = 5;
/// Request `filterValues`: at most this many entries…
pub const MAX_FILTER_VALUES: usize = 25;
/// …each value at most this many characters…
pub const MAX_FILTER_VALUE_CHARS: usize = 1_000;
/// …and each key at most this many.
pub const MAX_FILTER_KEY_CHARS: usize = 50;

/// A problem in a filter expression, at a 1-based character column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at column {column}: {message}")]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        column,
        message: message.into(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Include,
    Exclude,
}

/// What a filter selects: items to recommend, or users of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    ItemId,
    UserId,
}

/// The dataset a condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Items,
    Users,
    Interactions,
    /// Only in a trailing `IF` clause.
    CurrentUser,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Items => "Items",
            Source::Users => "Users",
            Source::Interactions => "Interactions",
            Source::CurrentUser => "CurrentUser",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn is_numeric(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

/// A value on the right of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    /// `$NAME`, filled from the request's `filterValues`.
    Param(String),
    /// `*`: every event type.
    All,
    /// `CurrentItem.FIELD`: the value of the item a related-items request is for.
    CurrentItem(String),
}

/// `Source.FIELD op values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub source: Source,
    /// The field as the schema spells it (after [`Filter::check`]).
    pub field: String,
    pub op: Op,
    pub values: Vec<Value>,
    /// Where the field starts, for errors found later.
    pub column: usize,
}

/// One `INCLUDE|EXCLUDE ... WHERE ... [IF ...]` part of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    pub action: Action,
    pub target: Target,
    /// OR of AND-groups.
    pub any_of: Vec<Vec<Condition>>,
    /// `IF CurrentUser.F op value`: the expression applies only when it holds.
    pub when: Option<Condition>,
}

impl Expression {
    /// The dataset every condition of the WHERE clause reads.
    pub fn source(&self) -> Source {
        self.any_of[0][0].source
    }

    fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.any_of.iter().flatten().chain(self.when.iter())
    }
}

/// A parsed filter: expressions joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub expressions: Vec<Expression>,
    /// A hash of the text, naming the filter in mask caches.
    pub id: u64,
}

impl Filter {
    pub fn target(&self) -> Target {
        self.expressions[0].target
    }

    /// Parameters the filter takes, and whether an INCLUDE expression needs each.
    pub fn params(&self) -> BTreeMap<String, bool> {
        let mut out = BTreeMap::new();
        for e in &self.expressions {
            for c in e.conditions() {
                for v in &c.values {
                    if let Value::Param(p) = v {
                        *out.entry(p.clone()).or_insert(false) |= e.action == Action::Include;
                    }
                }
            }
        }
        out
    }

    /// Parses an expression; the first problem stops it.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let chars = text.chars().count();
        if chars > MAX_FILTER_CHARS {
            return err(
                MAX_FILTER_CHARS + 1,
                format!(
                    "a filter expression has at most {MAX_FILTER_CHARS} characters; this one has {chars}"
                ),
            );
        }
        let tokens = tokenize(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end: chars + 1,
        };
        let mut expressions = vec![p.expression()?];
        while p.eat_pipe() {
            expressions.push(p.expression()?);
        }
        if let Some(t) = p.peek() {
            return err(
                t.column,
                format!("expected `|` or the end, found {}", t.kind),
            );
        }
        let target = expressions[0].target;
        if let Some(e) = expressions.iter().find(|e| e.target != target) {
            return err(
                e.any_of[0][0].column,
                "all expressions of a filter select the same thing: ItemID or UserID, not both",
            );
        }
        let id = {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        Ok(Filter { expressions, id })
    }

    /// Checks fields, types and limits against the dataset group's schemas,
    /// and settles field names to the schema's spelling. Returns every problem.
    pub fn check(&mut self, schemas: &BTreeMap<DatasetType, Schema>) -> Vec<FilterError> {
        let mut problems = Vec::new();
        let mut fields = BTreeSet::new();
        for e in &mut self.expressions {
            let target = e.target;
            let source = e.source();
            for c in e.any_of.iter_mut().flatten().chain(e.when.iter_mut()) {
                if let Err(p) = check_condition(c, target, source, schemas) {
                    problems.push(p);
                }
                fields.insert((c.source, c.field.clone()));
                for v in &c.values {
                    if let Value::CurrentItem(f) = v {
                        fields.insert((Source::Items, f.clone()));
                    }
                }
            }
        }
        if fields.len() > MAX_FILTER_FIELDS {
            problems.push(FilterError {
                column: 1,
                message: format!(
                    "a filter uses at most {MAX_FILTER_FIELDS} distinct fields; this one uses {}",
                    fields.len()
                ),
            });
        }
        problems
    }
}

fn dataset_of(source: Source) -> DatasetType {
    match source {
        Source::Items => DatasetType::Items,
        Source::Users | Source::CurrentUser => DatasetType::Users,
        Source::Interactions => DatasetType::Interactions,
    }
}

/// Resolves `field` in the dataset's schema (case-insensitively) and checks
/// that it can be filtered with `numeric` comparisons or string matches.
fn resolve_field(
    source: Source,
    field: &mut String,
    numeric: bool,
    column: usize,
    schemas: &BTreeMap<DatasetType, Schema>,
) -> Result<FieldType, FilterError> {
    let dataset = dataset_of(source);
    let Some(schema) = schemas.get(&dataset) else {
        return err(
            column,
            format!("{source}.{field}: the dataset group declares no {dataset} dataset"),
        );
    };
    let Some(f) = schema
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(field))
    else {
        let known: Vec<&str> = schema.names().collect();
        return err(
            column,
            format!(
                "unknown field {source}.{field} (known: {})",
                known.join(", ")
            ),
        );
    };
    *field = f.name.clone();
    if source == Source::Interactions && f.name != crate::schema::EVENT_TYPE {
        return err(
            column,
            format!("{source}.{field}: only Interactions.EVENT_TYPE can be filtered"),
        );
    }
    if f.textual || f.field_type == FieldType::Boolean {
        return err(
            column,
            format!(
                "{source}.{field} is {}: textual and boolean fields cannot be filtered",
                if f.textual { "textual" } else { "boolean" }
            ),
        );
    }
    if numeric && !f.field_type.is_numeric() {
        return err(
            column,
            format!(
                "{source}.{field} is a {} field: <, <=, > and >= compare numbers; use IN for strings",
                f.field_type.as_str()
            ),
        );
    }
    Ok(f.field_type)
}

fn check_condition(
    c: &mut Condition,
    target: Target,
    where_source: Source,
    schemas: &BTreeMap<DatasetType, Schema>,
) -> Result<(), FilterError> {
    let allowed = matches!(
        (target, c.source),
        (_, Source::CurrentUser)
            | (Target::ItemId, Source::Items | Source::Interactions)
            | (Target::UserId, Source::Users | Source::Interactions)
    );
    if !allowed {
        let (t, want) = match target {
            Target::ItemId => ("ItemID", "Items or Interactions"),
            Target::UserId => ("UserID", "Users or Interactions"),
        };
        return err(
            c.column,
            format!("a {t} filter reads {want}, not {}", c.source),
        );
    }
    if c.source != Source::CurrentUser && c.source != where_source {
        return err(
            c.column,
            format!(
                "AND / OR join conditions on one dataset; this expression reads {where_source}, not {}",
                c.source
            ),
        );
    }
    let ty = resolve_field(c.source, &mut c.field, c.op.is_numeric(), c.column, schemas)?;
    for v in &mut c.values {
        match v {
            Value::Num(_) if !ty.is_numeric() => {
                return err(
                    c.column,
                    format!(
                        "{}.{} is a string field: quote its values",
                        c.source, c.field
                    ),
                );
            }
            Value::Str(s) if ty.is_numeric() && s.parse::<f64>().is_err() => {
                return err(
                    c.column,
                    format!("{}.{} is numeric; {s:?} is not a number", c.source, c.field),
                );
            }
            Value::All if c.source != Source::Interactions => {
                return err(
                    c.column,
                    "`*` (every event type) is only for Interactions.EVENT_TYPE",
                );
            }
            Value::CurrentItem(f) => {
                if target != Target::ItemId || c.source != Source::Items {
                    return err(
                        c.column,
                        "CurrentItem values compare with Items fields in ItemID filters",
                    );
                }
                let ct = resolve_field(Source::Items, f, c.op.is_numeric(), c.column, schemas)?;
                if ct.is_numeric() != ty.is_numeric() {
                    return err(
                        c.column,
                        format!("CurrentItem.{f} and Items.{} differ in type", c.field),
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parses request `filterValues`: `{"GENRE": "\"comedy\",\"drama\""}` gives
/// two values; an unquoted value (`"10"`) is one. Limits are the managed
/// service's, and errors name the member.
pub fn parse_filter_values(
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(format!(
            "filterValues: at most {MAX_FILTER_VALUES} entries, got {}",
            values.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in values {
        if k.is_empty()
            || k.len() > MAX_FILTER_KEY_CHARS
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "filterValues: key {k:?} must be 1 to {MAX_FILTER_KEY_CHARS} letters, digits or _"
            ));
        }
        if v.chars().count() > MAX_FILTER_VALUE_CHARS {
            return Err(format!(
                "filterValues.{k}: at most {MAX_FILTER_VALUE_CHARS} characters"
            ));
        }
        out.insert(
            k.clone(),
            split_values(v).map_err(|e| format!("filterValues.{k}: {e}"))?,
        );
    }
    Ok(out)
}

fn split_values(v: &str) -> Result<Vec<String>, String> {
    let t = v.trim();
    if !t.starts_with('"') {
        return Ok(vec![t.to_string()]);
    }
    let mut out = Vec::new();
    let mut chars = t.chars().peekable();
    loop {
        match chars.next() {
            Some('"') => {}
            _ => return Err(format!("expected a quoted value in {v:?}")),
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("unterminated quote in {v:?}")),
                Some('\\') => s.extend(chars.next()),
                Some('"') => break,
                Some(c) => s.push(c),
            }
        }
        out.push(s);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Ok(out),
            Some(',') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(c) => return Err(format!("expected `,` between values, found {c:?} in {v:?}")),
        }
    }
}

impl Filter {
    /// Whether any expression reads `Interactions` (then each user's events are loaded).
    pub fn reads_interactions(&self) -> bool {
        self.expressions
            .iter()
            .any(|e| e.source() == Source::Interactions)
    }
}

/// The latest versions of a dataset group's datasets, with their schemas.
pub type Frames = BTreeMap<DatasetType, (polars::prelude::DataFrame, Schema)>;

/// Loads the group's latest items and users datasets (when they exist), and
/// its interactions when `interactions` is set.
pub async fn load_frames(
    env: &crate::config::Env,
    group: &str,
    interactions: bool,
) -> anyhow::Result<Frames> {
    use crate::dataset::{self, DatasetError};
    let mut frames = BTreeMap::new();
    for (t, wanted) in [
        (DatasetType::Items, true),
        (DatasetType::Users, true),
        (DatasetType::Interactions, interactions),
    ] {
        if !wanted {
            continue;
        }
        let loaded = if t == DatasetType::Interactions {
            dataset::load(env, group, t, None).await
        } else {
            dataset::load_with_puts(env, group, t).await
        };
        match loaded {
            Ok(d) => {
                frames.insert(t, (d.frame, d.manifest.schema));
            }
            Err(DatasetError::NoVersion { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(frames)
}

/// Indexes loaded frames for a solution version's items and users (blocking work).
pub fn build_data(
    frames: &Frames,
    items: &crate::recipes::IdMap,
    users: &crate::recipes::IdMap,
) -> polars::prelude::PolarsResult<catalog::FilterData> {
    let frame = |t| frames.get(&t).map(|(df, s): &(_, Schema)| (df, s));
    catalog::FilterData::build(
        items,
        users,
        frame(DatasetType::Items),
        frame(DatasetType::Users),
        frame(DatasetType::Interactions).map(|(df, _)| df),
    )
}

/// Loads what `filters` read for a solution version's items and users.
pub async fn load_data<'a>(
    env: &crate::config::Env,
    group: &str,
    items: &crate::recipes::IdMap,
    users: &crate::recipes::IdMap,
    filters: impl Iterator<Item = &'a Filter>,
) -> anyhow::Result<catalog::FilterData> {
    let need_interactions = filters.into_iter().any(Filter::reads_interactions);
    let frames = load_frames(env, group, need_interactions).await?;
    let items = items.clone();
    let users = users.clone();
    tokio::task::spawn_blocking(move || build_data(&frames, &items, &users))
        .await?
        .map_err(Into::into)
}

// ---------------------------------------------------------------- tokens

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word(String),
    Str(String),
    Num(f64),
    Param(String),
    Star,
    Open,
    Close,
    Comma,
    Pipe,
    Cmp(Op),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(w) => write!(f, "`{w}`"),
            Kind::Str(s) => write!(f, "{s:?}"),
            Kind::Num(n) => write!(f, "{n}"),
            Kind::Param(p) => write!(f, "${p}"),
            Kind::Star => f.write_str("`*`"),
            Kind::Open => f.write_str("`(`"),
            Kind::Close => f.write_str("`)`"),
            Kind::Comma => f.write_str("`,`"),
            Kind::Pipe => f.write_str("`|`"),
            Kind::Cmp(op) => f.write_str(match op {
                Op::Eq => "`=`",
                Op::Lt => "`<`",
                Op::Le => "`<=`",
                Op::Gt => "`>`",
                Op::Ge => "`>=`",
                Op::In | Op::NotIn => "IN",
            }),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    column: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let single = |kind| Token { kind, column };
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let token = match c {
            '(' => single(Kind::Open),
            ')' => single(Kind::Close),
            ',' => single(Kind::Comma),
            '|' => single(Kind::Pipe),
            '*' => single(Kind::Star),
            '=' => single(Kind::Cmp(Op::Eq)),
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                };
                i += usize::from(eq);
                single(Kind::Cmp(op))
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err(column, "unterminated string"),
                        Some('\\') if i + 1 < chars.len() => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('"') => break,
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                single(Kind::Str(s))
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                if j == start {
                    return err(column, "expected a parameter name after `$`");
                }
                i = j - 1;
                single(Kind::Param(chars[start..j].iter().collect()))
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_digit() || matches!(chars[j], '.' | 'e' | 'E'))
                {
                    j += 1;
                }
                let s: String = chars[i..j].iter().collect();
                let n = s
                    .parse::<f64>()
                    .or_else(|_| err(column, format!("{s:?} is not a number")))?;
                i = j - 1;
                single(Kind::Num(n))
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '.')
                {
                    j += 1;
                }
                let w: String = chars[i..j].iter().collect();
                i = j - 1;
                single(Kind::Word(w))
            }
            other => return err(column, format!("unexpected {other:?}")),
        };
        out.push(token);
        i += 1;
    }
    Ok(out)
}

// ---------------------------------------------------------------- parser

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// The column just past the text, for "expected X at the end" errors.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn column(&self) -> usize {
        self.peek().map_or(self.end, |t| t.column)
    }

    fn found(&self) -> String {
        self.peek()
            .map_or("the end".to_string(), |t| t.kind.to_string())
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(x), .. }) if x.eq_ignore_ascii_case(w))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        self.pos += usize::from(yes);
        yes
    }

    fn eat(&mut self, kind: &Kind) -> bool {
        let yes = self.peek().is_some_and(|t| &t.kind == kind);
        self.pos += usize::from(yes);
        yes
    }

    fn eat_pipe(&mut self) -> bool {
        self.eat(&Kind::Pipe)
    }

    fn expect_word(&mut self, w: &str) -> Result<(), FilterError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            err(
                self.column(),
                format!("expected {w}, found {}", self.found()),
            )
        }
    }

    fn expression(&mut self) -> Result<Expression, FilterError> {
        let action = if self.eat_word("INCLUDE") {
            Action::Include
        } else if self.eat_word("EXCLUDE") {
            Action::Exclude
        } else {
            return err(
                self.column(),
                format!("expected INCLUDE or EXCLUDE, found {}", self.found()),
            );
        };
        let target = if self.eat_word("ItemID") {
            Target::ItemId
        } else if self.eat_word("UserID") {
            Target::UserId
        } else {
            return err(
                self.column(),
                format!("expected ItemID or UserID, found {}", self.found()),
            );
        };
        self.expect_word("WHERE")?;
        let mut any_of = vec![vec![self.condition(false)?]];
        loop {
            if self.eat_word("AND") {
                any_of
                    .last_mut()
                    .expect("one group")
                    .push(self.condition(false)?);
            } else if self.eat_word("OR") {
                any_of.push(vec![self.condition(false)?]);
            } else {
                break;
            }
        }
        let when = if self.eat_word("IF") {
            Some(self.condition(true)?)
        } else {
            None
        };
        Ok(Expression {
            action,
            target,
            any_of,
            when,
        })
    }

    fn condition(&mut self, current_user: bool) -> Result<Condition, FilterError> {
        let column = self.column();
        let (source, field) = match self.peek().map(|t| &t.kind) {
            Some(Kind::Word(w)) => match w.split_once('.') {
                Some((ds, f)) if !f.is_empty() && !f.contains('.') => {
                    let source = match ds.to_ascii_lowercase().as_str() {
                        "items" => Source::Items,
                        "users" => Source::Users,
                        "interactions" => Source::Interactions,
                        "currentuser" => Source::CurrentUser,
                        _ => {
                            return err(
                                column,
                                format!(
                                    "unknown dataset {ds:?} (known: Items, Users, Interactions, CurrentUser)"
                                ),
                            );
                        }
                    };
                    (source, f.to_string())
                }
                _ => {
                    return err(
                        column,
                        format!("expected Dataset.FIELD, found {}", self.found()),
                    );
                }
            },
            _ => {
                return err(
                    column,
                    format!("expected Dataset.FIELD, found {}", self.found()),
                );
            }
        };
        if (source == Source::CurrentUser) != current_user {
            return err(
                column,
                if current_user {
                    "an IF clause tests CurrentUser.FIELD".to_string()
                } else {
                    "CurrentUser is only allowed in a trailing IF clause".to_string()
                },
            );
        }
        self.pos += 1;
        let op = if self.eat_word("IN") {
            Op::In
        } else if self.eat_word("NOT") {
            self.expect_word("IN")?;
            Op::NotIn
        } else if let Some(Token {
            kind: Kind::Cmp(op),
            ..
        }) = self.peek()
        {
            let op = *op;
            self.pos += 1;
            op
        } else {
            return err(
                self.column(),
                format!(
                    "expected IN, NOT IN, =, <, <=, > or >=, found {}",
                    self.found()
                ),
            );
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            if !self.eat(&Kind::Open) {
                return err(
                    self.column(),
                    format!("expected `(` after IN, found {}", self.found()),
                );
            }
            let mut values = vec![self.value()?];
            while self.eat(&Kind::Comma) {
                values.push(self.value()?);
            }
            if !self.eat(&Kind::Close) {
                return err(
                    self.column(),
                    format!("expected `,` or `)`, found {}", self.found()),
                );
            }
            values
        } else {
            vec![self.value()?]
        };
        Ok(Condition {
            source,
            field,
            op,
            values,
            column,
        })
    }

    fn value(&mut self) -> Result<Value, FilterError> {
        let column = self.column();
        let v = match self.peek().map(|t| &t.kind) {
            Some(Kind::Str(s)) => Value::Str(s.clone()),
            Some(Kind::Num(n)) => Value::Num(*n),
            Some(Kind::Param(p)) => Value::Param(p.clone()),
            Some(Kind::Star) => Value::All,
            Some(Kind::Word(w)) => match w.split_once('.') {
                Some((ds, f)) if ds.eq_ignore_ascii_case("currentitem") && !f.is_empty() => {
                    Value::CurrentItem(f.to_string())
                }
                _ => {
                    return err(
                        column,
                        format!(
                            "expected a quoted value, a number, $PARAM, * or CurrentItem.FIELD, found {}",
                            self.found()
                        ),
                    );
                }
            },
            _ => {
                return err(
                    column,
                    format!(
                        "expected a quoted value, a number, $PARAM, * or CurrentItem.FIELD, found {}",
                        self.found()
                    ),
                );
            }
        };
        self.pos += 1;
        Ok(v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schema::{AvroSchema, Schema};

    pub(crate) fn schemas() -> BTreeMap<DatasetType, Schema> {
        let avro = |json: &str| serde_json::from_str::<AvroSchema>(json).unwrap();
        let mut m = BTreeMap::new();
        m.insert(
            DatasetType::Interactions,
            Schema::from_avro(
                DatasetType::Interactions,
                &avro(
                    r#"{"fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                    {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}]}"#,
                ),
            )
            .unwrap(),
        );
        m.insert(
            DatasetType::Items,
            Schema::from_avro(
                DatasetType::Items,
                &avro(
                    r#"{"fields": [{"name": "ITEM_ID", "type": "string"},
                    {"name": "GENRE", "type": "string", "categorical": true},
                    {"name": "PRICE", "type": "double"},
                    {"name": "DESCRIPTION", "type": ["null", "string"], "textual": true}]}"#,
                ),
            )
            .unwrap(),
        );
        m.insert(
            DatasetType::Users,
            Schema::from_avro(
                DatasetType::Users,
                &avro(
                    r#"{"fields": [{"name": "USER_ID", "type": "string"},
                    {"name": "AGE", "type": "int"}, {"name": "TIER", "type": "string", "categorical": true}]}"#,
                ),
            )
            .unwrap(),
        );
        m
    }

    fn check(text: &str) -> Result<Filter, FilterError> {
        let mut f = Filter::parse(text)?;
        match f.check(&schemas()).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(f),
        }
    }

    #[test]
    fn the_managed_services_examples_parse() {
        for text in [
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")"#,
            r#"INCLUDE ItemID WHERE Items.PRICE <= $PRICE"#,
            r#"EXCLUDE ItemID WHERE Items.GENRE IN ($GENRE) IF CurrentUser.AGE = $AGE"#,
            r#"INCLUDE ItemID WHERE Items.GENRE IN ($GENRE) | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")"#,
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (*)"#,
            r#"INCLUDE ItemID WHERE Items.GENRE IN (CurrentItem.GENRE)"#,
            r#"INCLUDE UserID WHERE Users.TIER IN ("gold") AND Users.AGE >= 18"#,
            r#"include ItemID where items.genre not in ("Horror") or Items.PRICE < 10.5"#,
        ] {
            check(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        let f = check(r#"INCLUDE ItemID WHERE Items.GENRE IN ($G) AND Items.PRICE > 3 OR Items.PRICE < 1 IF CurrentUser.TIER IN ("gold")"#).unwrap();
        let e = &f.expressions[0];
        assert_eq!(e.any_of.len(), 2);
        assert_eq!(e.any_of[0].len(), 2);
        assert_eq!(e.when.as_ref().unwrap().field, "TIER");
        assert_eq!(f.params(), BTreeMap::from([("G".to_string(), true)]));
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = check(r#"INCLUDE ItemID WHERE Items.GENER IN ("Comedy")"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at column 22: unknown field Items.GENER (known: ITEM_ID, GENRE, PRICE, DESCRIPTION)"
        );
        let e = check(r#"INCLUDE ItemID WHERE Items.GENRE IN "Comedy""#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at column 37: expected `(` after IN, found \"Comedy\""
        );
        let e = check(r#"INCLUDE ItemID WHERE Items.GENRE < 3"#).unwrap_err();
        assert!(e.message.contains("is a string field"), "{e}");
        assert_eq!(e.column, 22);
        let e = check(r#"INCLUDE ItemID WHERE Items.DESCRIPTION IN ("x")"#).unwrap_err();
        assert!(e.message.contains("textual"), "{e}");
        let e =
            check(r#"INCLUDE ItemID WHERE Items.PRICE > 1 AND Interactions.EVENT_TYPE IN ("x")"#)
                .unwrap_err();
        assert_eq!(e.column, 42);
        assert!(e.message.contains("one dataset"), "{e}");
        let e = check(r#"INCLUDE ItemID WHERE Items.PRICE > 1 |"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at column 39: expected INCLUDE or EXCLUDE, found the end"
        );
        let e = check(r#"INCLUDE ItemID WHERE Users.AGE > 1"#).unwrap_err();
        assert!(
            e.message
                .contains("ItemID filter reads Items or Interactions"),
            "{e}"
        );
        let e = check(r#"INCLUDE ItemID WHERE CurrentUser.AGE > 1"#).unwrap_err();
        assert!(e.message.contains("only allowed in a trailing IF"), "{e}");
        let e = check(r#"INCLUDE ItemID WHERE Interactions.ITEM_ID IN ("1")"#).unwrap_err();
        assert!(e.message.contains("only Interactions.EVENT_TYPE"), "{e}");
    }

    #[test]
    fn limits_are_enforced() {
        let long = format!(
            r#"INCLUDE ItemID WHERE Items.GENRE IN ({})"#,
            vec![r#""comedy""#; 300].join(", ")
        );
        let e = Filter::parse(&long).unwrap_err();
        assert!(e.message.contains("at most 2500 characters"), "{e}");
        let values: BTreeMap<String, String> =
            (0..26).map(|i| (format!("K{i}"), "1".into())).collect();
        assert!(
            parse_filter_values(&values)
                .unwrap_err()
                .contains("at most 25")
        );
    }

    #[test]
    fn filter_values_split_quoted_lists() {
        let v = BTreeMap::from([
            ("G".to_string(), r#""comedy", "dra\"ma""#.to_string()),
            ("P".to_string(), "10".to_string()),
        ]);
        let p = parse_filter_values(&v).unwrap();
        assert_eq!(p["G"], ["comedy", "dra\"ma"]);
        assert_eq!(p["P"], ["10"]);
        let bad = BTreeMap::from([("G".to_string(), r#""comedy" "drama""#.to_string())]);
        assert!(
            parse_filter_values(&bad)
                .unwrap_err()
                .starts_with("filterValues.G: expected `,`")
        );
    }
}

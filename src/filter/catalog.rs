//! What filters read — item and user metadata and each user's recent
//! interactions by event type — indexed by a solution version's item and
//! user numbers, and the evaluation of a [`Filter`] into a mask of allowed
//! items (or users, for segments).
//!
//! Item conditions do not depend on the user, so their masks are cached per
//! expression, parameter values and current item: a repeated request costs a
//! hash lookup and a copy of the mask (50k items: 6 KB). Interaction
//! conditions read the user's last [`EVENTS_PER_TYPE`] items per event type,
//! plus events posted since the data was loaded.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use fixedbitset::FixedBitSet;
use polars::prelude::*;

use super::{Action, Condition, Expression, Filter, Op, Source, Target, Value};
use crate::recipes::IdMap;
use crate::schema::{self, FieldType, Schema};

/// The managed service keeps this many of a user's interactions per event type for filters.
pub const EVENTS_PER_TYPE: usize = 100;
const CACHE_ENTRIES: usize = 4096;

/// One field's values per row (item or user).
enum FieldData {
    /// Categorical or plain strings: value ids per row, and rows per value id.
    Strings {
        values: IdMap,
        rows: Vec<Vec<u32>>,
        postings: Vec<Vec<u32>>,
    },
    /// NaN where a row has no value.
    Numbers(Vec<f64>),
}

impl FieldData {
    fn build(
        column: &Column,
        field_type: FieldType,
        categorical: bool,
        index: &[Option<u32>],
        len: usize,
    ) -> PolarsResult<FieldData> {
        if field_type.is_numeric() {
            let c = column.cast(&DataType::Float64)?;
            let mut out = vec![f64::NAN; len];
            for (row, v) in c.f64()?.iter().enumerate() {
                if let (Some(Some(i)), Some(v)) = (index.get(row), v) {
                    out[*i as usize] = v;
                }
            }
            return Ok(FieldData::Numbers(out));
        }
        let c = column.cast(&DataType::String)?;
        let mut values = IdMap::default();
        let mut rows = vec![Vec::new(); len];
        let mut postings: Vec<Vec<u32>> = Vec::new();
        for (row, v) in c.str()?.iter().enumerate() {
            let (Some(Some(i)), Some(v)) = (index.get(row), v) else {
                continue;
            };
            let parts: Vec<&str> = if categorical {
                v.split('|')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            } else {
                vec![v]
            };
            for p in parts {
                let id = values.intern(p);
                if id as usize == postings.len() {
                    postings.push(Vec::new());
                }
                rows[*i as usize].push(id);
                postings[id as usize].push(*i);
            }
        }
        Ok(FieldData::Strings {
            values,
            rows,
            postings,
        })
    }

    /// Rows whose value satisfies `op` against `wanted` (strings or numbers).
    fn matching(&self, op: Op, wanted: &[String], len: usize) -> Result<FixedBitSet, String> {
        let mut m = FixedBitSet::with_capacity(len);
        match self {
            FieldData::Strings {
                values, postings, ..
            } => {
                for w in wanted {
                    if let Some(id) = values.get(w) {
                        for &r in &postings[id as usize] {
                            m.insert(r as usize);
                        }
                    }
                }
                if op == Op::NotIn {
                    m.toggle_range(..);
                }
            }
            FieldData::Numbers(v) => {
                let nums = wanted
                    .iter()
                    .map(|w| {
                        w.trim()
                            .parse::<f64>()
                            .map_err(|_| format!("{w:?} is not a number"))
                    })
                    .collect::<Result<Vec<f64>, String>>()?;
                for (r, &x) in v.iter().enumerate() {
                    if x.is_nan() {
                        continue;
                    }
                    let hit = match op {
                        Op::In | Op::Eq => nums.contains(&x),
                        Op::NotIn => !nums.contains(&x),
                        Op::Lt => nums.iter().any(|&n| x < n),
                        Op::Le => nums.iter().any(|&n| x <= n),
                        Op::Gt => nums.iter().any(|&n| x > n),
                        Op::Ge => nums.iter().any(|&n| x >= n),
                    };
                    m.set(r, hit);
                }
            }
        }
        Ok(m)
    }

    /// Whether one row's value satisfies `op` against `wanted`.
    fn row_matches(&self, row: u32, op: Op, wanted: &[String]) -> bool {
        match self {
            FieldData::Strings { values, rows, .. } => {
                let has = |w: &String| {
                    values
                        .get(w)
                        .is_some_and(|id| rows[row as usize].contains(&id))
                };
                match op {
                    Op::NotIn => !wanted.iter().any(has),
                    _ => wanted.iter().any(has),
                }
            }
            FieldData::Numbers(v) => {
                let x = v[row as usize];
                let nums = wanted.iter().filter_map(|w| w.trim().parse::<f64>().ok());
                !x.is_nan()
                    && match op {
                        Op::NotIn => nums.into_iter().all(|n| x != n),
                        Op::In | Op::Eq => nums.into_iter().any(|n| x == n),
                        Op::Lt => nums.into_iter().any(|n| x < n),
                        Op::Le => nums.into_iter().any(|n| x <= n),
                        Op::Gt => nums.into_iter().any(|n| x > n),
                        Op::Ge => nums.into_iter().any(|n| x >= n),
                    }
            }
        }
    }

    /// A row's values as strings (for `CurrentItem.F`).
    fn row_values(&self, row: u32) -> Vec<String> {
        match self {
            FieldData::Strings { values, rows, .. } => rows[row as usize]
                .iter()
                .map(|&v| values.id(v).to_string())
                .collect(),
            FieldData::Numbers(v) => {
                let x = v[row as usize];
                if x.is_nan() {
                    vec![]
                } else {
                    vec![x.to_string()]
                }
            }
        }
    }
}

/// The request a filter is applied for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Subject<'a> {
    pub user: Option<&'a str>,
    /// The item of a related-items request (`CurrentItem`).
    pub item: Option<&'a str>,
    /// Events posted since the data was loaded, newest last: (event type, item id).
    pub recent_events: &'a [(String, String)],
}

/// Filter inputs for one solution version's items and users.
pub struct FilterData {
    items: IdMap,
    users: IdMap,
    item_fields: HashMap<String, FieldData>,
    user_fields: HashMap<String, FieldData>,
    /// Lower-cased event types.
    event_types: IdMap,
    /// Per user (by index): (event type, item), at most [`EVENTS_PER_TYPE`] per type.
    user_events: Vec<Vec<(u32, u32)>>,
    cache: Mutex<HashMap<u64, Arc<FixedBitSet>>>,
}

/// A dataset frame and its schema.
pub type Frame<'a> = (&'a DataFrame, &'a Schema);

impl FilterData {
    /// Indexes the datasets by the solution's `items` and `users`; rows
    /// for ids the solution does not know are left out (they cannot be
    /// recommended, or have no scores).
    pub fn build(
        items: &IdMap,
        users: &IdMap,
        items_frame: Option<Frame>,
        users_frame: Option<Frame>,
        interactions: Option<&DataFrame>,
    ) -> PolarsResult<FilterData> {
        let fields = |frame: Option<Frame>,
                      key: &str,
                      map: &IdMap|
         -> PolarsResult<HashMap<String, FieldData>> {
            let mut out = HashMap::new();
            let Some((df, schema)) = frame else {
                return Ok(out);
            };
            let ids = df.column(key)?.str()?;
            let index: Vec<Option<u32>> =
                ids.iter().map(|id| id.and_then(|id| map.get(id))).collect();
            for f in &schema.fields {
                if f.name == key || f.textual || f.field_type == FieldType::Boolean {
                    continue;
                }
                if let Ok(c) = df.column(&f.name) {
                    out.insert(
                        f.name.clone(),
                        FieldData::build(c, f.field_type, f.categorical, &index, map.len())?,
                    );
                }
            }
            Ok(out)
        };
        let item_fields = fields(items_frame, schema::ITEM_ID, items)?;
        let user_fields = fields(users_frame, schema::USER_ID, users)?;
        let mut event_types = IdMap::default();
        let mut user_events = vec![Vec::new(); users.len()];
        if let Some(df) = interactions {
            let sorted = df.sort(
                [schema::TIMESTAMP],
                SortMultipleOptions::default().with_order_descending(true),
            )?;
            let u = sorted.column(schema::USER_ID)?.str()?;
            let i = sorted.column(schema::ITEM_ID)?.str()?;
            let et = sorted
                .column(schema::EVENT_TYPE)
                .ok()
                .map(|c| c.str().cloned())
                .transpose()?;
            let mut counts: HashMap<(u32, u32), usize> = HashMap::new();
            for row in 0..sorted.height() {
                let (Some(user), Some(item)) = (
                    u.get(row).and_then(|x| users.get(x)),
                    i.get(row).and_then(|x| items.get(x)),
                ) else {
                    continue;
                };
                let t = et
                    .as_ref()
                    .and_then(|c| c.get(row))
                    .unwrap_or("")
                    .to_lowercase();
                let t = event_types.intern(&t);
                let n = counts.entry((user, t)).or_insert(0);
                if *n < EVENTS_PER_TYPE {
                    *n += 1;
                    user_events[user as usize].push((t, item));
                }
            }
        }
        Ok(FilterData {
            items: items.clone(),
            users: users.clone(),
            item_fields,
            user_fields,
            event_types,
            user_events,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Allowed items for an ItemID filter, or why the request cannot be filtered.
    pub fn item_mask(
        &self,
        filter: &Filter,
        values: &BTreeMap<String, Vec<String>>,
        subject: &Subject,
    ) -> Result<FixedBitSet, String> {
        if filter.target() != Target::ItemId {
            return Err(
                "this filter selects users (UserID); recommendations need an ItemID filter".into(),
            );
        }
        self.combine(filter, values, subject, self.items.len())
    }

    /// Allowed users for a UserID filter (segments).
    pub fn user_mask(
        &self,
        filter: &Filter,
        values: &BTreeMap<String, Vec<String>>,
    ) -> Result<FixedBitSet, String> {
        if filter.target() != Target::UserId {
            return Err("this filter selects items (ItemID); segments need a UserID filter".into());
        }
        self.combine(filter, values, &Subject::default(), self.users.len())
    }

    fn combine(
        &self,
        filter: &Filter,
        values: &BTreeMap<String, Vec<String>>,
        subject: &Subject,
        len: usize,
    ) -> Result<FixedBitSet, String> {
        let mut include: Option<FixedBitSet> = None;
        let mut exclude = FixedBitSet::with_capacity(len);
        for (n, e) in filter.expressions.iter().enumerate() {
            if let Some(w) = &e.when
                && !self.current_user_matches(w, values, subject)?
            {
                continue;
            }
            let m = match (e.target, e.source()) {
                (Target::ItemId, Source::Items) => {
                    let key = cache_key(filter, n, values, subject);
                    let cached = self.cache.lock().expect("filter cache").get(&key).cloned();
                    match cached {
                        Some(m) => m,
                        None => {
                            let m = Arc::new(self.evaluate(e, values, subject, len)?);
                            let mut cache = self.cache.lock().expect("filter cache");
                            if cache.len() >= CACHE_ENTRIES {
                                cache.clear();
                            }
                            cache.insert(key, m.clone());
                            m
                        }
                    }
                }
                _ => Arc::new(self.evaluate(e, values, subject, len)?),
            };
            match e.action {
                Action::Include => match &mut include {
                    Some(i) => i.union_with(&m),
                    None => include = Some((*m).clone()),
                },
                Action::Exclude => exclude.union_with(&m),
            }
        }
        let mut allowed = include.unwrap_or_else(|| {
            let mut all = FixedBitSet::with_capacity(len);
            all.insert_range(..);
            all
        });
        allowed.difference_with(&exclude);
        Ok(allowed)
    }

    /// OR of AND-groups; a condition with a missing parameter matches
    /// nothing in an EXCLUDE expression and is an error in an INCLUDE one.
    fn evaluate(
        &self,
        e: &Expression,
        values: &BTreeMap<String, Vec<String>>,
        subject: &Subject,
        len: usize,
    ) -> Result<FixedBitSet, String> {
        let mut any = FixedBitSet::with_capacity(len);
        for group in &e.any_of {
            let mut all: Option<FixedBitSet> = None;
            for c in group {
                let m = match resolve(c, values, subject, self)? {
                    Some(wanted) => self.condition(e.target, c, &wanted, subject, len)?,
                    None if e.action == Action::Exclude => FixedBitSet::with_capacity(len),
                    None => {
                        let missing = missing_params(c, values);
                        return Err(format!(
                            "filterValues: missing {}, which this filter's INCLUDE expression needs",
                            missing.join(", ")
                        ));
                    }
                };
                match &mut all {
                    Some(a) => a.intersect_with(&m),
                    None => all = Some(m),
                }
            }
            if let Some(a) = all {
                any.union_with(&a);
            }
        }
        Ok(any)
    }

    fn condition(
        &self,
        target: Target,
        c: &Condition,
        wanted: &[Wanted],
        subject: &Subject,
        len: usize,
    ) -> Result<FixedBitSet, String> {
        let strings: Vec<String> = wanted
            .iter()
            .filter_map(|w| match w {
                Wanted::Value(v) => Some(v.clone()),
                Wanted::All => None,
            })
            .collect();
        match c.source {
            Source::Items | Source::Users => {
                let fields = if c.source == Source::Items {
                    &self.item_fields
                } else {
                    &self.user_fields
                };
                match fields.get(&c.field) {
                    Some(f) => f
                        .matching(c.op, &strings, len)
                        .map_err(|e| format!("{}.{}: {e}", c.source, c.field)),
                    // No such data loaded: nothing has a value, so only NOT IN holds.
                    None => {
                        let mut m = FixedBitSet::with_capacity(len);
                        if c.op == Op::NotIn {
                            m.insert_range(..);
                        }
                        Ok(m)
                    }
                }
            }
            Source::Interactions => {
                let every = wanted.iter().any(|w| matches!(w, Wanted::All));
                let lower: Vec<String> = strings.iter().map(|s| s.to_lowercase()).collect();
                let type_ok = |t: &str| {
                    let listed = every || lower.iter().any(|w| w == t);
                    if c.op == Op::NotIn { !listed } else { listed }
                };
                let mut m = FixedBitSet::with_capacity(len);
                match target {
                    Target::ItemId => {
                        if let Some(u) = subject.user.and_then(|u| self.users.get(u)) {
                            for &(t, i) in &self.user_events[u as usize] {
                                if type_ok(self.event_types.id(t)) {
                                    m.insert(i as usize);
                                }
                            }
                        }
                        for (t, item) in subject.recent_events {
                            if type_ok(&t.to_lowercase())
                                && let Some(i) = self.items.get(item)
                            {
                                m.insert(i as usize);
                            }
                        }
                    }
                    Target::UserId => {
                        for (u, events) in self.user_events.iter().enumerate() {
                            if events.iter().any(|&(t, _)| type_ok(self.event_types.id(t))) {
                                m.insert(u);
                            }
                        }
                    }
                }
                Ok(m)
            }
            Source::CurrentUser => unreachable!("IF clauses are tested by current_user_matches"),
        }
    }

    fn current_user_matches(
        &self,
        c: &Condition,
        values: &BTreeMap<String, Vec<String>>,
        subject: &Subject,
    ) -> Result<bool, String> {
        let Some(wanted) = resolve(c, values, subject, self)? else {
            return Ok(false);
        };
        let strings: Vec<String> = wanted
            .into_iter()
            .filter_map(|w| match w {
                Wanted::Value(v) => Some(v),
                Wanted::All => None,
            })
            .collect();
        Ok(
            match (
                subject.user.and_then(|u| self.users.get(u)),
                self.user_fields.get(&c.field),
            ) {
                (Some(u), Some(f)) => f.row_matches(u, c.op, &strings),
                _ => false,
            },
        )
    }
}

#[derive(Debug, Clone)]
enum Wanted {
    Value(String),
    All,
}

/// The condition's values with parameters and `CurrentItem` filled in;
/// `None` when a parameter is missing from the request.
fn resolve(
    c: &Condition,
    values: &BTreeMap<String, Vec<String>>,
    subject: &Subject,
    data: &FilterData,
) -> Result<Option<Vec<Wanted>>, String> {
    let mut out = Vec::new();
    for v in &c.values {
        match v {
            Value::Str(s) => out.push(Wanted::Value(s.clone())),
            Value::Num(n) => out.push(Wanted::Value(n.to_string())),
            Value::All => out.push(Wanted::All),
            Value::Param(p) => match values.get(p) {
                Some(vs) => out.extend(vs.iter().cloned().map(Wanted::Value)),
                None => return Ok(None),
            },
            Value::CurrentItem(f) => {
                let item = subject.item.ok_or_else(|| {
                    format!(
                        "CurrentItem.{f} needs an itemId in the request (a related-items campaign)"
                    )
                })?;
                if let (Some(i), Some(field)) = (data.items.get(item), data.item_fields.get(f)) {
                    out.extend(field.row_values(i).into_iter().map(Wanted::Value));
                }
            }
        }
    }
    Ok(Some(out))
}

fn missing_params(c: &Condition, values: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    c.values
        .iter()
        .filter_map(|v| match v {
            Value::Param(p) if !values.contains_key(p) => Some(format!("${p}")),
            _ => None,
        })
        .collect()
}

/// Identifies an item expression's mask: the expression, the parameter
/// values it reads and the current item.
fn cache_key(
    filter: &Filter,
    expression: usize,
    values: &BTreeMap<String, Vec<String>>,
    subject: &Subject,
) -> u64 {
    let mut h = DefaultHasher::new();
    filter.id.hash(&mut h);
    expression.hash(&mut h);
    let e = &filter.expressions[expression];
    for c in e.any_of.iter().flatten() {
        for v in &c.values {
            match v {
                Value::Param(p) => values.get(p).hash(&mut h),
                Value::CurrentItem(_) => subject.item.hash(&mut h),
                _ => {}
            }
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::schemas;
    use crate::schema::DatasetType;

    /// Items a..e; users u1 (age 30, gold), u2 (age 15).
    fn data() -> FilterData {
        let items = IdMap::from_ids(["a", "b", "c", "d", "e"].map(String::from).to_vec());
        let users = IdMap::from_ids(["u1", "u2"].map(String::from).to_vec());
        let item_df = df!(
            "ITEM_ID" => ["a", "b", "c", "d", "zz"],
            "GENRE" => [Some("Comedy|Drama"), Some("Horror"), Some("Comedy"), None, Some("Comedy")],
            "PRICE" => [Some(5.0), Some(12.0), None, Some(1.0), Some(3.0)],
            "DESCRIPTION" => ["x", "y", "z", "w", "v"],
        )
        .unwrap();
        let user_df =
            df!("USER_ID" => ["u1", "u2"], "AGE" => [30, 15], "TIER" => ["gold", "basic"]).unwrap();
        let inter = df!(
            "USER_ID" => ["u1", "u1", "u1", "u2"],
            "ITEM_ID" => ["a", "b", "e", "c"],
            "EVENT_TYPE" => ["Watch", "click", "watch", "click"],
            "TIMESTAMP" => [1i64, 2, 3, 4],
        )
        .unwrap();
        let s = schemas();
        FilterData::build(
            &items,
            &users,
            Some((&item_df, &s[&DatasetType::Items])),
            Some((&user_df, &s[&DatasetType::Users])),
            Some(&inter),
        )
        .unwrap()
    }

    fn filter(text: &str) -> Filter {
        let mut f = Filter::parse(text).unwrap();
        assert_eq!(f.check(&schemas()), vec![]);
        f
    }

    fn allowed(
        d: &FilterData,
        text: &str,
        values: &[(&str, &str)],
        user: &str,
        item: Option<&str>,
    ) -> Result<Vec<&'static str>, String> {
        let raw: BTreeMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let values = super::super::parse_filter_values(&raw)?;
        let subject = Subject {
            user: Some(user),
            item,
            recent_events: &[],
        };
        let m = d.item_mask(&filter(text), &values, &subject)?;
        Ok(["a", "b", "c", "d", "e"]
            .into_iter()
            .enumerate()
            .filter(|(i, _)| m.contains(*i))
            .map(|(_, s)| s)
            .collect())
    }

    #[test]
    fn item_conditions() {
        let d = data();
        let a = |t: &str, v: &[(&str, &str)]| allowed(&d, t, v, "u1", None).unwrap();
        assert_eq!(
            a(r#"INCLUDE ItemID WHERE Items.GENRE IN ("Comedy")"#, &[]),
            ["a", "c"]
        );
        assert_eq!(
            a(r#"EXCLUDE ItemID WHERE Items.GENRE IN ("Comedy")"#, &[]),
            ["b", "d", "e"]
        );
        assert_eq!(
            a(r#"INCLUDE ItemID WHERE Items.GENRE NOT IN ("Comedy")"#, &[]),
            ["b", "d", "e"]
        );
        assert_eq!(
            a(r#"INCLUDE ItemID WHERE Items.PRICE <= $P"#, &[("P", "5")]),
            ["a", "d"]
        );
        assert_eq!(
            a(
                r#"INCLUDE ItemID WHERE Items.GENRE IN ($G)"#,
                &[("G", r#""Horror","Drama""#)]
            ),
            ["a", "b"]
        );
        assert_eq!(
            a(
                r#"INCLUDE ItemID WHERE Items.GENRE IN ("Comedy") AND Items.PRICE > 2 OR Items.GENRE IN ("Horror")"#,
                &[]
            ),
            ["a", "b"]
        );
        // Includes are unioned, then excludes removed.
        assert_eq!(
            a(
                r#"INCLUDE ItemID WHERE Items.GENRE IN ("Horror") | INCLUDE ItemID WHERE Items.PRICE < 2 | EXCLUDE ItemID WHERE Items.PRICE > 10"#,
                &[]
            ),
            ["d"]
        );
        // A missing parameter: an INCLUDE needs it, an EXCLUDE ignores it.
        let e = allowed(
            &d,
            r#"INCLUDE ItemID WHERE Items.GENRE IN ($G)"#,
            &[],
            "u1",
            None,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "filterValues: missing $G, which this filter's INCLUDE expression needs"
        );
        assert_eq!(
            a(r#"EXCLUDE ItemID WHERE Items.GENRE IN ($G)"#, &[]),
            ["a", "b", "c", "d", "e"]
        );
        let e = allowed(
            &d,
            r#"INCLUDE ItemID WHERE Items.PRICE < $P"#,
            &[("P", "cheap")],
            "u1",
            None,
        )
        .unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        // CurrentItem: items sharing a genre with the item asked about.
        assert_eq!(
            allowed(
                &d,
                r#"INCLUDE ItemID WHERE Items.GENRE IN (CurrentItem.GENRE)"#,
                &[],
                "u1",
                Some("c")
            )
            .unwrap(),
            ["a", "c"]
        );
    }

    #[test]
    fn interaction_conditions_read_the_users_events() {
        let d = data();
        let a = |t: &str, user: &str| allowed(&d, t, &[], user, None).unwrap();
        // Event types match case-insensitively.
        assert_eq!(
            a(
                r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("WATCH")"#,
                "u1"
            ),
            ["b", "c", "d"]
        );
        assert_eq!(
            a(
                r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (*)"#,
                "u1"
            ),
            ["c", "d"]
        );
        assert_eq!(
            a(
                r#"INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#,
                "u2"
            ),
            ["c"]
        );
        assert_eq!(
            a(
                r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (*)"#,
                "nobody"
            ),
            ["a", "b", "c", "d", "e"]
        );
        // Events posted since the data was loaded count too.
        let recent = [("click".to_string(), "d".to_string())];
        let subject = Subject {
            user: Some("u2"),
            item: None,
            recent_events: &recent,
        };
        let m = d
            .item_mask(
                &filter(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#),
                &BTreeMap::new(),
                &subject,
            )
            .unwrap();
        assert_eq!(m.ones().collect::<Vec<_>>(), [0, 1, 4]);
    }

    #[test]
    fn if_current_user_applies_an_expression_to_matching_users_only() {
        let d = data();
        let t = r#"EXCLUDE ItemID WHERE Items.PRICE > 10 IF CurrentUser.AGE < $ADULT"#;
        assert_eq!(
            allowed(&d, t, &[("ADULT", "18")], "u2", None).unwrap(),
            ["a", "c", "d", "e"]
        );
        assert_eq!(
            allowed(&d, t, &[("ADULT", "18")], "u1", None).unwrap(),
            ["a", "b", "c", "d", "e"]
        );
    }

    #[test]
    fn user_filters_select_segment_members() {
        let d = data();
        let m = d
            .user_mask(
                &filter(r#"INCLUDE UserID WHERE Users.AGE >= 18"#),
                &BTreeMap::new(),
            )
            .unwrap();
        assert_eq!(m.ones().collect::<Vec<_>>(), [0]);
        let m = d
            .user_mask(
                &filter(r#"EXCLUDE UserID WHERE Users.TIER IN ("gold")"#),
                &BTreeMap::new(),
            )
            .unwrap();
        assert_eq!(m.ones().collect::<Vec<_>>(), [1]);
        assert!(
            d.item_mask(
                &filter(r#"EXCLUDE UserID WHERE Users.TIER IN ("gold")"#),
                &BTreeMap::new(),
                &Subject::default()
            )
            .is_err()
        );
    }
}

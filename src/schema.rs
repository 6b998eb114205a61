//! Dataset schemas: the managed service's Avro record JSON, accepted as is, and
//! the same shape written inline in a pipeline file. A schema is checked against
//! the rules of its dataset type (interactions, items, users) before any data is
//! read, so a wrong schema fails at `recflow validate`, not in the middle of a run.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The dataset types of a dataset group: the recommender's three, and the
/// forecasting sibling's target and related time series (item metadata is
/// the `items` dataset for both).
// Deserialised through a string so that error paths can name the key
// (`datasets.target_time_series.fill`), which serde_path_to_error cannot do
// for an enum key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum DatasetType {
    Interactions,
    Items,
    Users,
    /// `item_id, timestamp, target_value`: the history to forecast.
    TargetTimeSeries,
    /// `item_id, timestamp` and numeric columns known into the future
    /// (price, promotion flags).
    RelatedTimeSeries,
}

impl TryFrom<String> for DatasetType {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        DatasetType::parse(&s).ok_or_else(|| {
            let known: Vec<&str> = DatasetType::ALL.iter().map(|t| t.as_str()).collect();
            format!(
                "unknown dataset type {s:?}; expected one of {}",
                known.join(", ")
            )
        })
    }
}

impl DatasetType {
    pub const ALL: [DatasetType; 5] = [
        Self::Interactions,
        Self::Items,
        Self::Users,
        Self::TargetTimeSeries,
        Self::RelatedTimeSeries,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactions => "interactions",
            Self::Items => "items",
            Self::Users => "users",
            Self::TargetTimeSeries => "target_time_series",
            Self::RelatedTimeSeries => "related_time_series",
        }
    }

    pub fn is_time_series(self) -> bool {
        matches!(self, Self::TargetTimeSeries | Self::RelatedTimeSeries)
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The id column of a record: a same-id record replaces the old one in
    /// INCREMENTAL imports of items and users.
    pub fn key_field(self) -> Option<&'static str> {
        match self {
            Self::Interactions | Self::TargetTimeSeries | Self::RelatedTimeSeries => None,
            Self::Items => Some(ITEM_ID),
            Self::Users => Some(USER_ID),
        }
    }

    /// The columns that identify a record: a same-key record replaces the
    /// old one in INCREMENTAL imports (a corrected value for an item's
    /// period replaces the old value). Interactions have none: exact
    /// duplicates are dropped.
    pub fn key_fields(self) -> &'static [&'static str] {
        match self {
            Self::Interactions => &[],
            Self::Items => &[ITEM_ID],
            Self::Users => &[USER_ID],
            Self::TargetTimeSeries | Self::RelatedTimeSeries => &[TS_ITEM_ID, TS_TIMESTAMP],
        }
    }

    /// The schema a time series dataset gets when its pipeline gives none.
    pub fn default_schema(self) -> Option<Schema> {
        let field = |name: &str, field_type| Field {
            name: name.into(),
            field_type,
            nullable: false,
            categorical: false,
            textual: false,
        };
        (self == Self::TargetTimeSeries).then(|| Schema {
            dataset_type: self,
            fields: vec![
                field(TS_ITEM_ID, FieldType::String),
                field(TS_TIMESTAMP, FieldType::Long),
                field(TARGET_VALUE, FieldType::Double),
            ],
        })
    }
}

impl fmt::Display for DatasetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const USER_ID: &str = "USER_ID";
pub const ITEM_ID: &str = "ITEM_ID";
pub const TIMESTAMP: &str = "TIMESTAMP";
pub const EVENT_TYPE: &str = "EVENT_TYPE";
pub const EVENT_VALUE: &str = "EVENT_VALUE";
pub const IMPRESSION: &str = "IMPRESSION";
pub const RECOMMENDATION_ID: &str = "RECOMMENDATION_ID";
pub const EVENT_ATTRIBUTION_SOURCE: &str = "EVENT_ATTRIBUTION_SOURCE";
pub const CREATION_TIMESTAMP: &str = "CREATION_TIMESTAMP";
/// Time series datasets use the forecasting service's lower-case names.
pub const TS_ITEM_ID: &str = "item_id";
pub const TS_TIMESTAMP: &str = "timestamp";
pub const TARGET_VALUE: &str = "target_value";

/// Ids are strings of at most this many characters (the managed service's limit).
pub const MAX_ID_CHARS: usize = 256;
/// The one textual field of an items schema holds at most this many characters.
pub const MAX_TEXTUAL_CHARS: usize = 20_000;

/// A primitive Avro type the managed service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Int,
    Long,
    Float,
    Double,
    Boolean,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Long => "long",
            Self::Float => "float",
            Self::Double => "double",
            Self::Boolean => "boolean",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "int" => Self::Int,
            "long" => Self::Long,
            "float" => Self::Float,
            "double" => Self::Double,
            "boolean" => Self::Boolean,
            _ => return None,
        })
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::Long | Self::Float | Self::Double)
    }
}

/// An Avro field type as written: `"string"` or a union with null, `["null", "string"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AvroType {
    Primitive(String),
    Union(Vec<String>),
}

/// One field of an Avro record schema, as the managed service writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvroField {
    /// Column name, e.g. `USER_ID`, `GENRES`.
    pub name: String,
    /// `string`, `int`, `long`, `float`, `double`, `boolean`, or a union with
    /// `null` such as `["null", "string"]` for optional values.
    #[serde(rename = "type")]
    pub field_type: AvroType,
    /// String field holding category values, several separated by `|`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub categorical: bool,
    /// Free-text field (one per items schema), at most 20,000 characters.
    #[serde(default, skip_serializing_if = "is_false")]
    pub textual: bool,
    /// Avro documentation string; kept, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Avro default value; kept, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An Avro record schema: the managed service's schema JSON, or the same
/// members written in YAML. `fields` is the only required member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvroSchema {
    /// Always `record` when given.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// The columns, in the order of a headerless CSV file.
    pub fields: Vec<AvroField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A checked field: its type resolved, nullability explicit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub field_type: FieldType,
    pub nullable: bool,
    #[serde(default)]
    pub categorical: bool,
    #[serde(default)]
    pub textual: bool,
}

impl Field {
    /// Id fields must be non-empty strings of at most [`MAX_ID_CHARS`].
    pub fn is_id(&self) -> bool {
        matches!(
            self.name.as_str(),
            USER_ID | ITEM_ID | RECOMMENDATION_ID | TS_ITEM_ID
        )
    }

    /// Fields holding UNIX seconds; datetimes are converted to them on import.
    pub fn is_timestamp(&self) -> bool {
        matches!(
            self.name.as_str(),
            TIMESTAMP | CREATION_TIMESTAMP | TS_TIMESTAMP
        )
    }
}

/// A schema checked against the rules of its dataset type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub dataset_type: DatasetType,
    pub fields: Vec<Field>,
}

impl Schema {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }

    /// Builds a checked schema, collecting every problem. Each problem names
    /// the field (`fields[2] (GENRES)`) so the caller can prefix its location.
    pub fn from_avro(dataset_type: DatasetType, avro: &AvroSchema) -> Result<Schema, Vec<String>> {
        let mut problems = Vec::new();
        if let Some(t) = &avro.record_type
            && t != "record"
        {
            problems.push(format!("type: expected \"record\", found {t:?}"));
        }
        let mut fields: Vec<Field> = Vec::new();
        for (i, f) in avro.fields.iter().enumerate() {
            let at = format!("fields[{i}] ({})", f.name);
            match resolve_type(&f.field_type) {
                Ok((field_type, nullable)) => {
                    if fields.iter().any(|g| g.name == f.name) {
                        problems.push(format!("{at}: duplicate field name"));
                    }
                    if (f.categorical || f.textual) && field_type != FieldType::String {
                        problems.push(format!(
                            "{at}: only string fields can be categorical or textual, this one is {}",
                            field_type.as_str()
                        ));
                    }
                    if f.categorical && f.textual {
                        problems.push(format!("{at}: a field is categorical or textual, not both"));
                    }
                    fields.push(Field {
                        name: f.name.clone(),
                        field_type,
                        nullable,
                        categorical: f.categorical,
                        textual: f.textual,
                    });
                }
                Err(e) => problems.push(format!("{at}: {e}")),
            }
        }
        let schema = Schema {
            dataset_type,
            fields,
        };
        if problems.is_empty() {
            problems.extend(schema.check_rules());
        }
        if problems.is_empty() {
            Ok(schema)
        } else {
            Err(problems)
        }
    }

    /// The managed service's rules per dataset type.
    fn check_rules(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut require = |name: &str, ty: FieldType| match self.field(name) {
            None => problems.push(format!(
                "{} schema is missing the required field {name} ({})",
                self.dataset_type,
                ty.as_str()
            )),
            Some(f) if f.field_type != ty => problems.push(format!(
                "field {name} must be of type {}, found {}",
                ty.as_str(),
                f.field_type.as_str()
            )),
            Some(f) if f.nullable => problems.push(format!(
                "field {name} is required and cannot be a union with null"
            )),
            Some(_) => {}
        };
        match self.dataset_type {
            DatasetType::Interactions => {
                require(USER_ID, FieldType::String);
                require(ITEM_ID, FieldType::String);
                require(TIMESTAMP, FieldType::Long);
            }
            DatasetType::Items => require(ITEM_ID, FieldType::String),
            DatasetType::Users => require(USER_ID, FieldType::String),
            DatasetType::TargetTimeSeries | DatasetType::RelatedTimeSeries => {
                require(TS_ITEM_ID, FieldType::String);
                require(TS_TIMESTAMP, FieldType::Long);
            }
        }
        if self.dataset_type.is_time_series() {
            problems.extend(self.time_series_rules());
            return problems;
        }
        let typed = |name: &str, types: &[FieldType]| -> Option<String> {
            let f = self.field(name)?;
            (!types.contains(&f.field_type)).then(|| {
                let allowed: Vec<_> = types.iter().map(|t| t.as_str()).collect();
                format!(
                    "field {name} must be of type {}, found {}",
                    allowed.join(" or "),
                    f.field_type.as_str()
                )
            })
        };
        problems.extend(typed(EVENT_TYPE, &[FieldType::String]));
        problems.extend(typed(
            EVENT_VALUE,
            &[
                FieldType::Float,
                FieldType::Double,
                FieldType::Int,
                FieldType::Long,
            ],
        ));
        problems.extend(typed(IMPRESSION, &[FieldType::String]));
        problems.extend(typed(RECOMMENDATION_ID, &[FieldType::String]));
        problems.extend(typed(CREATION_TIMESTAMP, &[FieldType::Long]));
        // An items dataset with only ITEM_ID still defines the catalog (cold
        // items included), so it is accepted; a users dataset without a
        // metadata field would say nothing.
        if self.dataset_type == DatasetType::Users {
            let key = self.dataset_type.key_field().unwrap_or_default();
            if !self.fields.iter().any(|f| f.name != key) {
                problems.push(format!(
                    "{} schema needs at least one metadata field besides {key}",
                    self.dataset_type
                ));
            }
        }
        let textual = self.fields.iter().filter(|f| f.textual).count();
        if textual > 0 && self.dataset_type != DatasetType::Items {
            problems.push("only an items schema can have a textual field".to_string());
        }
        if textual > 1 {
            problems.push(format!(
                "an items schema has at most one textual field, found {textual}"
            ));
        }
        problems
    }
}

impl Schema {
    /// Target series: exactly `item_id, timestamp, target_value` (numeric).
    /// Related series: numeric (or boolean) columns besides the two keys.
    fn time_series_rules(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let extra = self
            .fields
            .iter()
            .filter(|f| f.name != TS_ITEM_ID && f.name != TS_TIMESTAMP);
        match self.dataset_type {
            DatasetType::TargetTimeSeries => {
                match self.field(TARGET_VALUE) {
                    None => problems.push(format!(
                        "target_time_series schema is missing the required field {TARGET_VALUE} (double)"
                    )),
                    Some(f) if !f.field_type.is_numeric() => problems.push(format!(
                        "field {TARGET_VALUE} must be numeric (int, long, float or double), found {}",
                        f.field_type.as_str()
                    )),
                    Some(_) => {}
                }
                for f in extra.filter(|f| f.name != TARGET_VALUE) {
                    problems.push(format!(
                        "field {}: a target_time_series has only item_id, timestamp and \
                         target_value; forecast dimensions (store, region) go into item_id, \
                         e.g. with `sql:` in the import step",
                        f.name
                    ));
                }
            }
            _ => {
                let mut any = false;
                for f in extra {
                    any = true;
                    if !(f.field_type.is_numeric() || f.field_type == FieldType::Boolean) {
                        problems.push(format!(
                            "field {}: related time series columns are numeric or boolean, found {}",
                            f.name,
                            f.field_type.as_str()
                        ));
                    }
                }
                if !any {
                    problems.push(
                        "related_time_series schema needs at least one column besides item_id and timestamp (e.g. price)".into(),
                    );
                }
            }
        }
        problems
    }
}

fn resolve_type(t: &AvroType) -> Result<(FieldType, bool), String> {
    let unknown = |name: &str| {
        format!(
            "unknown type {name:?}; use string, int, long, float, double or boolean, \
             or a union with null such as [\"null\", \"string\"]"
        )
    };
    match t {
        AvroType::Primitive(name) => FieldType::parse(name)
            .map(|ty| (ty, false))
            .ok_or_else(|| unknown(name)),
        AvroType::Union(members) => {
            let non_null: Vec<&String> = members.iter().filter(|m| *m != "null").collect();
            match non_null.as_slice() {
                [one] if members.len() == 2 => FieldType::parse(one)
                    .map(|ty| (ty, true))
                    .ok_or_else(|| unknown(one)),
                _ => Err(format!(
                    "a union must be [\"null\", <type>], found {members:?}"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro(json: &str) -> AvroSchema {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn accepts_the_managed_services_interactions_schema_as_is() {
        let s = avro(
            r#"{"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
                "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                           {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}],
                "version": "1.0"}"#,
        );
        let schema = Schema::from_avro(DatasetType::Interactions, &s).unwrap();
        assert_eq!(
            schema.names().collect::<Vec<_>>(),
            ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP"]
        );
    }

    #[test]
    fn union_with_null_makes_a_nullable_field() {
        let s = avro(
            r#"{"fields": [{"name": "ITEM_ID", "type": "string"},
                           {"name": "GENRES", "type": ["null", "string"], "categorical": true}]}"#,
        );
        let schema = Schema::from_avro(DatasetType::Items, &s).unwrap();
        let genres = schema.field("GENRES").unwrap();
        assert!(genres.nullable && genres.categorical);
        assert_eq!(genres.field_type, FieldType::String);
    }

    #[test]
    fn reports_every_rule_broken() {
        let s = avro(
            r#"{"fields": [{"name": "USER_ID", "type": "long"}, {"name": "TIMESTAMP", "type": "strin"},
                           {"name": "PRICE", "type": "float", "categorical": true}]}"#,
        );
        let problems = Schema::from_avro(DatasetType::Interactions, &s).unwrap_err();
        let all = problems.join("\n");
        assert!(
            all.contains("fields[1] (TIMESTAMP): unknown type \"strin\""),
            "{all}"
        );
        assert!(
            all.contains("fields[2] (PRICE): only string fields can be categorical"),
            "{all}"
        );
    }

    #[test]
    fn interactions_need_user_item_and_timestamp() {
        let s = avro(
            r#"{"fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"}]}"#,
        );
        let problems = Schema::from_avro(DatasetType::Interactions, &s).unwrap_err();
        assert_eq!(
            problems,
            ["interactions schema is missing the required field TIMESTAMP (long)"]
        );
    }

    #[test]
    fn items_with_only_item_id_define_a_catalog_but_users_need_metadata() {
        let s = avro(r#"{"fields": [{"name": "ITEM_ID", "type": "string"}]}"#);
        let schema = Schema::from_avro(DatasetType::Items, &s).unwrap();
        assert_eq!(schema.fields.len(), 1);
        let s = avro(r#"{"fields": [{"name": "USER_ID", "type": "string"}]}"#);
        let problems = Schema::from_avro(DatasetType::Users, &s).unwrap_err();
        assert_eq!(
            problems,
            ["users schema needs at least one metadata field besides USER_ID"]
        );
    }

    #[test]
    fn at_most_one_textual_field() {
        let s = avro(
            r#"{"fields": [{"name": "ITEM_ID", "type": "string"},
               {"name": "A", "type": "string", "textual": true}, {"name": "B", "type": "string", "textual": true}]}"#,
        );
        let problems = Schema::from_avro(DatasetType::Items, &s).unwrap_err();
        assert_eq!(
            problems,
            ["an items schema has at most one textual field, found 2"]
        );
    }
}

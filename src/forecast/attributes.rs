//! Item metadata as static features of the global model (the managed
//! service's ITEM_METADATA): the `items` dataset's fields, one value per
//! item. Numbers and booleans are used as they are; a string field is
//! categorical, its feature being the index of the item's level among the
//! field's sorted levels. The booster splits on that index like on any
//! number, and with at most `MAX_LEVELS` levels each level gets its own bin,
//! so a few splits isolate any level.
//!
//! Textual fields (free text) and string fields with more levels than that
//! (an identifier, a title) say nothing a tree can split on and are left
//! out, with the reason reported.

use std::collections::{BTreeSet, HashMap};

use polars::prelude::*;

use super::global::Attribute;
use crate::schema::{FieldType, ITEM_ID, Schema};

/// More levels than the booster has bins: beyond this, levels would share
/// bins in an arbitrary (alphabetical) grouping.
pub const MAX_LEVELS: usize = 255;

/// The items' attributes, aligned with a panel's items.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemAttributes {
    pub attributes: Vec<Attribute>,
    /// Per panel item, one value per attribute (NaN when the item has no
    /// metadata row or the field is empty).
    pub values: Vec<Vec<f64>>,
    /// Fields left out, and why.
    pub skipped: Vec<(String, String)>,
}

impl ItemAttributes {
    /// Reads the `items` frame for `items` (the panel's item ids). A row
    /// whose `ITEM_ID` is not a panel item is ignored; an item without a
    /// row gets NaN everywhere.
    pub fn build(frame: &DataFrame, schema: &Schema, items: &[String]) -> anyhow::Result<Self> {
        let ids: Vec<Option<String>> = frame
            .column(ITEM_ID)
            .map_err(|_| anyhow::anyhow!("the items dataset has no column {ITEM_ID}"))?
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect();
        let index: HashMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        // The frame row of each panel item (the last, if an id repeats).
        let mut row_of = vec![None; items.len()];
        for (r, id) in ids.iter().enumerate() {
            if let Some(&i) = id.as_deref().and_then(|id| index.get(id)) {
                row_of[i] = Some(r);
            }
        }
        let mut out = ItemAttributes {
            attributes: Vec::new(),
            values: vec![Vec::new(); items.len()],
            skipped: Vec::new(),
        };
        for field in schema.fields.iter().filter(|f| f.name != ITEM_ID) {
            let Ok(column) = frame.column(&field.name) else {
                continue;
            };
            let (attribute, by_row) = match field.field_type {
                _ if field.textual => {
                    out.skip(&field.name, "textual (free text)");
                    continue;
                }
                FieldType::String => {
                    let cells: Vec<Option<String>> = column
                        .cast(&DataType::String)?
                        .str()?
                        .iter()
                        .map(|v| v.filter(|v| !v.is_empty()).map(str::to_string))
                        .collect();
                    // Levels of the items forecast, not of the whole catalog.
                    let levels: BTreeSet<&str> = row_of
                        .iter()
                        .flatten()
                        .filter_map(|r| cells[*r].as_deref())
                        .collect();
                    if levels.len() > MAX_LEVELS {
                        out.skip(
                            &field.name,
                            &format!("{} levels, more than {MAX_LEVELS}", levels.len()),
                        );
                        continue;
                    }
                    let levels: Vec<String> = levels.into_iter().map(str::to_string).collect();
                    let code: HashMap<&str, f64> = levels
                        .iter()
                        .enumerate()
                        .map(|(k, l)| (l.as_str(), k as f64))
                        .collect();
                    let by_row: Vec<f64> = cells
                        .iter()
                        .map(|c| {
                            c.as_deref()
                                .and_then(|c| code.get(c))
                                .copied()
                                .unwrap_or(f64::NAN)
                        })
                        .collect();
                    let attribute = Attribute {
                        name: field.name.clone(),
                        levels,
                    };
                    (attribute, by_row)
                }
                _ => {
                    let by_row: Vec<f64> = column
                        .cast(&DataType::Float64)?
                        .f64()?
                        .iter()
                        .map(|v| v.unwrap_or(f64::NAN))
                        .collect();
                    let attribute = Attribute {
                        name: field.name.clone(),
                        levels: Vec::new(),
                    };
                    (attribute, by_row)
                }
            };
            out.attributes.push(attribute);
            for (values, row) in out.values.iter_mut().zip(&row_of) {
                values.push(row.map_or(f64::NAN, |r| by_row[r]));
            }
        }
        Ok(out)
    }

    fn skip(&mut self, field: &str, reason: &str) {
        self.skipped.push((field.to_string(), reason.to_string()));
    }

    /// Items of the panel without a metadata row.
    pub fn missing(&self) -> usize {
        self.values
            .iter()
            .filter(|v| !v.is_empty() && v.iter().all(|x| x.is_nan()))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{DatasetType, Field};

    fn field(name: &str, field_type: FieldType, textual: bool) -> Field {
        Field {
            name: name.into(),
            field_type,
            nullable: true,
            categorical: false,
            textual,
        }
    }

    #[test]
    fn strings_become_level_indexes_numbers_stay_and_text_is_left_out() {
        let frame = df!(
            ITEM_ID => ["b", "a", "z", "c"],
            "brand" => [Some("tropicana"), Some("dominicks"), Some("x"), None],
            "income" => [Some(10.5), None, Some(1.0), Some(11.0)],
            "description" => ["fresh", "from concentrate", "?", "pulp"],
        )
        .unwrap();
        let schema = Schema {
            dataset_type: DatasetType::Items,
            fields: vec![
                field(ITEM_ID, FieldType::String, false),
                field("brand", FieldType::String, false),
                field("income", FieldType::Double, false),
                field("description", FieldType::String, true),
            ],
        };
        let items: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let a = ItemAttributes::build(&frame, &schema, &items).unwrap();
        let names: Vec<&str> = a.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["brand", "income"]);
        // Only the levels of the panel's items ("x" is item z's, not one).
        assert_eq!(a.attributes[0].levels, ["dominicks", "tropicana"]);
        let show = |v: &[f64]| format!("{v:?}");
        assert_eq!(show(&a.values[0]), "[0.0, NaN]");
        assert_eq!(show(&a.values[1]), "[1.0, 10.5]");
        assert_eq!(show(&a.values[2]), "[NaN, 11.0]");
        assert_eq!(show(&a.values[3]), "[NaN, NaN]");
        assert_eq!(a.missing(), 1);
        assert_eq!(
            a.skipped,
            [("description".to_string(), "textual (free text)".to_string())]
        );
    }

    #[test]
    fn a_field_with_more_levels_than_bins_is_left_out() {
        let ids: Vec<String> = (0..300).map(|i| format!("i{i}")).collect();
        let titles: Vec<String> = (0..300).map(|i| format!("title {i}")).collect();
        let frame = df!(ITEM_ID => ids.clone(), "title" => titles).unwrap();
        let schema = Schema {
            dataset_type: DatasetType::Items,
            fields: vec![
                field(ITEM_ID, FieldType::String, false),
                field("title", FieldType::String, false),
            ],
        };
        let a = ItemAttributes::build(&frame, &schema, &ids).unwrap();
        assert!(a.attributes.is_empty());
        assert_eq!(a.skipped[0].1, "300 levels, more than 255");
    }
}

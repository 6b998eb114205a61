//! Item attribute expressions for `item-attribute-affinity`, in the managed
//! service's form: `ITEMS.GENRES = "Comedy" AND ITEMS.GENRES = "Action"`.
//! Terms compare a categorical field with a value (`=` or `!=`); AND binds
//! tighter than OR. A multi-valued field (`Comedy|Drama`) equals each value.

use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq)]
struct Term {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed expression: OR of AND-groups of terms.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeExpr {
    groups: Vec<Vec<Term>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Eq,
    Ne,
}

fn tokens(text: &str) -> Result<Vec<(usize, Token)>, String> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "unterminated string starting at character {}",
                            pos + 1
                        ));
                    }
                    Some((_, '"')) => break,
                    Some((_, '\\')) if chars.get(i + 1).is_some() => {
                        s.push(chars[i + 1].1);
                        i += 2;
                        continue;
                    }
                    Some((_, ch)) => s.push(*ch),
                }
                i += 1;
            }
            i += 1;
            out.push((pos, Token::Str(s)));
        } else if c == '=' {
            out.push((pos, Token::Eq));
            i += 1;
        } else if c == '!' && chars.get(i + 1).map(|x| x.1) == Some('=') {
            out.push((pos, Token::Ne));
            i += 2;
        } else if c.is_alphanumeric() || c == '_' || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].1.is_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '.')
            {
                i += 1;
            }
            out.push((
                pos,
                Token::Word(chars[start..i].iter().map(|x| x.1).collect()),
            ));
        } else {
            return Err(format!("unexpected {c:?} at character {}", pos + 1));
        }
    }
    Ok(out)
}

impl AttributeExpr {
    pub fn parse(text: &str) -> Result<AttributeExpr, String> {
        let toks = tokens(text)?;
        let mut groups = vec![Vec::new()];
        let mut i = 0;
        let at = |i: usize| {
            toks.get(i)
                .map_or(format!("the end (character {})", text.len() + 1), |t| {
                    format!("character {}", t.0 + 1)
                })
        };
        loop {
            let field = match toks.get(i) {
                Some((_, Token::Word(w))) => match w.split_once('.') {
                    Some((ds, f)) if ds.eq_ignore_ascii_case("items") && !f.is_empty() => {
                        f.to_string()
                    }
                    _ => return Err(format!("expected ITEMS.<FIELD> at {}, found {w:?}", at(i))),
                },
                _ => return Err(format!("expected ITEMS.<FIELD> at {}", at(i))),
            };
            let negated = match toks.get(i + 1) {
                Some((_, Token::Eq)) => false,
                Some((_, Token::Ne)) => true,
                _ => return Err(format!("expected = or != at {}", at(i + 1))),
            };
            let value = match toks.get(i + 2) {
                Some((_, Token::Str(s))) => s.clone(),
                _ => return Err(format!("expected a quoted value at {}", at(i + 2))),
            };
            groups.last_mut().expect("one group").push(Term {
                field,
                value,
                negated,
            });
            i += 3;
            match toks.get(i) {
                None => break,
                Some((_, Token::Word(w))) if w.eq_ignore_ascii_case("and") => i += 1,
                Some((_, Token::Word(w))) if w.eq_ignore_ascii_case("or") => {
                    groups.push(Vec::new());
                    i += 1;
                }
                Some(_) => return Err(format!("expected AND or OR at {}", at(i))),
            }
        }
        Ok(AttributeExpr { groups })
    }

    /// The fields the expression names.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().flatten().map(|t| t.field.as_str())
    }

    /// Whether an item with these `FIELD=value` attributes matches.
    pub fn matches(&self, attributes: &HashSet<&str>) -> bool {
        self.groups.iter().any(|g| {
            g.iter().all(|t| {
                attributes.contains(format!("{}={}", t.field, t.value).as_str()) != t.negated
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(v: &[&'a str]) -> HashSet<&'a str> {
        v.iter().copied().collect()
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = AttributeExpr::parse(
            r#"ITEMS.GENRES = "Comedy" AND ITEMS.GENRES = "Action" OR items.GENRES = "Horror""#,
        )
        .unwrap();
        assert!(e.matches(&attrs(&["GENRES=Comedy", "GENRES=Action"])));
        assert!(!e.matches(&attrs(&["GENRES=Comedy"])));
        assert!(e.matches(&attrs(&["GENRES=Horror"])));
        let n = AttributeExpr::parse(r#"ITEMS.GENRES != "Horror""#).unwrap();
        assert!(n.matches(&attrs(&["GENRES=Comedy"])) && !n.matches(&attrs(&["GENRES=Horror"])));
    }

    #[test]
    fn errors_name_the_place() {
        assert_eq!(
            AttributeExpr::parse(r#"ITEMS.GENRES = Comedy"#).unwrap_err(),
            "expected a quoted value at character 16"
        );
        assert_eq!(
            AttributeExpr::parse(r#"USERS.AGE = "3""#).unwrap_err(),
            "expected ITEMS.<FIELD> at character 1, found \"USERS.AGE\""
        );
        assert!(
            AttributeExpr::parse(r#"ITEMS.A = "x" XOR"#)
                .unwrap_err()
                .starts_with("expected AND or OR at character 15")
        );
    }
}

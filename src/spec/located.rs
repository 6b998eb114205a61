//! Where each value of a YAML text is: one pass over the events of libyaml
//! (the parser under serde_yaml, so the positions are those of the values
//! serde_yaml reads) that maps YAML paths (`steps[6].depend_on`) to line and
//! column. The pass refuses nesting deeper than [`MAX_DEPTH`] as soon as it
//! meets it, before anything recursive sees the text: serde_yaml first
//! reads a whole document, in time that grows with the square of its depth.
//!
//! Memory is linear in the text: paths are kept as a tree of segments, not
//! as strings, so a long key is stored once however many values lie below.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_yaml;

use super::SpecProblem;

/// The deepest nesting of mappings and sequences read. A pipeline needs
/// about 7 levels (`steps[0].csv.columns[2]` is 5); serde_yaml's own limit
/// is 128, reached only after the slow whole-document read.
pub const MAX_DEPTH: usize = 64;

/// A 1-based line and column, as serde_yaml reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub line: usize,
    pub column: usize,
}

impl Place {
    fn of(mark: unsafe_yaml::yaml_mark_t) -> Place {
        Place {
            line: mark.line as usize + 1,
            column: mark.column as usize + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug)]
struct Node {
    /// Where the value starts.
    value: Place,
    /// Where its key starts, for a value in a mapping.
    key: Option<Place>,
    /// The value, for a short scalar (ids and names).
    scalar: Option<String>,
}

/// The places of the values of one YAML document, by path.
#[derive(Debug, Default)]
pub struct Locations {
    nodes: Vec<Node>,
    children: HashMap<(usize, Segment), usize>,
}

/// Scalars kept for [`Locations::scalar`]: ids and names are short.
const MAX_KEPT_SCALAR: usize = 256;

impl Locations {
    /// The node at `path` (`steps[6].depend_on`; `""` is the root).
    fn node(&self, path: &str) -> Option<&Node> {
        let mut at = 0;
        for segment in segments(path)? {
            at = *self.children.get(&(at, segment))?;
        }
        self.nodes.get(at)
    }

    /// Where the value at `path` starts, or, for a path that is not in the
    /// text (a missing field, a value from an alias), its nearest ancestor's.
    pub fn value(&self, path: &str) -> Option<Place> {
        self.nearest(path).map(|n| n.value)
    }

    /// Where the key of the value at `path` starts (an unknown key is named
    /// by its own place); the value's place when it has no key.
    pub fn key(&self, path: &str) -> Option<Place> {
        self.nearest(path).map(|n| n.key.unwrap_or(n.value))
    }

    /// The text of the scalar at `path`, if it is a short one.
    pub fn scalar(&self, path: &str) -> Option<&str> {
        self.node(path)?.scalar.as_deref()
    }

    fn nearest(&self, path: &str) -> Option<&Node> {
        let mut path = path;
        loop {
            if let Some(node) = self.node(path) {
                return Some(node);
            }
            if path.is_empty() {
                return None;
            }
            // Drop the last segment: `a.b[2]` → `a.b` → `a`.
            let cut = path.rfind(['.', '[']).unwrap_or(0);
            path = &path[..cut];
        }
    }

    fn child(&mut self, parent: usize, segment: Segment, node: Node) -> usize {
        let id = self.nodes.len();
        self.nodes.push(node);
        self.children.insert((parent, segment), id);
        id
    }
}

/// Splits `steps[6].depend_on` into `steps`, `6`, `depend_on`, as
/// serde_path_to_error writes paths (a key holding `.` or `[` cannot be
/// told apart; its problem is placed at an ancestor).
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key.to_string()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            out.push(Segment::Index(inner[..end].parse().ok()?));
            rest = &inner[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// Reads `text` once, recording where every value of its first document
/// starts. Nesting deeper than [`MAX_DEPTH`], in any document, is refused
/// where it goes too deep. A syntax error ends the pass early (serde_yaml
/// then reports it: the same parser stops at the same place).
pub fn scan(text: &str) -> Result<Locations, SpecProblem> {
    let mut parser = Parser::new(text);
    let mut locations = Locations::default();
    // The open mappings and sequences, innermost last.
    let mut open: Vec<Frame> = Vec::new();
    let mut document = 0;
    loop {
        let Some(event) = parser.next() else {
            return Ok(locations);
        };
        let place = event.place;
        // The node this event starts, if any, and its path under its parent.
        let starts = match &event.kind {
            EventKind::DocumentStart => {
                document += 1;
                None
            }
            EventKind::StreamEnd => return Ok(locations),
            EventKind::SequenceEnd | EventKind::MappingEnd => {
                open.pop();
                None
            }
            EventKind::Other => None,
            EventKind::Scalar(_)
            | EventKind::Alias
            | EventKind::SequenceStart
            | EventKind::MappingStart => Some(()),
        };
        if starts.is_none() {
            continue;
        }
        let scalar = match &event.kind {
            EventKind::Scalar(s) if s.len() <= MAX_KEPT_SCALAR => Some(s.clone()),
            _ => None,
        };
        // Record the node (first document only) and find its id.
        let id = if document > 1 {
            None
        } else {
            match open.last_mut() {
                None => {
                    locations.nodes.push(Node {
                        value: place,
                        key: None,
                        scalar,
                    });
                    Some(0)
                }
                Some(frame) => frame.enter(&mut locations, place, scalar, &event.kind),
            }
        };
        if matches!(
            event.kind,
            EventKind::SequenceStart | EventKind::MappingStart
        ) {
            if open.len() >= MAX_DEPTH {
                return Err(too_deep(place));
            }
            open.push(Frame {
                node: id,
                mapping: matches!(event.kind, EventKind::MappingStart),
                next: 0,
                key: None,
            });
        }
    }
}

fn too_deep(place: Place) -> SpecProblem {
    SpecProblem {
        line: Some(place.line),
        column: Some(place.column),
        ..SpecProblem::new(
            "",
            format!(
                "the YAML nests mappings and lists more than {MAX_DEPTH} levels deep; \
                 a pipeline needs fewer than 10 (is the file generated by mistake?)"
            ),
        )
    }
}

/// An open mapping or sequence.
struct Frame {
    /// Its node, if recorded (not below a complex key or a later document).
    node: Option<usize>,
    mapping: bool,
    /// Items seen: the next index of a sequence; for a mapping, even while
    /// a key is expected.
    next: usize,
    /// A mapping's pending key and its place.
    key: Option<(Option<String>, Place)>,
}

impl Frame {
    /// Records a node that starts inside this one; returns its id.
    fn enter(
        &mut self,
        locations: &mut Locations,
        place: Place,
        scalar: Option<String>,
        kind: &EventKind,
    ) -> Option<usize> {
        let n = self.next;
        self.next += 1;
        if !self.mapping {
            let node = Node {
                value: place,
                key: None,
                scalar,
            };
            return Some(locations.child(self.node?, Segment::Index(n), node));
        }
        if n.is_multiple_of(2) {
            // A key: a scalar names the value after it; a complex key
            // (a mapping or list as key) names nothing.
            let name = match kind {
                EventKind::Scalar(s) => Some(s.clone()),
                _ => None,
            };
            self.key = Some((name, place));
            return None;
        }
        let (name, key_place) = self.key.take()?;
        let node = Node {
            value: place,
            key: Some(key_place),
            scalar,
        };
        Some(locations.child(self.node?, Segment::Key(name?), node))
    }
}

struct Event {
    kind: EventKind,
    place: Place,
}

enum EventKind {
    DocumentStart,
    StreamEnd,
    Scalar(String),
    Alias,
    SequenceStart,
    SequenceEnd,
    MappingStart,
    MappingEnd,
    /// Stream start, document end.
    Other,
}

/// libyaml's event parser over a string; the only `unsafe` of this module.
struct Parser {
    sys: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>>,
    /// The input, which the parser reads in place until it is dropped.
    _input: Box<[u8]>,
}

impl Parser {
    fn new(text: &str) -> Parser {
        let input: Box<[u8]> = text.as_bytes().into();
        let mut sys = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
        // SAFETY: as serde_yaml's own wrapper: the parser is initialised in
        // place (boxed, so it never moves) and reads `input`, which lives
        // in the same struct and is dropped after `yaml_parser_delete`.
        unsafe {
            let parser = sys.as_mut_ptr();
            if unsafe_yaml::yaml_parser_initialize(parser).fail {
                panic!("libyaml could not allocate its parser");
            }
            unsafe_yaml::yaml_parser_set_encoding(parser, unsafe_yaml::YAML_UTF8_ENCODING);
            unsafe_yaml::yaml_parser_set_input_string(parser, input.as_ptr(), input.len() as u64);
        }
        Parser { sys, _input: input }
    }

    /// The next event; `None` after a syntax error, which serde_yaml
    /// reports in its own words when it reads the same text.
    fn next(&mut self) -> Option<Event> {
        let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new`; an event that
        // `yaml_parser_parse` filled is read, then freed exactly once.
        unsafe {
            let parser = self.sys.as_mut_ptr();
            if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                return None;
            }
            let e = event.as_mut_ptr();
            let place = Place::of((*e).start_mark);
            let kind = match (*e).type_ {
                unsafe_yaml::YAML_DOCUMENT_START_EVENT => EventKind::DocumentStart,
                unsafe_yaml::YAML_STREAM_END_EVENT => EventKind::StreamEnd,
                unsafe_yaml::YAML_SCALAR_EVENT => {
                    let s = (*e).data.scalar;
                    let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                    EventKind::Scalar(String::from_utf8_lossy(bytes).into_owned())
                }
                unsafe_yaml::YAML_ALIAS_EVENT => EventKind::Alias,
                unsafe_yaml::YAML_SEQUENCE_START_EVENT => EventKind::SequenceStart,
                unsafe_yaml::YAML_SEQUENCE_END_EVENT => EventKind::SequenceEnd,
                unsafe_yaml::YAML_MAPPING_START_EVENT => EventKind::MappingStart,
                unsafe_yaml::YAML_MAPPING_END_EVENT => EventKind::MappingEnd,
                _ => EventKind::Other,
            };
            unsafe_yaml::yaml_event_delete(e);
            Some(Event { kind, place })
        }
    }
}

impl Drop for Parser {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, deleted once.
        unsafe { unsafe_yaml::yaml_parser_delete(self.sys.as_mut_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_lines_and_columns() {
        let text = "name: p\nsteps:\n  - id: load\n    csv: {columns: [a, b]}\n  - id: export\n    depend_on: [load]\n";
        let at = scan(text).unwrap();
        assert_eq!(at.value("name"), Some(Place { line: 1, column: 7 }));
        assert_eq!(
            at.key("steps[1].depend_on"),
            Some(Place { line: 6, column: 5 })
        );
        assert_eq!(
            at.value("steps[1].depend_on"),
            Some(Place {
                line: 6,
                column: 16
            })
        );
        assert_eq!(
            at.value("steps[0].csv.columns[1]"),
            Some(Place {
                line: 4,
                column: 24
            })
        );
        assert_eq!(at.scalar("steps[1].id"), Some("export"));
        // A missing field is placed at its mapping.
        assert_eq!(
            at.value("steps[0].type"),
            Some(Place { line: 3, column: 5 })
        );
    }

    #[test]
    fn deep_nesting_is_refused_where_it_goes_too_deep() {
        let flow = format!("a: {}", "[".repeat(200_000));
        let p = scan(&flow).unwrap_err();
        assert!(p.message.contains("more than 64 levels"), "{p}");
        assert_eq!((p.line, p.column), (Some(1), Some(4 + 63)));

        let mut block = String::new();
        for depth in 0..10_000 {
            block += &format!("{}k{depth}:\n", " ".repeat(depth));
        }
        let p = scan(&block).unwrap_err();
        assert!(p.message.contains("more than 64 levels"), "{p}");
        assert_eq!((p.line, p.column), (Some(65), Some(65)));

        let dashes = format!("{}x\n", "- ".repeat(100));
        let p = scan(&dashes).unwrap_err();
        assert_eq!(p.line, Some(1), "{p}");
        // 64 levels are fine.
        assert!(scan(&format!("{}{}", "[".repeat(64), "]".repeat(64))).is_ok());
    }

    #[test]
    fn a_syntax_error_ends_the_pass_with_what_came_before() {
        let at = scan("a: 1\nb: [1, 2\nc: d\n").unwrap();
        assert_eq!(at.value("a"), Some(Place { line: 1, column: 4 }));
    }
}

//! The step graph by index: which steps each one depends on, a dependency
//! cycle if there is one, and every step's upstream steps (its dependencies,
//! directly or not), which templates may read outputs of. One depth-first
//! walk finds both, visiting each step and each dependency once; an upstream
//! set is a bitset, so a dependency costs one union of `steps / 64` words
//! (32 at the 2,000-step limit) rather than a walk of its ancestors.

use std::collections::HashMap;

use fixedbitset::FixedBitSet;

/// Steps by index, with their known dependencies (unknown and repeated
/// ids are left out: validation reports them).
pub(crate) struct StepGraph<'a> {
    ids: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
    deps: Vec<Vec<usize>>,
}

/// What one walk of the graph found.
pub(crate) struct Walk {
    /// A cycle as a closed path of step indexes (`a → c → b → a`).
    pub cycle: Option<Vec<usize>>,
    /// Each step's upstream steps. In a graph with a cycle, the edge that
    /// closes it is left out of the sets.
    pub upstream: Vec<FixedBitSet>,
    /// Steps entered plus dependencies followed: the walk's work, which
    /// tests hold to one visit each.
    #[cfg_attr(not(test), allow(dead_code))]
    pub visits: usize,
}

impl<'a> StepGraph<'a> {
    /// The graph of steps given as (id, depends_on), in file order. The
    /// first of two steps with one id is the one dependencies name.
    pub fn new(steps: impl IntoIterator<Item = (&'a str, &'a [String])>) -> StepGraph<'a> {
        let steps: Vec<(&str, &[String])> = steps.into_iter().collect();
        let mut index = HashMap::with_capacity(steps.len());
        for (i, (id, _)) in steps.iter().enumerate() {
            index.entry(*id).or_insert(i);
        }
        let deps = steps
            .iter()
            .enumerate()
            .map(|(i, (_, deps))| {
                let mut out: Vec<usize> = deps
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .filter(|&j| j != i)
                    .collect();
                out.dedup();
                out
            })
            .collect();
        StepGraph {
            ids: steps.iter().map(|(id, _)| *id).collect(),
            index,
            deps,
        }
    }

    pub fn index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn id(&self, i: usize) -> &'a str {
        self.ids[i]
    }

    /// Walks the graph depth first, without recursion (a chain of 2,000
    /// steps would be 2,000 frames deep).
    pub fn walk(&self) -> Walk {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = self.ids.len();
        let mut marks = vec![Mark::New; n];
        let mut upstream = vec![FixedBitSet::with_capacity(n); n];
        let mut cycle = None;
        let mut visits = 0;
        // (step, how many of its dependencies have been followed)
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 0..n {
            if marks[root] != Mark::New {
                continue;
            }
            marks[root] = Mark::Open;
            visits += 1;
            stack.push((root, 0));
            while let Some(top) = stack.last_mut() {
                let i = top.0;
                if let Some(&j) = self.deps[i].get(top.1) {
                    top.1 += 1;
                    visits += 1;
                    match marks[j] {
                        Mark::New => {
                            marks[j] = Mark::Open;
                            visits += 1;
                            stack.push((j, 0));
                        }
                        Mark::Open => {
                            if cycle.is_none() {
                                let start = stack.iter().position(|&(k, _)| k == j).unwrap_or(0);
                                let mut path: Vec<usize> =
                                    stack[start..].iter().map(|&(k, _)| k).collect();
                                path.push(j);
                                cycle = Some(path);
                            }
                        }
                        Mark::Done => {}
                    }
                    continue;
                }
                // Every dependency is done (or open, on a cycle): gather.
                stack.pop();
                marks[i] = Mark::Done;
                let mut set = std::mem::take(&mut upstream[i]);
                for &j in &self.deps[i] {
                    set.insert(j);
                    if marks[j] == Mark::Done {
                        set.union_with(&upstream[j]);
                    }
                }
                upstream[i] = set;
            }
        }
        Walk {
            cycle,
            upstream,
            visits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(steps: &[(&'static str, Vec<String>)]) -> StepGraph<'static> {
        let steps: &'static [(&'static str, Vec<String>)] = Box::leak(steps.to_vec().into());
        StepGraph::new(steps.iter().map(|(id, d)| (*id, d.as_slice())))
    }

    fn deps(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_chain_is_walked_once_however_long() {
        let n = 2_000;
        let ids: Vec<&'static str> = (0..n)
            .map(|i| &*Box::leak(format!("s{i}").into_boxed_str()))
            .collect();
        let steps: Vec<(&str, Vec<String>)> = (0..n)
            .map(|i| (ids[i], if i == 0 { vec![] } else { deps(&[ids[i - 1]]) }))
            .collect();
        let g = graph(&steps);
        let walk = g.walk();
        assert!(walk.cycle.is_none());
        // Each step entered once, each dependency followed once.
        assert_eq!(walk.visits, n + (n - 1));
        assert_eq!(walk.upstream[n - 1].count_ones(..), n - 1);
        assert!(walk.upstream[n - 1].contains(0));
        assert_eq!(walk.upstream[0].count_ones(..), 0);
    }

    #[test]
    fn finds_a_cycle_as_a_closed_path() {
        let g = graph(&[
            ("a", deps(&["c"])),
            ("b", deps(&["a"])),
            ("c", deps(&["b"])),
            ("d", deps(&["a", "zz"])),
        ]);
        let walk = g.walk();
        let cycle: Vec<&str> = walk.cycle.unwrap().iter().map(|&i| g.id(i)).collect();
        assert_eq!(cycle, ["a", "c", "b", "a"]);
        assert!(walk.upstream[3].contains(0), "d is below a");
    }
}

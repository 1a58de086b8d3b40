//! The critical path of a trace: the chain of work that decided how long it
//! took, found as Jaeger's UI finds it (`computeCriticalPath` in
//! jaeger-ui's `TraceTimelineViewer/CriticalPath`): start at the root's end
//! and walk back in time, always into the child that finished last before
//! the current point; where no child was running, the span itself was.
//!
//! Children are first clipped to their parent's time (a child that starts
//! before or ends after its parent — clock skew between VMs — counts only
//! for the part inside it; one wholly outside is left out).

/// A span as the walk needs it: its parent (an index into the same list)
/// and its times in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed {
    pub parent: Option<usize>,
    pub start: u64,
    pub end: u64,
}

/// A stretch of time during which span `span` was on the critical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub span: usize,
    pub start: u64,
    pub end: u64,
}

/// The critical path from `root`, latest section first. Spans whose parent
/// chain does not lead to `root` (orphans, other roots) take no part.
pub fn critical_path(spans: &[Timed], root: usize) -> Vec<Section> {
    if root >= spans.len() {
        return Vec::new();
    }
    // Children of each span, with times clipped to the (clipped) parent.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    for (i, s) in spans.iter().enumerate() {
        if let Some(p) = s.parent
            && p < spans.len()
            && p != i
        {
            children[p].push(i);
        }
    }
    let mut clipped: Vec<Option<(u64, u64)>> = vec![None; spans.len()];
    clipped[root] = Some((spans[root].start, spans[root].end.max(spans[root].start)));
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        let Some((p_start, p_end)) = clipped[p] else {
            continue;
        };
        for &c in &children[p] {
            if clipped[c].is_some() {
                continue; // a cycle in bad data: visit each span once
            }
            let (start, end) = (spans[c].start, spans[c].end.max(spans[c].start));
            if start > p_end || end < p_start {
                continue; // wholly outside its parent
            }
            clipped[c] = Some((start.max(p_start), end.min(p_end)));
            stack.push(c);
        }
    }
    let time = |i: usize| clipped[i].expect("only clipped spans are walked");
    let mut path = Vec::new();
    let mut span = root;
    // Some(t): coming back up from a child that started at t.
    let mut returning: Option<u64> = None;
    loop {
        let (start, end) = time(span);
        let section_end = returning.unwrap_or(end);
        let last_child = children[span]
            .iter()
            .copied()
            .filter(|&c| clipped[c].is_some())
            .filter(|&c| returning.is_none_or(|r| time(c).1 < r))
            .max_by_key(|&c| (time(c).1, time(c).0));
        match last_child {
            Some(child) => {
                let child_end = time(child).1;
                if child_end < section_end {
                    path.push(Section {
                        span,
                        start: child_end,
                        end: section_end,
                    });
                }
                span = child;
                returning = None;
            }
            None => {
                if start < section_end {
                    path.push(Section {
                        span,
                        start,
                        end: section_end,
                    });
                }
                if span == root {
                    break;
                }
                returning = Some(start);
                span = spans[span].parent.expect("a walked child has a parent");
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(parent: Option<usize>, start: u64, end: u64) -> Timed {
        Timed { parent, start, end }
    }

    fn sections(path: &[Section]) -> Vec<(usize, u64, u64)> {
        path.iter().map(|s| (s.span, s.start, s.end)).collect()
    }

    /// root 0..100 with a child 10..40 and a child 30..90 (overlapping):
    /// the path is root 90..100, child 2 30..90, root 0..30 — child 1 ends
    /// after child 2 starts, so it was not waited for.
    #[test]
    fn follows_the_last_finishing_child_back_in_time() {
        let spans = [t(None, 0, 100), t(Some(0), 10, 40), t(Some(0), 30, 90)];
        assert_eq!(
            sections(&critical_path(&spans, 0)),
            [(0, 90, 100), (2, 30, 90), (0, 0, 30)]
        );
    }

    /// Sequential children: both are on the path, with the root's gaps.
    #[test]
    fn sequential_children_are_all_on_the_path() {
        let spans = [
            t(None, 0, 100),
            t(Some(0), 10, 40),
            t(Some(0), 50, 90),
            t(Some(2), 60, 80),
        ];
        assert_eq!(
            sections(&critical_path(&spans, 0)),
            [
                (0, 90, 100),
                (2, 80, 90),
                (3, 60, 80),
                (2, 50, 60),
                (0, 40, 50),
                (1, 10, 40),
                (0, 0, 10)
            ]
        );
    }

    /// A child running past its parent's end (clock skew) counts only up to
    /// it; one wholly outside is left out; orphans take no part.
    #[test]
    fn children_are_clipped_to_their_parent() {
        let spans = [
            t(None, 0, 100),
            t(Some(0), 80, 130),
            t(Some(0), 150, 160),
            t(Some(9), 0, 100),
        ];
        assert_eq!(
            sections(&critical_path(&spans, 0)),
            [(1, 80, 100), (0, 0, 80)]
        );
    }

    #[test]
    fn a_lone_span_is_its_own_path_and_bad_input_ends() {
        assert_eq!(sections(&critical_path(&[t(None, 5, 9)], 0)), [(0, 5, 9)]);
        assert!(critical_path(&[], 0).is_empty());
        // A span that names itself as parent, and a two-span cycle under the root.
        let spans = [t(Some(0), 0, 10), t(Some(2), 1, 2), t(Some(1), 1, 2)];
        assert_eq!(sections(&critical_path(&spans, 0)), [(0, 0, 10)]);
    }
}

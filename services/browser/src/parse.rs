//! HTML → tree, within bounds a hostile page cannot push past.
//!
//! html5ever builds the tree the way browsers do, but puts no limit on it:
//! its tree builder scans its stack of open elements for many tags, so a
//! page of 500 000 nested `<div>` followed by 600 000 `</p>` costs
//! 500 000 × 600 000 steps. Here the tokenizer's tokens pass through
//! [`Bounded`] before they reach the tree builder, which
//! - keeps the stack of open elements (and the formatting elements the
//!   builder may reopen) under [`MAX_DEPTH`]: a start tag that would go
//!   deeper is dropped with everything inside it, up to its end tag;
//! - stops building once the tree holds [`MAX_NODES`] nodes;
//! - asks the [`Budget`] every few hundred tokens, and stops when the
//!   request has answered (deadline passed, caller gone).
//!
//! The input is fed in chunks whose size adapts to how long the tokenizer
//! takes over them, so that even input the tokenizer itself is slow on (one
//! tag with hundreds of thousands of attributes) is checked every few
//! milliseconds.

use std::borrow::Cow;
use std::cell::{Cell, Ref};
use std::time::{Duration, Instant};

use ego_tree::NodeId;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::tree_builder::{
    ElementFlags, NodeOrText, QuirksMode, Tracer, TreeBuilder, TreeBuilderOpts, TreeSink,
};
use html5ever::{Attribute, QualName, TokenizerResult, local_name};
use scraper::{Html, HtmlTreeSink};

use crate::budget::{Budget, Stopped, Ticker};

/// Open elements (plus formatting elements waiting to be reopened) at most:
/// deeper content is dropped. Real pages stay far below (tens of levels);
/// browsers stop nesting at 512.
pub const MAX_DEPTH: usize = 256;
/// Tree nodes (elements, text runs, comments) at most: the rest of the page
/// is not parsed. A long article has tens of thousands.
pub const MAX_NODES: usize = 250_000;

/// Which bound cut the page short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Content nested deeper than [`MAX_DEPTH`] was dropped.
    Depth,
    /// The tree reached [`MAX_NODES`]; the rest was not parsed.
    Nodes,
}

impl Cut {
    pub fn as_str(self) -> &'static str {
        match self {
            Cut::Depth => "depth",
            Cut::Nodes => "nodes",
        }
    }
}

/// A parsed page and the bound that cut it, if any (the first one hit).
pub struct Parsed {
    pub html: Html,
    pub cut: Option<Cut>,
}

/// Parses a whole document within the bounds above and the budget.
pub fn parse_document(input: &str, budget: &Budget) -> Result<Parsed, Stopped> {
    parse_with(input, budget, MAX_DEPTH, MAX_NODES)
}

fn parse_with(
    input: &str,
    budget: &Budget,
    max_depth: usize,
    max_nodes: usize,
) -> Result<Parsed, Stopped> {
    let sink = CountingSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        nodes: Cell::new(0),
    };
    let bounded = Bounded {
        tree: TreeBuilder::new(sink, TreeBuilderOpts::default()),
        ticker: budget.ticker(),
        max_depth,
        max_nodes,
        depth_measured: Cell::new(0),
        starts_since: Cell::new(0),
        skipping: Cell::new(0),
        cut: Cell::new(None),
        full: Cell::new(false),
        stopped: Cell::new(false),
    };
    let tokenizer = Tokenizer::new(bounded, TokenizerOpts::default());
    let queue = BufferQueue::default();
    let mut chunk = Chunker::new();
    let mut rest = input;
    while !rest.is_empty() && !tokenizer.sink.full.get() {
        budget.check()?;
        let (piece, tail) = split_at_char(rest, chunk.size);
        rest = tail;
        queue.push_back(StrTendril::from_slice(piece));
        let started = Instant::now();
        while let TokenizerResult::Script(_) = tokenizer.feed(&queue) {}
        chunk.adapt(started.elapsed());
        if tokenizer.sink.stopped.get() {
            return Err(Stopped);
        }
    }
    tokenizer.end();
    if tokenizer.sink.stopped.get() {
        return Err(Stopped);
    }
    let bounded = tokenizer.sink;
    let cut = bounded.cut.get();
    Ok(Parsed {
        html: bounded.tree.sink.inner.finish(),
        cut,
    })
}

/// `s` cut at most `max` bytes in, at a character boundary (never empty
/// when `s` is not).
fn split_at_char(s: &str, max: usize) -> (&str, &str) {
    if s.len() <= max {
        return (s, "");
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    s.split_at(at)
}

/// Input fed per call of the tokenizer: large while it is fast, smaller
/// when a chunk took long (the tokenizer checks no budget inside a chunk).
struct Chunker {
    size: usize,
}

impl Chunker {
    const START: usize = 16 * 1024;
    const MIN: usize = 64;
    const MAX: usize = 64 * 1024;
    const SLOW: Duration = Duration::from_millis(10);
    const FAST: Duration = Duration::from_millis(1);

    fn new() -> Self {
        Self { size: Self::START }
    }

    fn adapt(&mut self, took: Duration) {
        if took > Self::SLOW {
            self.size = (self.size / 4).max(Self::MIN);
        } else if took < Self::FAST {
            self.size = (self.size * 2).min(Self::MAX);
        }
    }
}

/// Elements that never hold content: their start tag opens nothing.
fn is_void(name: &html5ever::LocalName) -> bool {
    matches!(
        *name,
        local_name!("area")
            | local_name!("base")
            | local_name!("br")
            | local_name!("col")
            | local_name!("embed")
            | local_name!("hr")
            | local_name!("img")
            | local_name!("input")
            | local_name!("link")
            | local_name!("meta")
            | local_name!("source")
            | local_name!("track")
            | local_name!("wbr")
            | local_name!("param")
            | local_name!("keygen")
    )
}

/// The token filter in front of the tree builder (see the module's text).
struct Bounded<'b> {
    tree: TreeBuilder<NodeId, CountingSink>,
    ticker: Ticker<'b>,
    max_depth: usize,
    max_nodes: usize,
    /// The builder's open elements and formatting entries when last counted.
    depth_measured: Cell<usize>,
    /// Start tags passed to the builder since.
    starts_since: Cell<usize>,
    /// While > 0: dropping a subtree too deep to build; its open tags.
    skipping: Cell<usize>,
    cut: Cell<Option<Cut>>,
    /// The node bound is reached: nothing more is built.
    full: Cell<bool>,
    /// The budget is spent: nothing more is done.
    stopped: Cell<bool>,
}

/// One start tag grows the builder's stack and formatting list by at most
/// this much (a `<td>` straight in a `<table>` opens tbody, tr and td; a
/// formatting element is on both).
const GROWTH_PER_START_TAG: usize = 4;
/// The elements the builder opens by itself at the start (html, head, body).
const IMPLIED: usize = 3;

impl Bounded<'_> {
    fn cut(&self, cut: Cut) {
        if self.cut.get().is_none() {
            self.cut.set(Some(cut));
        }
    }

    /// Whether a start tag now would open an element deeper than allowed.
    /// Counting the builder's state costs its depth, so it is counted only
    /// when the upper bound kept since the last count could reach the limit.
    fn too_deep(&self) -> bool {
        let bound =
            self.depth_measured.get() + GROWTH_PER_START_TAG * self.starts_since.get() + IMPLIED;
        if bound >= self.max_depth {
            let counter = HandleCounter(Cell::new(0));
            self.tree.trace_handles(&counter);
            self.depth_measured.set(counter.0.get());
            self.starts_since.set(0);
        }
        self.depth_measured.get() + GROWTH_PER_START_TAG > self.max_depth
    }

    /// A token inside a dropped subtree: only its nesting is followed.
    fn skip(&self, token: &Token) {
        if let Token::TagToken(tag) = token {
            match tag.kind {
                TagKind::StartTag if !tag.self_closing && !is_void(&tag.name) => {
                    self.skipping.set(self.skipping.get() + 1);
                }
                TagKind::EndTag => self.skipping.set(self.skipping.get() - 1),
                TagKind::StartTag => {}
            }
        }
    }
}

impl TokenSink for Bounded<'_> {
    type Handle = NodeId;

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<NodeId> {
        if self.stopped.get() {
            return TokenSinkResult::Continue;
        }
        if self.ticker.tick().is_err() {
            self.stopped.set(true);
            return TokenSinkResult::Continue;
        }
        if matches!(token, Token::EOFToken) {
            return self.tree.process_token(token, line_number);
        }
        if self.full.get() || matches!(token, Token::ParseError(_)) {
            return TokenSinkResult::Continue;
        }
        if self.skipping.get() > 0 {
            self.skip(&token);
            return TokenSinkResult::Continue;
        }
        if let Token::TagToken(tag) = &token
            && tag.kind == TagKind::StartTag
        {
            if !tag.self_closing && !is_void(&tag.name) && self.too_deep() {
                self.cut(Cut::Depth);
                self.skipping.set(1);
                return TokenSinkResult::Continue;
            }
            self.starts_since.set(self.starts_since.get() + 1);
        }
        let result = self.tree.process_token(token, line_number);
        if self.tree.sink.nodes.get() >= self.max_nodes {
            self.cut(Cut::Nodes);
            self.full.set(true);
        }
        result
    }

    fn end(&self) {
        if !self.stopped.get() {
            self.tree.end();
        }
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.tree
            .adjusted_current_node_present_but_not_in_html_namespace()
    }
}

/// Counts the handles the tree builder holds (open elements, formatting
/// entries, a few singletons): an upper bound of its stack's depth.
struct HandleCounter(Cell<usize>);

impl Tracer for HandleCounter {
    type Handle = NodeId;
    fn trace_handle(&self, _node: &NodeId) {
        self.0.set(self.0.get() + 1);
    }
}

/// scraper's tree sink, counting the nodes it creates (a text run appended
/// to another counts once more: an upper bound).
struct CountingSink {
    inner: HtmlTreeSink,
    nodes: Cell<usize>,
}

impl CountingSink {
    fn count(&self) {
        self.nodes.set(self.nodes.get() + 1);
    }
    fn count_child(&self, child: &NodeOrText<NodeId>) {
        if matches!(child, NodeOrText::AppendText(_)) {
            self.count();
        }
    }
}

impl TreeSink for CountingSink {
    type Handle = NodeId;
    type Output = HtmlTreeSink;
    type ElemName<'a>
        = Ref<'a, QualName>
    where
        Self: 'a;

    fn finish(self) -> HtmlTreeSink {
        self.inner
    }
    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg);
    }
    fn get_document(&self) -> NodeId {
        self.inner.get_document()
    }
    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Ref<'a, QualName> {
        self.inner.elem_name(target)
    }
    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        self.count();
        self.inner.create_element(name, attrs, flags)
    }
    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.count();
        self.inner.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.count();
        self.inner.create_pi(target, data)
    }
    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        self.count_child(&child);
        self.inner.append(parent, child);
    }
    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        self.count_child(&child);
        self.inner
            .append_based_on_parent_node(element, prev_element, child);
    }
    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        self.count();
        self.inner
            .append_doctype_to_document(name, public_id, system_id);
    }
    fn mark_script_already_started(&self, node: &NodeId) {
        self.inner.mark_script_already_started(node);
    }
    fn pop(&self, node: &NodeId) {
        self.inner.pop(node);
    }
    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.inner.get_template_contents(target)
    }
    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.inner.same_node(x, y)
    }
    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode);
    }
    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        self.count_child(&new_node);
        self.inner.append_before_sibling(sibling, new_node);
    }
    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs);
    }
    fn associate_with_form(
        &self,
        target: &NodeId,
        form: &NodeId,
        nodes: (&NodeId, Option<&NodeId>),
    ) {
        self.inner.associate_with_form(target, form, nodes);
    }
    fn remove_from_parent(&self, target: &NodeId) {
        self.inner.remove_from_parent(target);
    }
    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        self.inner.reparent_children(node, new_parent);
    }
    fn is_mathml_annotation_xml_integration_point(&self, handle: &NodeId) -> bool {
        self.inner
            .is_mathml_annotation_xml_integration_point(handle)
    }
    fn set_current_line(&self, line_number: u64) {
        self.inner.set_current_line(line_number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Selector;

    fn text(html: &Html) -> String {
        html.root_element().text().collect()
    }

    fn depth(html: &Html) -> usize {
        html.tree
            .nodes()
            .map(|n| n.ancestors().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn an_ordinary_page_parses_as_html5ever_parses_it() {
        let page = r#"<!doctype html><title>T</title><p>a<b>b<p>c</b>d<table><td>e</table>
            <ul><li>f<li>g</ul><script>if (a<b) x()</script><!-- c -->"#;
        let parsed = parse_document(page, &Budget::unlimited()).unwrap();
        assert_eq!(parsed.cut, None);
        assert_eq!(parsed.html.html(), Html::parse_document(page).html());
    }

    #[test]
    fn content_nested_deeper_than_the_bound_is_dropped() {
        let page = format!(
            "<body>{}<p>deep</p>{}<p>after</p>",
            "<div>".repeat(50),
            "</div>".repeat(50)
        );
        let parsed = parse_with(&page, &Budget::unlimited(), 20, MAX_NODES).unwrap();
        assert_eq!(parsed.cut, Some(Cut::Depth));
        assert!(depth(&parsed.html) <= 20 + 2, "{}", depth(&parsed.html));
        assert_eq!(
            text(&parsed.html),
            "after",
            "the subtree below the bound is gone"
        );

        let shallow = parse_with(&page, &Budget::unlimited(), 60, MAX_NODES).unwrap();
        assert_eq!(shallow.cut, None);
        assert_eq!(text(&shallow.html), "deepafter");
    }

    #[test]
    fn formatting_elements_waiting_to_reopen_count_as_depth() {
        // Each </p> closes the <b>s; the text after it would reopen them all.
        let unit: String = (0..40).map(|i| format!("<b id={i}>")).collect();
        let page = format!("<body>{}", format!("<p>{unit}</p>x").repeat(20));
        let parsed = parse_with(&page, &Budget::unlimited(), 64, MAX_NODES).unwrap();
        assert!(depth(&parsed.html) <= 64 + 2, "{}", depth(&parsed.html));
    }

    #[test]
    fn the_tree_stops_growing_at_the_node_bound() {
        let page = format!("<body>{}", "<p>x</p>".repeat(1000));
        let parsed = parse_with(&page, &Budget::unlimited(), MAX_DEPTH, 100).unwrap();
        assert_eq!(parsed.cut, Some(Cut::Nodes));
        let count = parsed.html.tree.nodes().count();
        assert!((100..110).contains(&count), "{count}");
        let paragraphs = parsed.html.select(&Selector::parse("p").unwrap()).count();
        assert!(paragraphs < 60, "{paragraphs}");
    }

    #[test]
    fn a_spent_budget_stops_the_parse() {
        let page = "<p>x</p>".repeat(10_000);
        let budget = Budget::unlimited();
        budget.cancel();
        assert!(parse_document(&page, &budget).is_err());
    }

    #[test]
    fn chunks_never_split_a_character() {
        let s = "aé€😀".repeat(10);
        let mut rest = s.as_str();
        let mut joined = String::new();
        while !rest.is_empty() {
            let (piece, tail) = split_at_char(rest, 3);
            assert!(!piece.is_empty());
            joined.push_str(piece);
            rest = tail;
        }
        assert_eq!(joined, s);
    }
}

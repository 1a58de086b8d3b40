//! HTML → what a reader sees: title, description, visible text in blocks,
//! passages for ranking, absolute links.
//!
//! The document is walked once, without recursion (a page may nest elements
//! thousands deep), skipping whole subtrees that a reader never sees:
//! `<head>`, scripts, styles, `<noscript>`, `<template>`, SVG, form controls,
//! and anything marked hidden (`hidden`, `aria-hidden="true"`, inline
//! `display:none` / `visibility:hidden`). Links inside hidden subtrees are
//! dropped too: what the agent reads and what it may follow are the same page.
//!
//! Everything here is bounded: the tree by `parse.rs`, the text by
//! [`MAX_TEXT_BYTES`], the links by [`MAX_LINKS`]; and every loop over the
//! page asks the [`Budget`], so the work stops when the request has answered.

use std::collections::HashSet;

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector, node::Element};
use url::Url;

use crate::budget::{Budget, Stopped};
use crate::parse::parse_document;
use crate::passages::passages;

/// Visible text kept at most (bytes of UTF-8); the rest of the page is not read.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Links kept at most.
pub const MAX_LINKS: usize = 10_000;

/// Elements whose content is never shown as text.
const SKIPPED: &[&str] = &[
    "head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed",
    "canvas", "select", "textarea", "input", "button", "audio", "video",
];

/// Elements that start and end a block of text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// A page as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub title: Option<String>,
    pub description: Option<String>,
    /// Visible text, one block per line.
    pub text: String,
    pub passages: Vec<String>,
    pub links: Vec<String>,
    /// The bound that cut the page short, if any: `depth`, `nodes`, `text`
    /// or `links` (the first one hit).
    pub cut: Option<&'static str>,
}

/// Decodes a body: UTF-8 unless the content type names a single-byte Latin
/// charset; bytes that are not valid (such as a character cut by the byte
/// limit) become U+FFFD.
pub fn decode(body: &[u8], charset: Option<&str>) -> String {
    match charset {
        Some(
            "iso-8859-1" | "latin1" | "latin-1" | "us-ascii" | "ascii" | "windows-1252" | "cp1252",
        ) => body.iter().map(|&b| windows_1252(b)).collect(),
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

/// windows-1252, which browsers use for every label above (WHATWG Encoding).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Extracts everything from `html`, fetched from `page_url` (the final
/// URL), within the bounds above; `Err(Stopped)` when the budget ran out.
pub fn extract(html: &str, page_url: &Url, budget: &Budget) -> Result<Extracted, Stopped> {
    let parsed = parse_document(html, budget)?;
    let mut cut = parsed.cut.map(|c| c.as_str());
    let document = parsed.html;
    budget.check()?;
    let base = base_url(&document, page_url);

    let mut blocks: Vec<String> = Vec::new();
    let mut current = String::new();
    // Bytes of text gathered so far (blocks and the current one, before collapsing).
    let mut text_bytes = 0;
    let mut hrefs: Vec<&str> = Vec::new();
    let mut skipping: Option<ego_tree::NodeId> = None;
    let ticker = budget.ticker();
    for edge in document.tree.root().traverse() {
        ticker.tick()?;
        match edge {
            Edge::Open(node) => {
                if skipping.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Element(el) => {
                        if is_unseen(el) {
                            skipping = Some(node.id());
                            continue;
                        }
                        if BLOCKS.contains(&el.name()) {
                            flush(&mut current, &mut blocks);
                        }
                        if matches!(el.name(), "a" | "area")
                            && let Some(href) = el.attr("href")
                        {
                            hrefs.push(href);
                        }
                    }
                    Node::Text(text) => {
                        let room = MAX_TEXT_BYTES.saturating_sub(text_bytes);
                        if text.len() > room {
                            current.push_str(prefix(text, room));
                            cut.get_or_insert("text");
                            break;
                        }
                        text_bytes += text.len();
                        current.push_str(text);
                    }
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if skipping == Some(node.id()) {
                    skipping = None;
                } else if skipping.is_none()
                    && let Node::Element(el) = node.value()
                    && BLOCKS.contains(&el.name())
                {
                    flush(&mut current, &mut blocks);
                }
            }
        }
    }
    flush(&mut current, &mut blocks);
    budget.check()?;
    let title = title(&document);
    let description = meta_content(&document, &["description", "og:description"]);
    budget.check()?;
    let (links, links_cut) = absolute_links(&base, hrefs, budget)?;
    if links_cut {
        cut.get_or_insert("links");
    }
    budget.check()?;
    Ok(Extracted {
        title,
        description,
        text: blocks.join("\n"),
        passages: passages(&blocks),
        links,
        cut,
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether a reader never sees this element or anything inside it.
fn is_unseen(el: &Element) -> bool {
    if SKIPPED.contains(&el.name()) || el.attr("hidden").is_some() {
        return true;
    }
    if el
        .attr("aria-hidden")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return true;
    }
    el.attr("style").is_some_and(|style| {
        let compact: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        compact
            .split(';')
            .any(|decl| decl.starts_with("display:none") || decl.starts_with("visibility:hidden"))
    })
}

/// Ends the current block: whitespace collapsed, empty blocks dropped.
fn flush(current: &mut String, blocks: &mut Vec<String>) {
    let block = collapse(current);
    if !block.is_empty() {
        blocks.push(block);
    }
    current.clear();
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a constant selector parses")
}

/// `<base href>` resolved against the page, else the page.
fn base_url(document: &Html, page_url: &Url) -> Url {
    document
        .select(&selector("base[href]"))
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| page_url.join(href.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or_else(|| page_url.clone())
}

/// `<title>`, else `og:title`, else the first visible-or-not `<h1>`.
fn title(document: &Html) -> Option<String> {
    let text_of = |el: ElementRef<'_>| collapse(&el.text().collect::<String>());
    document
        .select(&selector("head title, title"))
        .map(text_of)
        .find(|t| !t.is_empty())
        .or_else(|| meta_content(document, &["og:title"]))
        .or_else(|| {
            document
                .select(&selector("h1"))
                .map(text_of)
                .find(|t| !t.is_empty())
        })
}

/// The first non-empty `<meta name|property=… content>` for the names, in order of preference.
fn meta_content(document: &Html, names: &[&str]) -> Option<String> {
    let metas: Vec<_> = document.select(&selector("meta[content]")).collect();
    names.iter().find_map(|wanted| {
        metas.iter().find_map(|m| {
            let el = m.value();
            let name = el.attr("name").or_else(|| el.attr("property"))?;
            if !name.trim().eq_ignore_ascii_case(wanted) {
                return None;
            }
            let content = collapse(el.attr("content")?);
            (!content.is_empty()).then_some(content)
        })
    })
}

/// Absolute http/https URLs, without fragments, deduplicated, in page
/// order, at most [`MAX_LINKS`] (`true` when some were left out).
fn absolute_links(
    base: &Url,
    hrefs: Vec<&str>,
    budget: &Budget,
) -> Result<(Vec<String>, bool), Stopped> {
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    let ticker = budget.ticker();
    for href in hrefs {
        ticker.tick()?;
        let Ok(mut url) = base.join(href.trim()) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        let url = String::from(url);
        if seen.contains(&url) {
            continue;
        }
        if links.len() == MAX_LINKS {
            return Ok((links, true));
        }
        seen.insert(url.clone());
        links.push(url);
    }
    Ok((links, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> Extracted {
        extract(
            html,
            &Url::parse("https://example.com/docs/page.html?x=1").unwrap(),
            &Budget::unlimited(),
        )
        .unwrap()
    }

    #[test]
    fn hidden_and_non_text_content_is_dropped() {
        let e = page(
            r#"<html><head><title>T</title><style>.x{color:red}</style>
            <script>var secret = "script text";</script></head><body>
            <p>Seen one.</p>
            <noscript>noscript text</noscript>
            <template><p>template text</p></template>
            <div hidden><p>hidden attribute text</p><a href="/hidden-link">x</a></div>
            <div aria-hidden="true">aria hidden text</div>
            <div style="color: red; DISPLAY : none">display none text</div>
            <span style="visibility:hidden">invisible text</span>
            <p>Seen <b>two</b>.</p>
            <script>document.write("late script")</script>
            </body></html>"#,
        );
        assert_eq!(e.text, "Seen one.\nSeen two.");
        assert!(e.links.is_empty(), "{:?}", e.links);
    }

    #[test]
    fn links_are_absolute_deduplicated_and_web_only() {
        let e = page(
            r##"<body>
            <a href="other.html">relative</a>
            <a href="/root#section">rooted, with fragment</a>
            <a href="/root">same page again</a>
            <a href="//cdn.example.org/x">scheme-relative</a>
            <a href="https://other.example/y?q=1">absolute</a>
            <a href="mailto:a@b.c">mail</a><a href="javascript:alert(1)">js</a>
            <a href="ftp://files.example/f">ftp</a><a href="#top">fragment only</a>
            <a href="http://[::1">broken</a>
            </body>"##,
        );
        assert_eq!(
            e.links,
            [
                "https://example.com/docs/other.html",
                "https://example.com/root",
                "https://cdn.example.org/x",
                "https://other.example/y?q=1",
                "https://example.com/docs/page.html?x=1",
            ]
        );
    }

    #[test]
    fn base_href_changes_where_relative_links_point() {
        let e = page(r#"<head><base href="/v2/"></head><body><a href="a">a</a></body>"#);
        assert_eq!(e.links, ["https://example.com/v2/a"]);
    }

    #[test]
    fn title_and_description_fall_back_in_order() {
        let e = page(
            r#"<head><meta property="og:title" content="OG"><meta property="og:description" content=" og  d ">
            </head><body><h1>Heading</h1></body>"#,
        );
        assert_eq!(e.title.as_deref(), Some("OG"));
        assert_eq!(e.description.as_deref(), Some("og d"));
        let e = page("<body><h1> Only \n heading </h1></body>");
        assert_eq!(e.title.as_deref(), Some("Only heading"));
        assert_eq!(e.description, None);
        let e =
            page(r#"<head><title> A  title </title><meta name="Description" content="D"></head>"#);
        assert_eq!(e.title.as_deref(), Some("A title"));
        assert_eq!(e.description.as_deref(), Some("D"));
    }

    #[test]
    fn inline_elements_join_and_blocks_separate() {
        let e = page(
            "<body><div>a<span>b</span> c<p>d</p>e<br>f</div><ul><li>g</li><li>h</li></ul></body>",
        );
        assert_eq!(e.text, "ab c\nd\ne\nf\ng\nh");
    }

    #[test]
    fn deep_nesting_is_read_up_to_the_depth_bound_and_dropped_below() {
        let nested = |depth: usize| {
            format!(
                "<body>{}deep{}<p>after</p>",
                "<div>".repeat(depth),
                "</div>".repeat(depth)
            )
        };
        let e = page(&nested(200));
        assert_eq!((e.text.as_str(), e.cut), ("deep\nafter", None));
        let e = page(&nested(3_000));
        assert_eq!((e.text.as_str(), e.cut), ("after", Some("depth")));
    }

    #[test]
    fn text_and_links_stop_at_their_bounds() {
        let word = "wörd ".repeat(1000);
        let html = format!("<body>{}", format!("<p>{word}</p>").repeat(250));
        let e = page(&html);
        assert_eq!(e.cut, Some("text"));
        assert!(e.text.len() <= MAX_TEXT_BYTES, "{}", e.text.len());
        assert!(e.text.len() > MAX_TEXT_BYTES - 10_000, "{}", e.text.len());

        let links: String = (0..MAX_LINKS + 5)
            .map(|i| format!("<a href=/p{i}>x</a>"))
            .collect();
        let e = page(&format!("<body>{links}"));
        assert_eq!(e.links.len(), MAX_LINKS);
        assert_eq!(e.cut, Some("links"));
        assert_eq!(page("<p>short</p>").cut, None);
    }

    #[test]
    fn a_spent_budget_stops_the_extraction() {
        let budget = Budget::unlimited();
        budget.cancel();
        let url = Url::parse("https://example.com/").unwrap();
        assert_eq!(extract("<p>x</p>", &url, &budget), Err(Stopped));
    }

    #[test]
    fn latin_charsets_decode_and_cut_utf8_does_not_fail() {
        assert_eq!(decode(b"caf\xe9 \x80", Some("iso-8859-1")), "café €");
        let cut = &"é".as_bytes()[..1];
        assert_eq!(decode(cut, None), "\u{fffd}");
    }
}

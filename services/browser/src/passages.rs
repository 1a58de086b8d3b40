//! Splitting a page's blocks into paragraph-sized passages for ranking
//! (embeddings have a bounded input: all-MiniLM-L6-v2 reads 256 word pieces,
//! about 1000 characters of English).
//!
//! Huge blocks are split at sentence ends, else at spaces, else anywhere;
//! tiny blocks (a heading, a short list item) are merged with what follows
//! them, so that a passage carries enough context to be ranked.

/// A passage shorter than this is merged with its neighbour when both fit.
pub const MIN_PASSAGE_CHARS: usize = 200;
/// No passage is longer than this.
pub const MAX_PASSAGE_CHARS: usize = 1000;

/// Blocks (whitespace already collapsed) → passages, in order, nothing lost.
pub fn passages(blocks: &[String]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut current: Option<(String, usize)> = None;
    for piece in blocks.iter().flat_map(|b| split_block(b)) {
        let len = piece.chars().count();
        current = Some(match current.take() {
            None => (piece, len),
            Some((mut text, cur_len))
                if cur_len < MIN_PASSAGE_CHARS && cur_len + 1 + len <= MAX_PASSAGE_CHARS =>
            {
                text.push('\n');
                text.push_str(&piece);
                (text, cur_len + 1 + len)
            }
            Some(done) => {
                out.push(done);
                (piece, len)
            }
        });
    }
    if let Some((text, len)) = current {
        // A short tail joins the passage before it, when it fits.
        match out.last_mut() {
            Some((last, last_len))
                if len < MIN_PASSAGE_CHARS && *last_len + 1 + len <= MAX_PASSAGE_CHARS =>
            {
                last.push('\n');
                last.push_str(&text);
                *last_len += 1 + len;
            }
            _ => out.push((text, len)),
        }
    }
    out.into_iter().map(|(text, _)| text).collect()
}

/// A block cut into pieces of at most [`MAX_PASSAGE_CHARS`].
fn split_block(block: &str) -> Vec<String> {
    if block.chars().count() <= MAX_PASSAGE_CHARS {
        return vec![block.to_owned()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for sentence in sentences(block) {
        let len = sentence.chars().count();
        if current_len > 0 && current_len + 1 + len > MAX_PASSAGE_CHARS {
            pieces.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if len > MAX_PASSAGE_CHARS {
            // A "sentence" longer than a passage: cut at spaces, else anywhere.
            for part in split_long(sentence, len) {
                pieces.push(part);
            }
            continue;
        }
        if current_len > 0 {
            current.push(' ');
            current_len += 1;
        }
        current.push_str(sentence);
        current_len += len;
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Sentences of a whitespace-collapsed block: cut after `.`, `!` or `?`
/// followed by a space (the space itself dropped). Each byte is looked at
/// once: the search goes on from the last cut, never from the start.
fn sentences(block: &str) -> impl Iterator<Item = &str> {
    let mut rest = block;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = rest
            .as_bytes()
            .windows(2)
            .position(|w| matches!(w[0], b'.' | b'!' | b'?') && w[1] == b' ');
        match cut {
            Some(i) => {
                let (sentence, tail) = rest.split_at(i + 1);
                rest = &tail[1..];
                Some(sentence)
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}

/// Pieces of at most [`MAX_PASSAGE_CHARS`], cut at the last space that fits,
/// else at a character boundary. `len` is `text`'s length in characters,
/// kept up to date as pieces are cut (counting the rest again for every
/// piece made this quadratic in the text).
fn split_long(text: &str, len: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut rest_len = len;
    while rest_len > MAX_PASSAGE_CHARS {
        let limit = rest
            .char_indices()
            .nth(MAX_PASSAGE_CHARS)
            .map_or(rest.len(), |(i, _)| i);
        let space = if rest[limit..].starts_with(' ') {
            Some(limit)
        } else {
            rest[..limit].rfind(' ').filter(|&i| i > 0)
        };
        let (piece, tail) = match space {
            Some(space) => (&rest[..space], &rest[space + 1..]),
            None => (&rest[..limit], &rest[limit..]),
        };
        rest_len -= piece.chars().count() + usize::from(space.is_some());
        pieces.push(piece.to_owned());
        rest = tail;
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(texts: &[String]) -> Vec<String> {
        texts
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_heading_joins_its_paragraph_and_long_paragraphs_stay_apart() {
        let para = |c: char| format!("{c}{}.", " word".repeat(60));
        let blocks = vec!["Heading".to_owned(), para('a'), para('b')];
        let p = passages(&blocks);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("Heading\na word"));
        assert!(p[1].starts_with("b word"));
    }

    #[test]
    fn a_huge_paragraph_is_cut_at_sentence_ends() {
        let sentence = format!("This sentence has{} words.", " many".repeat(20));
        let block = vec![sentence.repeat(30).replace(".This", ". This")];
        let p = passages(&block);
        assert!(p.len() > 1);
        for passage in &p {
            assert!(passage.chars().count() <= MAX_PASSAGE_CHARS);
            assert!(
                passage.starts_with("This sentence") && passage.ends_with("words."),
                "{passage}"
            );
        }
    }

    #[test]
    fn a_word_longer_than_a_passage_is_cut_anywhere() {
        let block = vec!["é".repeat(2 * MAX_PASSAGE_CHARS + 5)];
        let p = passages(&block);
        assert_eq!(
            p.iter().map(|s| s.chars().count()).collect::<Vec<_>>(),
            [1000, 1000, 5]
        );
    }

    #[test]
    fn tiny_blocks_only_are_merged_into_one() {
        let blocks: Vec<String> = ["Home", "About", "Contact"].map(String::from).to_vec();
        assert_eq!(passages(&blocks), ["Home\nAbout\nContact"]);
        assert!(passages(&[]).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn passages_are_bounded_and_lose_no_word(
            blocks in prop::collection::vec("[a-zé.!? ]{0,40}( [a-z]{1,30}[.?!]?){0,120}", 0..30)
        ) {
            let blocks: Vec<String> = blocks
                .iter()
                .map(|b| b.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|b| !b.is_empty())
                .collect();
            let p = passages(&blocks);
            for passage in &p {
                prop_assert!(passage.chars().count() <= MAX_PASSAGE_CHARS);
                prop_assert!(!passage.trim().is_empty());
            }
            prop_assert_eq!(words(&p).concat(), words(&blocks).concat());
        }
    }
}

//! `POST /api/research {"url", "question", "top_k"?}`: AutoBot's workflow in
//! one trace. The browser reads the page (HTTP), the npu-worker embeds its
//! passages and the question (a Redis Streams job), the backend ranks the
//! passages by cosine similarity, and the ai-stack answers the question from
//! the best ones (HTTP).

use autobot_wire::browse::{NavigateRequest, NavigateResponse};
use autobot_wire::chat::{ChatMessage, ChatRequest, ChatResponse, Role};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::routes::embeddings::{MAX_TEXT_CHARS, MAX_TEXTS, embed};
use crate::upstream::post_json;
use crate::{AppError, AppState};

const DEFAULT_TOP_K: usize = 3;
const MAX_TOP_K: usize = 10;
const MAX_QUESTION_CHARS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResearchRequest {
    pub url: String,
    pub question: String,
    #[serde(default)]
    pub top_k: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub text: String,
    /// Cosine similarity of the passage and the question.
    pub score: f32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ResearchResponse {
    pub answer: String,
    pub sources: Vec<Source>,
    pub trace_id: Option<String>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/research", post(research))
}

async fn research(
    State(state): State<AppState>,
    body: Result<Json<ResearchRequest>, JsonRejection>,
) -> Result<Json<ResearchResponse>, AppError> {
    let Json(request) = body?;
    let top_k = validate(&request)?;

    let page: NavigateResponse = post_json(
        &state.http,
        &state.peers.browser,
        "/navigate",
        &NavigateRequest {
            url: request.url.trim().to_owned(),
            ..NavigateRequest::default()
        },
        state.cfg.upstream_timeout,
    )
    .await?;
    // The question goes first; passages fill the rest of one job.
    let passages: Vec<String> = page
        .passages
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.chars().take(MAX_TEXT_CHARS).collect())
        .take(MAX_TEXTS - 1)
        .collect();
    if passages.is_empty() {
        return Err(AppError::Unprocessable(format!(
            "{} has no readable text to answer from",
            page.url
        )));
    }
    let mut texts = Vec::with_capacity(passages.len() + 1);
    texts.push(request.question.trim().to_owned());
    texts.extend(passages.iter().cloned());
    let embedded = embed(&state, texts).await?;
    let sources = rank(&embedded.embeddings, &passages, top_k)?;

    let chat = ChatRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: "Answer the question using only the numbered sources. Cite them as [n]."
                    .into(),
            },
            ChatMessage {
                role: Role::User,
                content: prompt(&request.question, &sources),
            },
        ],
        model: None,
        provider: None,
        temperature: Some(0.0),
        max_tokens: None,
        stream: None,
    };
    let answer: ChatResponse = post_json(
        &state.http,
        &state.peers.ai_stack,
        "/v1/chat",
        &chat,
        state.cfg.upstream_timeout,
    )
    .await?;
    Ok(Json(ResearchResponse {
        answer: answer.reply,
        sources,
        trace_id: autobot_tracing::current_trace_id(),
    }))
}

fn validate(request: &ResearchRequest) -> Result<usize, AppError> {
    if request.url.trim().is_empty() {
        return Err(AppError::Invalid("url: must not be empty".into()));
    }
    let question = request.question.trim();
    if question.is_empty() {
        return Err(AppError::Invalid("question: must not be empty".into()));
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(AppError::Invalid(format!(
            "question: at most {MAX_QUESTION_CHARS} characters"
        )));
    }
    match request.top_k {
        None => Ok(DEFAULT_TOP_K),
        Some(k) if (1..=MAX_TOP_K).contains(&k) => Ok(k),
        Some(k) => Err(AppError::Invalid(format!(
            "top_k: {k} is not between 1 and {MAX_TOP_K}"
        ))),
    }
}

/// Ranks passages by cosine similarity to the question (vector 0). The
/// worker's vectors are L2-normalised, so the cosine is the dot product.
fn rank(vectors: &[Vec<f32>], passages: &[String], top_k: usize) -> Result<Vec<Source>, AppError> {
    let span = tracing::info_span!(
        "research.rank",
        research.passages = passages.len() as i64,
        research.top_k = top_k as i64,
        research.best_score = tracing::field::Empty,
    );
    let _in = span.enter();
    if vectors.len() != passages.len() + 1 {
        return Err(AppError::UpstreamInvalid {
            peer: "npu-worker",
            detail: format!("{} vectors for {} texts", vectors.len(), passages.len() + 1),
        });
    }
    let question = &vectors[0];
    let mut scored: Vec<Source> = passages
        .iter()
        .zip(&vectors[1..])
        .map(|(text, v)| Source {
            text: text.clone(),
            score: cosine(question, v),
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    scored.truncate(top_k);
    if let Some(best) = scored.first() {
        span.record("research.best_score", f64::from(best.score));
    }
    Ok(scored)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

fn prompt(question: &str, sources: &[Source]) -> String {
    let mut out = String::from("Sources:\n");
    for (i, s) in sources.iter().enumerate() {
        out.push_str(&format!("[{}] {}\n", i + 1, s.text));
    }
    out.push_str("\nQuestion: ");
    out.push_str(question.trim());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_cosine_and_keeps_top_k() {
        let passages = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let vectors = vec![
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![0.9, 0.1],
            vec![0.6, 0.8],
        ];
        let ranked = rank(&vectors, &passages, 2).unwrap();
        assert_eq!(
            ranked.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert!(ranked[0].score > ranked[1].score);
        assert!(
            rank(&vectors[..2], &passages, 2).is_err(),
            "a vector per text or an error"
        );
    }

    #[test]
    fn the_prompt_numbers_the_sources_and_ends_with_the_question() {
        let sources = vec![
            Source {
                text: "x is 1".into(),
                score: 0.9,
            },
            Source {
                text: "y".into(),
                score: 0.1,
            },
        ];
        assert_eq!(
            prompt(" what is x? ", &sources),
            "Sources:\n[1] x is 1\n[2] y\n\nQuestion: what is x?"
        );
    }

    #[test]
    fn requests_are_checked() {
        let r = |url: &str, q: &str, k: Option<usize>| ResearchRequest {
            url: url.into(),
            question: q.into(),
            top_k: k,
        };
        assert_eq!(
            validate(&r("http://x", "why?", None)).unwrap(),
            DEFAULT_TOP_K
        );
        assert!(validate(&r(" ", "why?", None)).is_err());
        assert!(validate(&r("http://x", "", None)).is_err());
        assert!(validate(&r("http://x", "why?", Some(0))).is_err());
        assert!(validate(&r("http://x", "why?", Some(11))).is_err());
    }
}

//! Sentence embeddings with all-MiniLM-L6-v2, computed on the CPU with candle:
//! BERT, mean pooling over the real tokens (attention mask), L2 normalisation.
//! This is what sentence-transformers does for this model, so the vectors
//! match its reference values.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use tokenizers::{Tokenizer, TruncationParams};

/// The model this worker serves.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// Texts run through the model together; bounds memory (batch × padded length).
const MAX_BATCH: usize = 32;

/// sentence-transformers truncates this model at 256 tokens
/// (`sentence_bert_config.json`), not at BERT's 512 positions.
const DEFAULT_MAX_TOKENS: usize = 256;

/// Why the model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error(
        "the model directory {dir} has no {file}: run scripts/setup.sh, or point AUTOBOT_NPU_MODEL_DIR at a folder with model.safetensors, tokenizer.json and config.json"
    )]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a BERT configuration: {source}")]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("loading the tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("loading the weights {path}: {source}")]
    Weights {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("tokenizing the input: {0}")]
    Tokenize(String),
    #[error("running the model: {0}")]
    Inference(#[from] candle_core::Error),
}

/// The vectors for a list of texts, in the order of the texts.
#[derive(Clone, Debug)]
pub struct Embeddings {
    /// One L2-normalised vector per text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the model saw (special tokens included, padding excluded).
    pub token_count: usize,
}

/// A loaded all-MiniLM-L6-v2: weights, tokenizer, and how it truncates.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimensions: usize,
    max_tokens: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("dimensions", &self.dimensions)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the model from `dir` (model.safetensors, tokenizer.json, config.json).
    pub fn load(dir: &Path) -> Result<Self, EmbeddingError> {
        for file in MODEL_FILES {
            if !dir.join(file).is_file() {
                return Err(EmbeddingError::MissingFile {
                    dir: dir.to_owned(),
                    file,
                });
            }
        }
        let config_path = dir.join("config.json");
        let config: Config = serde_json::from_slice(&read(&config_path)?).map_err(|source| {
            EmbeddingError::Config {
                path: config_path.clone(),
                source,
            }
        })?;
        let max_tokens = sentence_max_tokens(dir)
            .unwrap_or(DEFAULT_MAX_TOKENS)
            .min(config.max_position_embeddings);

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| EmbeddingError::Tokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        // tokenizer.json pads every text to 128 and cuts it there; we pad per
        // batch ourselves and cut where sentence-transformers does.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbeddingError::Tokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;

        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        // Buffered rather than memory-mapped: mapping is `unsafe` (the file
        // could change under us) and 90 MB is cheap to hold.
        let vb = VarBuilder::from_buffered_safetensors(read(&weights_path)?, DTYPE, &device)
            .map_err(|source| EmbeddingError::Weights {
                path: weights_path.clone(),
                source,
            })?;
        let model = BertModel::load(vb, &config).map_err(|source| EmbeddingError::Weights {
            path: weights_path,
            source,
        })?;
        Ok(Self {
            model,
            tokenizer,
            device,
            dimensions: config.hidden_size,
            max_tokens,
            dir: dir.to_owned(),
        })
    }

    pub fn model_name(&self) -> &'static str {
        MODEL_NAME
    }

    /// Length of every vector (384 for all-MiniLM-L6-v2).
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Longer texts are truncated to this many tokens.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// Embeds `texts`; the result keeps their order.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Embeddings, EmbeddingError> {
        let mut encoded = Vec::with_capacity(texts.len());
        for text in texts {
            let encoding = self
                .tokenizer
                .encode(text.as_ref(), true)
                .map_err(|e| EmbeddingError::Tokenize(e.to_string()))?;
            encoded.push(encoding.get_ids().to_vec());
        }
        let token_count = encoded.iter().map(Vec::len).sum();

        // Texts of similar length share a batch, so little time goes into padding.
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut vectors = vec![Vec::new(); encoded.len()];
        for chunk in order.chunks(MAX_BATCH) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                vectors[i] = vector;
            }
        }
        Ok(Embeddings {
            vectors,
            token_count,
        })
    }

    /// One forward pass over token id sequences, padded to the longest.
    fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let rows = batch.len();
        let width = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for seq in batch {
            ids.extend_from_slice(seq);
            ids.resize(ids.len() + width - seq.len(), 0);
            mask.extend(std::iter::repeat_n(1u32, seq.len()));
            mask.extend(std::iter::repeat_n(0u32, width - seq.len()));
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?; // (rows, width, dim)

        // Mean over the real tokens only: padding must not pull the vector.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, width, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, dim)
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (rows, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let normalised = mean.broadcast_div(&norms)?;
        Ok(normalised.to_vec2::<f32>()?)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EmbeddingError> {
    std::fs::read(path).map_err(|source| EmbeddingError::Read {
        path: path.to_owned(),
        source,
    })
}

/// `max_seq_length` from sentence-transformers' `sentence_bert_config.json`, when present.
fn sentence_max_tokens(dir: &Path) -> Option<usize> {
    let raw = std::fs::read(dir.join("sentence_bert_config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    value.get("max_seq_length")?.as_u64()?.try_into().ok()
}

/// Cosine similarity; for unit vectors this is their dot product.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

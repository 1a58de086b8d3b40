//! all-MiniLM-L6-v2 on candle gives sentence-transformers' vectors.

use autobot_npu_worker::embedding::{Embedder, cosine};

use crate::support::model_dir;

const WEATHER: &str = "The weather is lovely today.";
const SUNNY: &str = "It's so sunny outside!";
const STADIUM: &str = "He drove to the stadium.";

#[test]
fn reference_cosines_match_sentence_transformers() {
    let embedder = Embedder::load(&model_dir()).expect("model loads");
    let out = embedder.embed(&[WEATHER, SUNNY, STADIUM]).expect("embeds");
    assert_eq!(out.vectors.len(), 3);
    for v in &out.vectors {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let sunny = cosine(&out.vectors[0], &out.vectors[1]);
    let stadium = cosine(&out.vectors[0], &out.vectors[2]);
    assert!((sunny - 0.666).abs() <= 0.01, "weather~sunny = {sunny}");
    assert!(
        (stadium - 0.105).abs() <= 0.01,
        "weather~stadium = {stadium}"
    );
}

#[test]
fn a_text_gets_the_same_vector_alone_and_in_a_padded_batch() {
    let embedder = Embedder::load(&model_dir()).expect("model loads");
    let alone = embedder.embed(&[SUNNY]).expect("embeds");
    let long = "A much longer sentence that forces padding of the short ones in the same batch, \
                because it has many more tokens than they do.";
    let batch = embedder.embed(&[long, SUNNY, WEATHER]).expect("embeds");
    let diff: f32 = alone.vectors[0]
        .iter()
        .zip(&batch.vectors[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-4, "padding changed the vector by {diff}");
    assert!(cosine(&batch.vectors[0], &batch.vectors[1]) < 0.99);
}

#[test]
fn long_texts_are_truncated_to_the_models_limit() {
    let embedder = Embedder::load(&model_dir()).expect("model loads");
    assert_eq!(embedder.max_tokens(), 256);
    let long = "word ".repeat(2000);
    let out = embedder.embed(&[long.as_str(), ""]).expect("embeds");
    // 256 for the long text, [CLS] [SEP] for the empty one.
    assert_eq!(out.token_count, 256 + 2);
    assert_eq!(out.vectors[0].len(), 384);
}

#[test]
fn many_texts_run_in_several_batches_in_order() {
    let embedder = Embedder::load(&model_dir()).expect("model loads");
    let texts: Vec<String> = (0..70).map(|i| format!("sentence number {i}")).collect();
    let out = embedder.embed(&texts).expect("embeds");
    assert_eq!(out.vectors.len(), 70);
    let single = embedder.embed(&[texts[41].as_str()]).expect("embeds");
    assert!(cosine(&single.vectors[0], &out.vectors[41]) > 0.9999);
    assert!(
        embedder
            .embed::<&str>(&[])
            .expect("empty")
            .vectors
            .is_empty()
    );
}

#[test]
fn a_folder_without_the_model_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let err = Embedder::load(empty.path()).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("scripts/setup.sh"),
        "{err}"
    );
}

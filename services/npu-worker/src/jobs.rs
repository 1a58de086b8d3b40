//! What the worker does with a job from the stream.

use autobot_jobs::{FailureCode, JobEnvelope, JobFailure, JobHandler};
use autobot_wire::jobs::{EmbedRequest, KIND_EMBED};

use crate::inference::{InferenceError, Npu};

/// Runs `embed` jobs on the NPU; any other kind is refused.
#[derive(Clone, Debug)]
pub struct NpuJobs {
    pub npu: Npu,
}

impl JobHandler for NpuJobs {
    async fn handle(&self, job: JobEnvelope) -> Result<serde_json::Value, JobFailure> {
        if job.kind != KIND_EMBED {
            return Err(JobFailure::new(
                FailureCode::UnknownKind,
                format!(
                    "the npu-worker does not run jobs of kind {:?}; it runs: {KIND_EMBED}",
                    job.kind
                ),
            ));
        }
        let request: EmbedRequest = serde_json::from_value(job.payload).map_err(|e| {
            JobFailure::new(
                FailureCode::InvalidPayload,
                format!("an embed payload is {{\"texts\": [\"…\"]}}: {e}"),
            )
        })?;
        let response = self.npu.embed(request.texts).await.map_err(failure)?;
        serde_json::to_value(response)
            .map_err(|e| JobFailure::new(FailureCode::Failed, format!("encoding the result: {e}")))
    }
}

fn failure(e: InferenceError) -> JobFailure {
    let code = match &e {
        InferenceError::ModelUnavailable(_) => FailureCode::ModelUnavailable,
        InferenceError::InvalidInput(_) | InferenceError::TooLarge(_) => {
            FailureCode::InvalidPayload
        }
        InferenceError::Failed(_) | InferenceError::Crashed(_) => FailureCode::Failed,
    };
    JobFailure::new(code, e.to_string())
}

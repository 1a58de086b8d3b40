//! The whole AutoBot system on loopback, for the end-to-end tests
//! (`tests/e2e/`) and the research benchmark (`benches/research.rs`): every
//! service a real process exporting to the trace tool, real redis-server, a
//! real sshd "VM" with the PKI agent, the demo web site, the stand-in LLM.

pub mod system;

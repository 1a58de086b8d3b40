//! # autobot-hostile
//!
//! The hostile-input suite, in one place an operator can find and rerun:
//!
//! ```sh
//! cargo build --workspace --bins
//! cargo nextest run -p autobot-hostile
//! ```
//!
//! Every test attacks real processes (the services, a real sshd, real
//! redis-server) the way a hostile network or web page would, and checks
//! what must hold: nothing a caller sends reaches a shell, the internal
//! network, or a core for long. The tests are in `tests/hostile/`, one
//! module per area. The SSH tests create system users and need root.

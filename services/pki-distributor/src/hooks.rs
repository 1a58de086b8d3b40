//! Test hooks of the agent: stop (SIGKILL) or fail at a named step of an
//! install, so the crash tests can show that every step leaves a whole set.
//!
//! Set only by `AUTOBOT_PKI_AGENT_TEST_HOOK` in the agent's own environment
//! (its `.env`, sshd's `SetEnv`): the distributor never sends it, and the
//! sshd snippet's `AcceptEnv` names only TRACEPARENT, TRACESTATE and BAGGAGE,
//! so nothing from the network can set it. Whoever can set it already owns
//! the account that owns the certificates. The hook only ever makes an
//! install stop or fail; it cannot make one do anything else.
//!
//! Value: a comma list of `kill:STEP` or `fail:STEP`. The steps, in order:
//! `lock`, `snapshot`, `link:NAME` (a stable name becomes a symlink),
//! `write:NAME` (a file of the new release), `release`, `swap`, `sync`
//! (the swap made durable; a failure here rolls back), `rollback`, `prune`.

use std::io;

/// The variable that arms the hooks.
pub const HOOK_VAR: &str = "AUTOBOT_PKI_AGENT_TEST_HOOK";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Kill,
    Fail,
}

/// Where the install stops or fails; none by default.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    at: Vec<(Action, String)>,
}

impl Hooks {
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a hook value; `Err` names what is not understood.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut at = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (action, step) = match part.split_once(':') {
                Some(("kill", step)) => (Action::Kill, step),
                Some(("fail", step)) => (Action::Fail, step),
                _ => return Err(format!("{part:?} is not kill:STEP or fail:STEP")),
            };
            at.push((action, step.to_owned()));
        }
        Ok(Self { at })
    }

    /// The hooks `AUTOBOT_PKI_AGENT_TEST_HOOK` asks for (none when unset).
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(HOOK_VAR) {
            Ok(v) => Self::parse(&v).map_err(|e| format!("{HOOK_VAR}={v:?} is not valid: {e}")),
            Err(_) => Ok(Self::none()),
        }
    }

    pub fn is_armed(&self) -> bool {
        !self.at.is_empty()
    }

    /// Called before `step`: kills this process (SIGKILL, as a crash or an
    /// OOM kill would) or fails with an I/O error, when armed for `step`.
    pub fn at(&self, step: &str) -> io::Result<()> {
        for (action, armed) in &self.at {
            if armed != step {
                continue;
            }
            match action {
                Action::Fail => {
                    return Err(io::Error::other(format!("test hook: failing at {step}")));
                }
                Action::Kill => kill_self(),
            }
        }
        Ok(())
    }
}

/// SIGKILL to this process: no destructor, no flush, like a real crash.
fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` is gone or failed: still stop here, without cleaning up.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_parse_and_fire_only_at_their_step() {
        let hooks = Hooks::parse("fail:sync, fail:rollback").unwrap();
        assert!(hooks.is_armed());
        assert!(hooks.at("swap").is_ok());
        assert!(hooks.at("sync").is_err());
        assert!(hooks.at("rollback").is_err());
        assert!(!Hooks::none().is_armed());
        assert!(Hooks::parse("explode:swap").is_err());
        assert!(Hooks::parse("").unwrap().at("swap").is_ok());
    }
}

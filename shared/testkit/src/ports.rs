//! Free loopback ports, for what cannot be told to bind port 0 and say
//! where it landed (redis-server, sshd) and for an address nobody answers
//! on (a peer that is down). Services under test bind port 0 themselves:
//! see [`crate::process`].

use std::net::{SocketAddr, TcpListener};

/// A loopback port nobody listens on right now. It is only probed: another
/// process can take it before ours binds it, so a caller that binds it
/// later retries on failure (as [`crate::redis::RedisServer`] does).
pub fn free_port() -> u16 {
    free_addr().port()
}

/// `127.0.0.1:PORT` with a [`free_port`]: where a peer that is down "listens".
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound_and_nobody_answers_on_it() {
        let addr = free_addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "nobody answers"
        );
        TcpListener::bind(addr).expect("free to bind");
    }
}

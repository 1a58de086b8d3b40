//! The command line: `serve`, `show`, `check`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::check::{CheckOutcome, Expected, POLL_INTERVAL, is_span_id, wait_and_check};
use crate::client::{JaegerClient, QUERY_URL_VAR, default_query_url};
use crate::serve::ServeConfig;
use crate::trace_id::TraceId;

#[derive(Debug, Parser)]
#[command(
    name = "autobot-trace",
    version,
    about = "A Jaeger stand-in (serve) and a trace viewer and checker (show, check) that speak Jaeger's query API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive OTLP (gRPC and HTTP), keep spans in memory, answer Jaeger's query API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:4317")]
        otlp_grpc: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:4318")]
        otlp_http: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:16686")]
        query: SocketAddr,
        /// Spans kept; beyond it whole oldest traces are evicted.
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
        max_spans: u64,
        /// A web page's origin (scheme://host[:port]; * for any, or one * inside such as
        /// http://127.0.0.1:*) that may send spans from a browser to OTLP/HTTP: the
        /// receiver answers its CORS preflight. Repeatable or comma separated; none by default.
        #[arg(long = "cors-origin", value_delimiter = ',', value_parser = parse_origin)]
        cors_origins: Vec<String>,
        /// Bytes of spans kept (as received, with their index); beyond it
        /// whole oldest traces are evicted too.
        #[arg(long, default_value_t = 256 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
        max_bytes: u64,
        #[command(flatten)]
        tls: ServeTlsArgs,
    },
    /// Print a trace as a tree: service, operation, kind, offset, duration, status, key attributes.
    Show {
        /// 16 or 32 hex digits.
        trace_id: String,
        #[command(flatten)]
        jaeger: JaegerArg,
    },
    /// Exit 0 only when the trace is whole: one root, every parent present, every service present.
    /// Exit 1 otherwise (with the reasons), 2 when the query API cannot be reached.
    Check {
        trace_id: String,
        /// Services that must have at least one span, comma separated.
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// The span id (16 hex digits) of a caller known not to be exported,
        /// e.g. the span of a traceparent a test sent: the span continuing it
        /// counts as the root. Any other missing parent fails the check.
        /// Repeatable or comma separated.
        #[arg(long = "remote-parent", value_delimiter = ',', value_parser = parse_span_id)]
        remote_parents: Vec<String>,
        /// How long to poll (once a second) for the trace to arrive whole: 20s, 500ms, 1m.
        #[arg(long, default_value = "20s", value_parser = parse_wait)]
        wait: Duration,
        #[command(flatten)]
        jaeger: JaegerArg,
    },
    /// After a deploy: one research request against the backend, then check
    /// that its trace is whole across backend, browser, npu-worker and ai-stack.
    Smoke {
        /// The deployed backend, e.g. http://172.16.168.20:8001.
        #[arg(long)]
        backend: String,
        /// An operator key (`autobot-backend keygen smoke user`), sent as
        /// `Authorization: Bearer`.
        #[arg(long, env = "AUTOBOT_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// For an https backend: the CA its certificate chains to (the
        /// system's roots without it).
        #[arg(long)]
        backend_ca: Option<std::path::PathBuf>,
        /// The page the research request reads (the browser VM must reach it).
        #[arg(long = "url", id = "page", default_value = crate::smoke::DEFAULT_PAGE)]
        page: String,
        #[arg(long, default_value = crate::smoke::DEFAULT_QUESTION)]
        question: String,
        /// Send a sampled traceparent, so the trace is kept at any sampling rate.
        #[arg(long)]
        force_sample: bool,
        /// How long to wait for the trace to arrive whole.
        #[arg(long, default_value = "60s", value_parser = parse_wait)]
        wait: Duration,
        #[command(flatten)]
        jaeger: JaegerArg,
    },
}

/// TLS on the OTLP listeners, as Jaeger's receivers are set up with mutual
/// TLS: the three together, or none (plain HTTP and gRPC). The query API
/// stays plain HTTP.
#[derive(Debug, clap::Args)]
pub struct ServeTlsArgs {
    /// The receiver's certificate (PEM).
    #[arg(long, env = "AUTOBOT_TLS_CERT", requires_all = ["tls_key", "tls_client_ca"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "AUTOBOT_TLS_KEY", requires_all = ["tls_cert", "tls_client_ca"])]
    pub tls_key: Option<std::path::PathBuf>,
    /// The CA exporters' client certificates must chain to (PEM); a client
    /// without one fails at the handshake.
    #[arg(long, env = "AUTOBOT_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// With TLS: `optional` lets OTLP/HTTP take clients without a certificate
    /// (web pages sending spans from users' browsers; one that shows a
    /// certificate must still chain to the CA). gRPC always requires one.
    #[arg(
        long,
        env = "AUTOBOT_TRACE_OTLP_HTTP_CLIENT_CERT",
        default_value = "required",
        value_parser = ["required", "optional"]
    )]
    pub otlp_http_client_cert: String,
}

impl ServeTlsArgs {
    fn http_client_certificates(&self) -> autobot_tls::server::ClientCertificates {
        match self.otlp_http_client_cert.as_str() {
            "optional" => autobot_tls::server::ClientCertificates::Optional,
            _ => autobot_tls::server::ClientCertificates::Required,
        }
    }

    fn files(self) -> Option<autobot_tls::TlsFiles> {
        use autobot_tls::PemFile;
        let (cert, key, ca) = (self.tls_cert?, self.tls_key?, self.tls_client_ca?);
        Some(autobot_tls::TlsFiles {
            ca: Some(PemFile::new("--tls-client-ca (AUTOBOT_TLS_CA)", ca)),
            identity: Some((
                PemFile::new("--tls-cert (AUTOBOT_TLS_CERT)", cert),
                PemFile::new("--tls-key (AUTOBOT_TLS_KEY)", key),
            )),
            check_every: Duration::from_millis(autobot_tls::DEFAULT_RELOAD_MS),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct JaegerArg {
    /// Jaeger query API (16686): a real Jaeger v2 or `autobot-trace serve`.
    /// Default: $AUTOBOT_JAEGER_QUERY_URL, else http://127.0.0.1:16686.
    #[arg(long = "jaeger")]
    pub url: Option<String>,
}

impl JaegerArg {
    fn client(&self) -> Result<JaegerClient, String> {
        let url = self.url.clone().unwrap_or_else(default_query_url);
        JaegerClient::new(&url).map_err(|e| {
            if self.url.is_none() {
                format!("{e} (from {QUERY_URL_VAR})")
            } else {
                e.to_string()
            }
        })
    }
}

fn parse_span_id(text: &str) -> Result<String, String> {
    let id = text.trim().to_ascii_lowercase();
    if is_span_id(&id) {
        Ok(id)
    } else {
        Err(format!(
            "{text:?} is not a span id: 16 hex digits, not all zero"
        ))
    }
}

fn parse_origin(text: &str) -> Result<String, String> {
    autobot_otlp_receiver::CorsPolicy::new([text])
        .map(|_| text.trim().to_owned())
        .map_err(|e| e.to_string())
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    crate::time_text::parse_go_duration(text).map(Duration::from_nanos)
}

/// Runs a command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve {
            otlp_grpc,
            otlp_http,
            query,
            max_spans,
            cors_origins,
            max_bytes,
            tls,
        } => {
            let cors = match autobot_otlp_receiver::CorsPolicy::new(&cors_origins) {
                Ok(cors) => cors,
                Err(e) => {
                    eprintln!("autobot-trace serve: --cors-origin {e}");
                    return 2;
                }
            };
            let config = ServeConfig {
                otlp_grpc,
                otlp_http,
                query,
                max_spans: usize::try_from(max_spans).unwrap_or(usize::MAX),
                cors,
                max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
                otlp_http_client_certs: tls.http_client_certificates(),
                otlp_tls: tls.files(),
            };
            // A TLS file that cannot be used is a bad argument (exit 2), named.
            if let Some(files) = &config.otlp_tls
                && let Err(e) = autobot_tls::TlsSource::load(files.clone(), false)
            {
                eprintln!("autobot-trace serve: {e}");
                return 2;
            }
            match crate::serve::run(config).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("autobot-trace serve: {e:#}");
                    1
                }
            }
        }
        Command::Show { trace_id, jaeger } => {
            let (id, client) = match parse_args(&trace_id, &jaeger) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("autobot-trace show: {e}");
                    return 2;
                }
            };
            match client.trace(id).await {
                Ok(Some(trace)) => {
                    print!("{}", crate::show::render(&trace));
                    0
                }
                Ok(None) => {
                    eprintln!(
                        "autobot-trace show: trace {} not found at {}",
                        id.jaeger(),
                        client.base_url()
                    );
                    1
                }
                Err(e) => {
                    eprintln!("autobot-trace show: {e}");
                    if e.is_unreachable() { 2 } else { 1 }
                }
            }
        }
        Command::Check {
            trace_id,
            services,
            remote_parents,
            wait,
            jaeger,
        } => {
            let (id, client) = match parse_args(&trace_id, &jaeger) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("autobot-trace check: {e}");
                    return 2;
                }
            };
            let services: Vec<String> = services
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            let expected = Expected {
                services,
                remote_parents,
            };
            let outcome = wait_and_check(&client, id, &expected, wait, POLL_INTERVAL).await;
            report(&outcome, id, &expected);
            outcome.exit_code()
        }
        Command::Smoke {
            backend,
            api_key,
            backend_ca,
            page,
            question,
            force_sample,
            wait,
            jaeger,
        } => {
            let backend = crate::smoke::Backend {
                url: backend,
                api_key,
                ca: backend_ca,
            };
            smoke_command(&backend, &page, &question, force_sample, wait, &jaeger).await
        }
    }
}

async fn smoke_command(
    backend: &crate::smoke::Backend,
    url: &str,
    question: &str,
    force_sample: bool,
    wait: Duration,
    jaeger: &JaegerArg,
) -> i32 {
    match jaeger.client() {
        Ok(client) => crate::smoke::run(backend, &client, url, question, force_sample, wait).await,
        Err(e) => {
            eprintln!("autobot-trace smoke: {e}");
            2
        }
    }
}

fn parse_args(trace_id: &str, jaeger: &JaegerArg) -> Result<(TraceId, JaegerClient), String> {
    let id = TraceId::parse(trace_id).map_err(|e| e.to_string())?;
    Ok((id, jaeger.client()?))
}

fn report(outcome: &CheckOutcome, id: TraceId, expected: &Expected) {
    match outcome {
        CheckOutcome::Whole(trace) => {
            println!(
                "OK trace {}: {} spans, one root{}, every parent present{}",
                id.jaeger(),
                trace.spans.len(),
                if expected.remote_parents.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (continuing remote parent {})",
                        expected.remote_parents.join(",")
                    )
                },
                if expected.services.is_empty() {
                    String::new()
                } else {
                    format!(", services {}", expected.services.join(","))
                }
            );
        }
        CheckOutcome::Broken { trace, problems } => {
            println!(
                "FAIL trace {}{}:",
                id.jaeger(),
                trace
                    .as_ref()
                    .map(|t| format!(" ({} spans)", t.spans.len()))
                    .unwrap_or_default()
            );
            for problem in problems {
                println!("  - {problem}");
            }
        }
        CheckOutcome::Unreachable(e) => {
            eprintln!("autobot-trace check: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

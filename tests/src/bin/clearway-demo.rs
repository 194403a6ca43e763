//! `clearway-demo`: Hengqin Port on this machine (`just demo`). See `clearway_tests::demo`.

use std::io::Write;

use clap::Parser;
use clearway_tests::demo::{Options, run};

fn main() -> std::process::ExitCode {
    let opts = Options::parse();
    // The narrative goes to stdout; library warnings (simulators, TLS) to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "clearway-demo: cannot start the async runtime: {e}"
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "clearway-demo: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

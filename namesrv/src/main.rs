//! `ferromq-namesrv`: reads the config and flags, starts logging, binds the port and runs
//! the name server until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferromq_namesrv::NamesrvConfig;
use tracing_subscriber::EnvFilter;

/// The ferromq name server (RocketMQ-compatible).
#[derive(Debug, Parser)]
#[command(name = "ferromq-namesrv", version, about)]
struct Args {
    /// A `namesrv.properties` file (RocketMQ's keys: listenPort, kvConfigPath, ...).
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// TCP port to listen on; overrides `listenPort`.
    #[arg(short = 'p', long = "listen-port", value_name = "PORT")]
    listen_port: Option<u16>,
    /// Address to bind; overrides `bindAddress`.
    #[arg(long = "bind-address", value_name = "ADDR")]
    bind_address: Option<String>,
    /// KV config file; overrides `kvConfigPath`.
    #[arg(long = "kv-config-path", value_name = "FILE")]
    kv_config_path: Option<PathBuf>,
    /// Print the effective configuration as properties and exit (Java's `mqnamesrv -p`).
    #[arg(long = "print-config")]
    print_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ferromq-namesrv: {error}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        print!("{}", config.to_properties_text());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferromq-namesrv: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "name server failed");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &Args) -> ferromq_namesrv::Result<NamesrvConfig> {
    let mut config = match &args.config_file {
        Some(path) => NamesrvConfig::from_properties_file(path)?,
        None => NamesrvConfig::default(),
    };
    if let Some(port) = args.listen_port {
        config.listen_port = port;
    }
    if let Some(address) = &args.bind_address {
        config.bind_address.clone_from(address);
    }
    if let Some(path) = &args.kv_config_path {
        config.kv_config_path.clone_from(path);
    }
    config.validate()?;
    Ok(config)
}

async fn serve(config: NamesrvConfig) -> std::io::Result<()> {
    let addr = (config.bind_address.as_str(), config.listen_port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot listen on {}:{}: {error}", config.bind_address, config.listen_port),
        )
    })?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    ferromq_namesrv::run(listener, config, shutdown_signal()).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => drop(signal.recv().await),
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

//! `ferromq-broker`: reads `broker.conf` and flags, starts logging, binds and runs.
//!
//! With no name server configured (no `namesrvAddr` in the file, no `-n`, no
//! `NAMESRV_ADDR`), it runs standalone: a name server in-process on 127.0.0.1:9876, the
//! broker registered with it, the store under `./data`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferromq_broker::{Broker, BrokerConfig};

/// A RocketMQ-compatible broker.
#[derive(Debug, Parser)]
#[command(name = "ferromq-broker", version)]
struct Args {
    /// A `broker.conf` (Java properties) file.
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name server addresses, `host:port;host:port` (overrides the file).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv_addr: Option<String>,
    /// Extra `key=value` settings applied after the file, e.g. `-o listenPort=10921`.
    #[arg(short = 'o', long = "option")]
    options: Vec<String>,
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match start(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("ferromq-broker: {error}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut config = BrokerConfig::with_store_dir("./data");
    if let Some(path) = &args.config_file {
        config.load_file(path)?;
    }
    if let Some(list) = &args.namesrv_addr {
        config.apply("namesrvAddr", list)?;
    }
    for option in &args.options {
        let (key, value) =
            option.split_once('=').ok_or_else(|| format!("option {option:?} is not key=value"))?;
        if !config.apply(key.trim(), value)? {
            return Err(format!("unknown option key {key:?}").into());
        }
    }
    let standalone = config.namesrv_addr.is_empty();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let namesrv = if standalone {
            let addr = "127.0.0.1:9876";
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| {
                ferromq_broker::StartError::Bind { addr: addr.to_owned(), source }
            })?;
            let mut namesrv_config = ferromq_namesrv::NamesrvConfig::default();
            let dir = config.store.store_path_root_dir.join("namesrv");
            namesrv_config.kv_config_path = dir.join("kvConfig.json");
            namesrv_config.config_store_path = dir.join("namesrv.properties");
            config.namesrv_addr = vec![addr.to_owned()];
            let mut stopped = stopped.clone();
            tracing::info!(%addr, "standalone: name server in-process");
            Some(tokio::spawn(ferromq_namesrv::run(listener, namesrv_config, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })))
        } else {
            None
        };
        let (signalled, signal) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            signalled.send_replace(true);
        });
        // The broker asks to be opened again — a slave whose CommitLog must be cut to follow
        // its master (the cut happens in `Broker::open`, before serving), or new settings
        // from UPDATE_BROKER_CONFIG (a master switch among them) — and is opened here, in
        // the same process, on the port its settings name.
        loop {
            let broker = Broker::open(config.clone())?;
            let restart = broker.ha.restart_handle();
            config = broker.config.clone();
            let (listener, fast_listener) = bind(broker.config.listen_port).await?;
            let mut stopped = signal.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            ferromq_broker::run_with_fast_port(broker, listener, fast_listener, shutdown).await?;
            if *signal.borrow() {
                break;
            }
            let Some(next) = restart.next_config(&config) else { break };
            tracing::warn!(
                role = next.broker_role.name(),
                id = next.broker_id,
                "reopening the broker in-process, as it asked"
            );
            config = next;
        }
        tracing::info!("broker stopped cleanly");
        stop.send_replace(true);
        if let Some(namesrv) = namesrv {
            namesrv.await??;
        }
        Ok(())
    })
}

/// The main listener on `0.0.0.0:port` and, when it can bind, the fast port `port − 2`.
async fn bind(
    port: u16,
) -> Result<(tokio::net::TcpListener, Option<tokio::net::TcpListener>), ferromq_broker::StartError>
{
    let addr = format!("0.0.0.0:{port}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ferromq_broker::StartError::Bind { addr: addr.clone(), source })?;
    let fast_port = port.saturating_sub(2);
    let fast_listener = match tokio::net::TcpListener::bind(("0.0.0.0", fast_port)).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(port = fast_port, %error, "fast (VIP) port unavailable; serving the main port only");
            None
        }
    };
    Ok((listener, fast_listener))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    drop(interrupt.await);
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    drop(interrupt.await);
}

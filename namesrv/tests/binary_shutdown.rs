//! The `ferromq-namesrv` binary: flags override the config file, a bad config exits with a
//! clear message, and SIGTERM (or SIGINT) shuts it down cleanly with exit status 0.
#![cfg(test)]
#![cfg(unix)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

const BINARY: &str = env!("CARGO_BIN_EXE_ferromq-namesrv");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn print_config_applies_file_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("namesrv.properties");
    std::fs::write(&file, "listenPort=9000\norderMessageEnable=true\n").unwrap();
    let output = Command::new(BINARY)
        .args(["-c", file.to_str().unwrap(), "-p", "9100", "--print-config"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("listenPort=9100\n"), "{printed}");
    assert!(printed.contains("orderMessageEnable=true\n"), "{printed}");
}

#[test]
fn bad_config_value_exits_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("namesrv.properties");
    std::fs::write(&file, "scanNotActiveBrokerInterval=soon\n").unwrap();
    let output = Command::new(BINARY).args(["-c", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("scanNotActiveBrokerInterval is \"soon\""), "{stderr}");
}

#[test]
fn serves_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BINARY)
        .args(["--bind-address", "127.0.0.1", "-p", &port.to_string()])
        .arg("--kv-config-path")
        .arg(dir.path().join("kvConfig.json"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let addr = format!("127.0.0.1:{port}");
    runtime.block_on(async {
        let client = RemotingClient::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        let response = loop {
            let request = RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO.code());
            match client.invoke(&addr, request, Duration::from_secs(2)).await {
                Ok(response) => break response,
                Err(error) if Instant::now() < deadline => {
                    drop(error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("the binary never answered: {error}"),
            }
        };
        assert_eq!(response.code, ResponseCode::SUCCESS.code());
        client.close_all();
    });
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running 15 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    child.stdout.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(logs.contains("SIGTERM received"), "{logs}");
}

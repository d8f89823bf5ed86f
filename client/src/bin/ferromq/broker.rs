//! `broker config|update-config|switch-master`: a broker's settings, and the manual master
//! switch of a broker group (Java `mqadmin getBrokerConfig` / `updateBrokerConfig`).

use std::time::Duration;

use clap::Subcommand;
use ferromq_client::{Admin, ClientConfig, Error, Result};
use serde_json::json;

use crate::output::{Output, parse_duration};

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// A broker's settings (GET_BROKER_CONFIG).
    Config {
        /// Broker address.
        #[arg(short = 'b', long)]
        broker: String,
    },
    /// Change settings of a running broker (UPDATE_BROKER_CONFIG), e.g.
    /// `-k brokerRole -v SLAVE -k brokerId -v 1`. The broker checks them all (nothing
    /// changes if one is bad), writes them into its config file, answers, and reopens
    /// itself in-process with them on the same port.
    UpdateConfig {
        /// Broker address.
        #[arg(short = 'b', long)]
        broker: String,
        /// A key; repeat `-k` and `-v` to set several at once.
        #[arg(short = 'k', long = "key", required = true)]
        keys: Vec<String>,
        /// The value of the `-k` at the same position.
        #[arg(short = 'v', long = "value", required = true)]
        values: Vec<String>,
    },
    /// Make a slave the master of its group and the master a slave of it: waits until the
    /// slave has caught up, demotes the old master, promotes the slave (to the old master's
    /// role). Under ASYNC_MASTER, what the slave still lacked at that moment is cut from
    /// the old master when it rejoins; under SYNC_MASTER nothing acknowledged is lost.
    SwitchMaster {
        /// The slave to promote.
        #[arg(long)]
        new_master: String,
        /// The master to demote.
        #[arg(long)]
        old_master: String,
        /// How long to wait for the slave to catch up before giving up (nothing changed).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        catch_up_timeout: Duration,
    },
}

pub async fn run(namesrv: &str, out: Output, command: BrokerCommand) -> Result<()> {
    let admin = Admin::new(ClientConfig::with_namesrv(namesrv))?;
    let result = run_inner(&admin, out, command).await;
    admin.shutdown();
    result
}

async fn run_inner(admin: &Admin, out: Output, command: BrokerCommand) -> Result<()> {
    match command {
        BrokerCommand::Config { broker } => {
            let config = admin.broker_config(&broker).await?;
            if out.json {
                out.json(&json!(config));
            } else {
                let rows: Vec<Vec<String>> =
                    config.into_iter().map(|(key, value)| vec![key, value]).collect();
                out.table(&["key", "value"], &rows);
            }
        }
        BrokerCommand::UpdateConfig { broker, keys, values } => {
            if keys.len() != values.len() {
                return Err(Error::InvalidArgument(format!(
                    "{} keys (-k) but {} values (-v): give one value per key",
                    keys.len(),
                    values.len()
                )));
            }
            let pairs: Vec<(&str, &str)> =
                keys.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
            admin.update_broker_config(&broker, &pairs).await?;
            if out.json {
                out.json(&json!({"broker": broker, "updated": keys}));
            } else {
                for (key, value) in pairs {
                    println!("{broker}: {key}={value}");
                }
            }
        }
        BrokerCommand::SwitchMaster { new_master, old_master, catch_up_timeout } => {
            let switch = admin.switch_master(&new_master, &old_master, catch_up_timeout).await?;
            if out.json {
                out.json(&json!({
                    "brokerName": switch.broker_name,
                    "newMaster": new_master,
                    "role": switch.role,
                    "oldMaster": old_master,
                    "oldMasterId": switch.old_master_id,
                    "oldMasterOffset": switch.old_master_offset,
                    "newMasterOffset": switch.new_master_offset,
                }));
            } else {
                println!(
                    "{}: {new_master} is now {} (brokerId 0); {old_master} is now SLAVE (brokerId {})",
                    switch.broker_name, switch.role, switch.old_master_id
                );
                let ahead = switch.old_master_offset - switch.new_master_offset;
                if ahead > 0 {
                    println!(
                        "{old_master} was {ahead} bytes ahead at the last check: what the new master \
                         still lacked is cut from it when it rejoins"
                    );
                }
            }
        }
    }
    Ok(())
}

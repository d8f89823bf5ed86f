//! `topic`, `cluster`, `group` and `offset` commands.

use clap::{Args, Subcommand};
use ferromq_client::admin::{SubscriptionGroupConfig, TopicTarget, topic_config};
use ferromq_client::{Admin, ClientConfig, Error, MessageQueue, Result};
use serde_json::json;

use crate::output::{Output, format_time, parse_time_ms};

/// Where a change goes: a cluster's masters or one broker.
#[derive(Debug, Args)]
pub struct Target {
    /// Cluster name (every master of it).
    #[arg(short = 'c', long, conflicts_with = "broker")]
    cluster: Option<String>,
    /// One broker address.
    #[arg(short = 'b', long)]
    broker: Option<String>,
}

impl Target {
    fn resolve(&self) -> TopicTarget {
        match (&self.cluster, &self.broker) {
            (_, Some(broker)) => TopicTarget::Broker(broker.clone()),
            (Some(cluster), None) => TopicTarget::Cluster(cluster.clone()),
            (None, None) => TopicTarget::Cluster("DefaultCluster".to_owned()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic (default: every master of DefaultCluster).
    Create(TopicArgs),
    /// Change a topic's queues, permission or order flag (same as create).
    Update(TopicArgs),
    /// Delete a topic from the brokers and the name servers.
    Delete {
        /// Topic.
        #[arg(short = 't', long)]
        topic: String,
        #[command(flatten)]
        target: Target,
    },
    /// Every topic the name server knows.
    List,
    /// A topic's route: brokers and queue counts.
    Route {
        /// Topic.
        #[arg(short = 't', long)]
        topic: String,
    },
    /// Min/max offsets of every queue of a topic.
    Stats {
        /// Topic.
        #[arg(short = 't', long)]
        topic: String,
    },
}

#[derive(Debug, Args)]
pub struct TopicArgs {
    /// Topic.
    #[arg(short = 't', long)]
    topic: String,
    #[command(flatten)]
    target: Target,
    /// Read queues.
    #[arg(short = 'r', long, default_value_t = 8)]
    read_queues: i32,
    /// Write queues.
    #[arg(short = 'w', long, default_value_t = 8)]
    write_queues: i32,
    /// Permission: 2 write, 4 read, 6 both.
    #[arg(short = 'p', long, default_value_t = 6)]
    perm: i32,
    /// Mark the topic as ordered.
    #[arg(long)]
    order: bool,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Also ask every broker for its runtime statistics (TPS, today's totals).
    #[arg(long)]
    runtime: bool,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create or update a subscription group.
    Create {
        /// Group.
        #[arg(short = 'g', long)]
        group: String,
        #[command(flatten)]
        target: Target,
        /// Retries before the dead-letter queue.
        #[arg(long, default_value_t = 16)]
        retry_max_times: i32,
        /// Refuse broadcasting consumers.
        #[arg(long)]
        no_broadcast: bool,
        /// Orderly consumption.
        #[arg(long)]
        orderly: bool,
    },
    /// Delete a subscription group.
    Delete {
        /// Group.
        #[arg(short = 'g', long)]
        group: String,
        #[command(flatten)]
        target: Target,
        /// Also drop its offsets.
        #[arg(long)]
        remove_offsets: bool,
    },
    /// Subscription groups of every master.
    List,
    /// Per-queue offsets and lag of a group.
    Progress {
        /// Group.
        #[arg(short = 'g', long)]
        group: String,
        /// Only this topic.
        #[arg(short = 't', long)]
        topic: Option<String>,
    },
    /// Clients connected for a group, and its subscriptions.
    Connections {
        /// Group.
        #[arg(short = 'g', long)]
        group: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OffsetCommand {
    /// A group's committed offsets on every queue of a topic, with the queue offsets.
    Get {
        /// Group.
        #[arg(short = 'g', long)]
        group: String,
        /// Topic.
        #[arg(short = 't', long)]
        topic: String,
    },
    /// Set a group's offset: one queue (`--queue` and `--broker-name`) or all queues.
    /// Running consumers overwrite it; stop them first.
    Set {
        /// Group.
        #[arg(short = 'g', long)]
        group: String,
        /// Topic.
        #[arg(short = 't', long)]
        topic: String,
        /// Queue id (all queues when absent).
        #[arg(short = 'q', long)]
        queue: Option<i32>,
        /// Broker name of the queue (default: every broker).
        #[arg(long)]
        broker_name: Option<String>,
        /// The offset.
        #[arg(long, conflicts_with = "timestamp")]
        offset: Option<i64>,
        /// Reset to the first message stored at or after this time (ms, yyyyMMddHHmmss UTC,
        /// or `now`).
        #[arg(long)]
        timestamp: Option<String>,
    },
}

fn admin(namesrv: &str) -> Result<Admin> {
    Admin::new(ClientConfig::with_namesrv(namesrv))
}

pub async fn topic(namesrv: &str, out: Output, command: TopicCommand) -> Result<()> {
    let admin = admin(namesrv)?;
    let result = topic_inner(&admin, out, command).await;
    admin.shutdown();
    result
}

async fn topic_inner(admin: &Admin, out: Output, command: TopicCommand) -> Result<()> {
    match command {
        TopicCommand::Create(args) | TopicCommand::Update(args) => {
            let mut config = topic_config(&args.topic, args.read_queues, args.write_queues);
            config.perm = args.perm;
            config.order = args.order;
            let brokers = admin.create_topic(&args.target.resolve(), &config).await?;
            if out.json {
                out.json(&json!({"topic": args.topic, "brokers": brokers}));
            } else {
                for broker in brokers {
                    println!("topic {} created or updated on {broker}", args.topic);
                }
            }
        }
        TopicCommand::Delete { topic, target } => {
            admin.delete_topic(&target.resolve(), &topic).await?;
            if !out.json {
                println!("topic {topic} deleted");
            }
        }
        TopicCommand::List => {
            let topics = admin.topic_list().await?;
            if out.json {
                out.json(&json!(topics));
            } else {
                topics.iter().for_each(|topic| println!("{topic}"));
            }
        }
        TopicCommand::Route { topic } => {
            let route = admin.topic_route(&topic).await?;
            let mut rows = Vec::new();
            for queues in &route.queue_datas {
                let addrs = route
                    .broker_datas
                    .iter()
                    .find(|b| b.broker_name == queues.broker_name)
                    .map(|b| {
                        b.broker_addrs
                            .iter()
                            .map(|(id, addr)| format!("{id}:{addr}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                rows.push(vec![
                    queues.broker_name.clone(),
                    addrs,
                    queues.read_queue_nums.to_string(),
                    queues.write_queue_nums.to_string(),
                    queues.perm.to_string(),
                ]);
            }
            out.table(&["brokerName", "addrs", "readQueues", "writeQueues", "perm"], &rows);
        }
        TopicCommand::Stats { topic } => {
            let stats = admin.topic_stats(&topic).await?;
            let rows: Vec<Vec<String>> = stats
                .iter()
                .map(|(queue, offsets)| {
                    vec![
                        queue.broker_name.clone(),
                        queue.queue_id.to_string(),
                        offsets.min_offset.to_string(),
                        offsets.max_offset.to_string(),
                        format_time(offsets.last_update_timestamp),
                    ]
                })
                .collect();
            out.table(&["brokerName", "queueId", "minOffset", "maxOffset", "lastUpdated"], &rows);
        }
    }
    Ok(())
}

pub async fn cluster(namesrv: &str, out: Output, args: ClusterArgs) -> Result<()> {
    let admin = admin(namesrv)?;
    let info = admin.cluster_info().await;
    let info = match info {
        Ok(info) => info,
        Err(error) => {
            admin.shutdown();
            return Err(error);
        }
    };
    let mut rows = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        for name in names {
            let Some(broker) = info.broker_addr_table.get(name) else { continue };
            for (id, addr) in &broker.broker_addrs {
                let mut row = vec![cluster.clone(), name.clone(), id.to_string(), addr.clone()];
                if args.runtime {
                    let stats = admin.broker_runtime_info(addr).await.unwrap_or_default();
                    let first = |key: &str| {
                        stats.get(key).and_then(|v| v.split(' ').next()).unwrap_or("-").to_owned()
                    };
                    row.push(stats.get("brokerVersionDesc").cloned().unwrap_or_default());
                    row.push(first("putTps"));
                    row.push(first("getTransferedTps"));
                    row.push(stats.get("msgPutTotalTodayNow").cloned().unwrap_or_default());
                }
                rows.push(row);
            }
        }
    }
    admin.shutdown();
    let mut headers = vec!["cluster", "brokerName", "brokerId", "addr"];
    if args.runtime {
        headers.extend(["version", "putTps", "getTps", "putToday"]);
    }
    out.table(&headers, &rows);
    Ok(())
}

pub async fn group(namesrv: &str, out: Output, command: GroupCommand) -> Result<()> {
    let admin = admin(namesrv)?;
    let result = group_inner(&admin, out, command).await;
    admin.shutdown();
    result
}

async fn group_inner(admin: &Admin, out: Output, command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::Create { group, target, retry_max_times, no_broadcast, orderly } => {
            let mut config = SubscriptionGroupConfig::new(group.clone());
            config.retry_max_times = retry_max_times;
            config.consume_broadcast_enable = !no_broadcast;
            config.consume_message_orderly = orderly;
            admin.create_subscription_group(&target.resolve(), &config).await?;
            if !out.json {
                println!("group {group} created or updated");
            }
        }
        GroupCommand::Delete { group, target, remove_offsets } => {
            admin.delete_subscription_group(&target.resolve(), &group, remove_offsets).await?;
            if !out.json {
                println!("group {group} deleted");
            }
        }
        GroupCommand::List => {
            let info = admin.cluster_info().await?;
            let mut rows = Vec::new();
            for broker in info.broker_addr_table.values() {
                let Some(addr) = broker.broker_addrs.get(&0) else { continue };
                for (name, config) in admin.subscription_groups(addr).await? {
                    rows.push(vec![
                        broker.broker_name.clone(),
                        name,
                        config.consume_broadcast_enable.to_string(),
                        config.consume_message_orderly.to_string(),
                        config.retry_max_times.to_string(),
                    ]);
                }
            }
            out.table(&["brokerName", "group", "broadcast", "orderly", "retryMaxTimes"], &rows);
        }
        GroupCommand::Progress { group, topic } => {
            let progress = admin.consume_stats(&group, topic.as_deref()).await?;
            let mut rows: Vec<Vec<String>> = progress
                .stats
                .offset_table
                .iter()
                .map(|(queue, offsets)| {
                    vec![
                        queue.topic.clone(),
                        queue.broker_name.clone(),
                        queue.queue_id.to_string(),
                        offsets.broker_offset.to_string(),
                        offsets.consumer_offset.to_string(),
                        (offsets.broker_offset - offsets.consumer_offset).to_string(),
                        format_time(offsets.last_timestamp),
                    ]
                })
                .collect();
            if !out.json {
                rows.push(vec![
                    "total".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    progress.total_lag().to_string(),
                    String::new(),
                ]);
            }
            out.table(
                &[
                    "topic",
                    "brokerName",
                    "queueId",
                    "brokerOffset",
                    "consumerOffset",
                    "lag",
                    "lastConsumed",
                ],
                &rows,
            );
        }
        GroupCommand::Connections { group } => {
            let connection = admin.consumer_connections(&group).await?;
            let rows: Vec<Vec<String>> = connection
                .connections
                .iter()
                .map(|c| {
                    vec![
                        c.client_id.clone(),
                        c.client_addr.clone(),
                        c.language.clone(),
                        c.version.to_string(),
                    ]
                })
                .collect();
            out.table(&["clientId", "clientAddr", "language", "version"], &rows);
            if !out.json {
                println!(
                    "consumeType={} messageModel={} consumeFromWhere={}",
                    connection.consume_type,
                    connection.message_model,
                    connection.consume_from_where
                );
                for (topic, subscription) in &connection.subscriptions {
                    println!("subscription {topic}: {}", subscription.sub_string);
                }
            }
        }
    }
    Ok(())
}

pub async fn offset(namesrv: &str, out: Output, command: OffsetCommand) -> Result<()> {
    let admin = admin(namesrv)?;
    let result = offset_inner(&admin, out, command).await;
    admin.shutdown();
    result
}

async fn offset_inner(admin: &Admin, out: Output, command: OffsetCommand) -> Result<()> {
    match command {
        OffsetCommand::Get { group, topic } => {
            let mut rows = Vec::new();
            for queue in admin.topic_queues(&topic).await? {
                let committed = admin.consumer_offset(&group, &queue).await?;
                rows.push(vec![
                    queue.broker_name.clone(),
                    queue.queue_id.to_string(),
                    admin.min_offset(&queue).await?.to_string(),
                    admin.max_offset(&queue).await?.to_string(),
                    committed.map_or_else(|| "-".to_owned(), |offset| offset.to_string()),
                ]);
            }
            out.table(&["brokerName", "queueId", "minOffset", "maxOffset", "committed"], &rows);
        }
        OffsetCommand::Set { group, topic, queue, broker_name, offset, timestamp } => {
            let queues: Vec<MessageQueue> = admin
                .topic_queues(&topic)
                .await?
                .into_iter()
                .filter(|q| queue.is_none_or(|id| q.queue_id == id))
                .filter(|q| broker_name.as_ref().is_none_or(|name| &q.broker_name == name))
                .collect();
            if queues.is_empty() {
                return Err(Error::InvalidArgument("no queue matches".into()));
            }
            let mut rows = Vec::new();
            for queue in queues {
                let new_offset = match (offset, &timestamp) {
                    (Some(offset), _) => offset,
                    (None, Some(time)) => {
                        let ms = parse_time_ms(time).map_err(Error::InvalidArgument)?;
                        admin.search_offset(&queue, ms).await?
                    }
                    (None, None) => {
                        return Err(Error::InvalidArgument("give --offset or --timestamp".into()));
                    }
                };
                admin.update_consumer_offset(&group, &queue, new_offset).await?;
                rows.push(vec![
                    queue.broker_name.clone(),
                    queue.queue_id.to_string(),
                    new_offset.to_string(),
                ]);
            }
            out.table(&["brokerName", "queueId", "offset"], &rows);
        }
    }
    Ok(())
}

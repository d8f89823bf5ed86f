//! Criterion benchmarks of ferromq live in `benches/benches/`; run them with
//! `cargo bench -p ferromq-benches`. Set `RMQ_BENCH_DIR` to put store files on a real disk.

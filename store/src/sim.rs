//! A simulated disk for crash testing (STYLE.md §10; redb's `CrashBackend`, TigerBeetle's
//! `src/testing/storage.zig`): an in-memory file system behind the [`Storage`] seam that
//! keeps, for every file, a **written image** (what the page cache holds) and a **durable
//! image** (what the last completed `msync`/`fdatasync` covering each page made durable).
//!
//! A power cut ([`PowerCut`]) fires when the count of mutating operations (`write_at`,
//! `sync_range`, `create_segment`, `remove_file`, `sync_dir`, `create_marker`) reaches
//! `at_op`: that operation and every later one fail, reads included, so the store stops.
//! [`SimStorage::after_power_cut`] then builds the disk as it looks after the reboot:
//!
//! - every unsynced ("dirty") 4 KiB page is independently **kept** (the write reached the
//!   disk), **dropped** (the durable content stays), **torn** (a prefix of the written page
//!   over the durable page) or **garbage** (random bytes), weighted by [`CutFates`]. Only
//!   the bytes written since the page was last synced change: what a completed sync covered
//!   stays durable, as docs/formats.md assumes of the disk;
//! - every directory entry created or removed since its directory was last synced
//!   ([`Storage::sync_dir`], or `create_marker`, which syncs its directory) independently
//!   survives or not: a new file or directory may vanish (with everything below it), a
//!   removed one may come back with its durable content.
//!
//! Everything random comes from the cut's seed through [`SimRng`], so one seed and one disk
//! state give one post-reboot disk.
//!
//! Modelling choices, stricter or looser than a real file system:
//! - A file's size (`create_segment` reserves it with `fallocate`) is durable together with
//!   its directory entry: a surviving file has its full size, never a short one.
//! - A failed sync (see [`SimStorage::fail_sync_at`]) leaves its pages dirty: their fate is
//!   decided at the next power cut.
//! - `view` copies the bytes; there is no zero-copy and no mapping here.
//!
//! Determinism aids for harnesses: an optional journal of every counted operation with the
//! name of the thread that issued it ([`SimStorage::record_journal`]), and a gate that parks
//! the store's background threads (names starting with `ferromq-`) while the test drives a
//! call ([`SimStorage::hold_background`]), so that every run issues the same operations in
//! the same order. With that, one run can also capture the post-reboot disk of many crash
//! points ([`SimStorage::capture_before_ops`]): the disk just before operation `n` is the
//! disk a run cut at `n` leaves behind.
//!
//! Injected errors for poison and disk-full tests: [`SimStorage::fail_sync_at`] and
//! [`SimStorage::fail_next_sync_of`] (`EIO`),
//! [`SimStorage::fail_create_with_enospc_at`] and [`SimStorage::set_capacity_bytes`].

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::io::{DirEntry, DirLock, DiskUsage, SegmentFile, Storage};

/// Granularity of dirty tracking and of power-cut fates.
pub const SIM_PAGE_SIZE: usize = 4096;
/// `EIO` (the same number on Linux, the BSDs and macOS).
const EIO: i32 = 5;
/// Threads whose name starts with this are the store's background threads.
const BACKGROUND_THREAD_PREFIX: &str = "ferromq-";
/// Capacity of a new simulated disk.
const DEFAULT_CAPACITY_BYTES: u64 = 1 << 40;

/// Power fails at the `at_op`-th counted operation (1-based): operations `1..at_op` complete,
/// operation `at_op` and every later one fail. `seed` decides the fate of unsynced pages and
/// directory entries in [`SimStorage::after_power_cut`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PowerCut {
    /// The failing operation, 1-based.
    pub at_op: u64,
    /// Seed of the post-reboot fates.
    pub seed: u64,
}

/// Relative weights of the four fates of an unsynced page at a power cut, the chance that an
/// unsynced directory change survives, and the granularity of torn writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutFates {
    /// The page as written reaches the disk.
    pub keep: u32,
    /// The page keeps its durable content.
    pub drop: u32,
    /// A prefix of the written page lands over the durable page.
    pub torn: u32,
    /// The page reads back as random bytes.
    pub garbage: u32,
    /// Percent chance that an unsynced entry change (creation or removal) survives.
    pub entry_survival_percent: u32,
    /// Torn prefixes are a multiple of this many bytes (1: any length; 512: whole sectors).
    pub torn_granularity_bytes: usize,
}

impl Default for CutFates {
    /// Keep 4, drop 3, torn 2, garbage 1; entries survive half the time; tears at any byte.
    fn default() -> Self {
        CutFates {
            keep: 4,
            drop: 3,
            torn: 2,
            garbage: 1,
            entry_survival_percent: 50,
            torn_granularity_bytes: 1,
        }
    }
}

impl CutFates {
    /// Only whole pages kept or dropped: what a disk with atomic 4 KiB writes does.
    pub fn whole_pages() -> Self {
        CutFates { torn: 0, garbage: 0, ..CutFates::default() }
    }
}

/// A counted operation: the `Storage` and `SegmentFile` calls that change the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// `SegmentFile::write_at`.
    Write,
    /// `SegmentFile::sync_range`.
    SyncRange,
    /// `Storage::create_segment`.
    CreateSegment,
    /// `Storage::remove_file`.
    RemoveFile,
    /// `Storage::sync_dir`.
    SyncDir,
    /// `Storage::create_marker`.
    CreateMarker,
}

/// One counted operation, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// 1-based number of the operation (the value `PowerCut::at_op` would name).
    pub seq: u64,
    /// What it was.
    pub kind: OpKind,
    /// The file or directory it was on.
    pub path: PathBuf,
    /// Byte position (writes, syncs) or 0.
    pub pos: u64,
    /// Bytes written or synced, or the size created, or 0.
    pub len: u64,
    /// Name of the issuing thread.
    pub thread: Option<String>,
    /// Whether the operation failed (power cut or an injected error).
    pub failed: bool,
}

impl OpRecord {
    /// Whether a store background thread issued it (`ferromq-index`, `ferromq-alloc`, …).
    pub fn is_background(&self) -> bool {
        self.thread.as_deref().is_some_and(|name| name.starts_with(BACKGROUND_THREAD_PREFIX))
    }
}

/// A small deterministic generator (splitmix64), so that the simulation needs no dependency.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "empty range");
        self.next_u64() % bound
    }

    /// True with probability `percent / 100`.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The in-memory file system. Cheap to share behind an `Arc`; see the module docs.
pub struct SimStorage {
    shared: Arc<Shared>,
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("SimStorage")
            .field("nodes", &state.nodes.len())
            .field("op_count", &state.op_count)
            .field("powered_off", &state.powered_off)
            .finish()
    }
}

impl Default for SimStorage {
    fn default() -> Self {
        SimStorage::new()
    }
}

/// State shared by the storage and every open segment.
struct Shared {
    state: Mutex<State>,
    /// Signalled after every counted operation, when the gate opens and at a power cut.
    changed: Condvar,
    /// Mirrors `State::powered_off` so that reads need not take the state lock.
    powered_off: AtomicBool,
}

struct State {
    /// Every file and directory by path; a parent sorts before its children.
    nodes: BTreeMap<PathBuf, Node>,
    /// Removals whose directory was not synced since: they may be undone by a power cut.
    removed: Vec<(PathBuf, Node)>,
    op_count: u64,
    sync_count: u64,
    create_count: u64,
    cut: Option<PowerCut>,
    powered_off: bool,
    fail_sync_at: Option<u64>,
    /// The next sync of a path containing this fails with `EIO`.
    fail_sync_of: Option<String>,
    fail_create_at: Option<u64>,
    fates: CutFates,
    capacity_bytes: u64,
    /// Cuts to capture before the operation they name, latest first.
    planned_captures: Vec<PowerCut>,
    captures: Vec<(PowerCut, SimStorage)>,
    hold_background: bool,
    /// While the gate is held, the one background thread name let through.
    let_through: Option<String>,
    journal: Option<Vec<OpRecord>>,
}

#[derive(Clone)]
struct Node {
    file: Option<FileRef>,
    /// Whether the entry's creation reached the disk (its directory was synced since).
    entry_durable: bool,
}

type FileRef = Arc<Mutex<FileData>>;

struct FileData {
    written: Vec<u8>,
    durable: Vec<u8>,
    /// Per `SIM_PAGE_SIZE` page: the span (within the page) written since it was last
    /// synced, `None` if clean. Outside the span written and durable bytes are equal.
    dirty: Vec<Option<(usize, usize)>>,
    modified: SystemTime,
}

impl FileData {
    fn new(len: usize, modified: SystemTime) -> Self {
        FileData {
            written: vec![0; len],
            durable: vec![0; len],
            dirty: vec![None; len.div_ceil(SIM_PAGE_SIZE)],
            modified,
        }
    }

    fn resize(&mut self, len: usize) {
        self.written.resize(len, 0);
        self.durable.resize(len, 0);
        self.dirty.resize(len.div_ceil(SIM_PAGE_SIZE), None);
    }

    /// The content after a power cut: durable pages as they are, dirty pages by fate.
    fn after_cut(&self, rng: &mut SimRng, fates: &CutFates) -> FileData {
        let mut image = self.durable.clone();
        for (page, span) in self.dirty.iter().enumerate() {
            let Some(span) = *span else {
                continue;
            };
            let start = page * SIM_PAGE_SIZE;
            let end = (start + SIM_PAGE_SIZE).min(image.len());
            apply_fate(&mut image[start..end], &self.written[start..end], span, rng, fates);
        }
        FileData {
            durable: image.clone(),
            dirty: vec![None; self.dirty.len()],
            written: image,
            modified: self.modified,
        }
    }
}

/// Decides and applies the fate of one dirty page: `page` holds the durable bytes, `span`
/// the bytes written since the last sync. Bytes outside the span were made durable by an
/// earlier sync and stay as they are whatever happens (docs/formats.md, "Assumptions about
/// the disk": a completed sync makes the bytes it covers durable).
fn apply_fate(
    page: &mut [u8],
    written: &[u8],
    (lo, hi): (usize, usize),
    rng: &mut SimRng,
    fates: &CutFates,
) {
    assert!(lo < hi && hi <= page.len(), "dirty span {lo}..{hi} of a {} B page", page.len());
    let weights = [fates.keep, fates.drop, fates.torn, fates.garbage];
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return;
    }
    let mut pick = rng.below(total);
    let mut fate = 0;
    for (index, &weight) in weights.iter().enumerate() {
        if pick < u64::from(weight) {
            fate = index;
            break;
        }
        pick -= u64::from(weight);
    }
    match fate {
        0 => page[lo..hi].copy_from_slice(&written[lo..hi]),
        1 => {}
        2 => {
            // The page is written front to back and the power fails at a multiple of the
            // granularity strictly inside the span.
            let granularity = fates.torn_granularity_bytes.max(1);
            let first = lo / granularity + 1;
            let last = (hi - 1) / granularity;
            if first <= last {
                let len = (first + rng.below((last - first + 1) as u64) as usize) * granularity;
                page[lo..len].copy_from_slice(&written[lo..len]);
            }
        }
        _ => rng.fill(&mut page[lo..hi]),
    }
}

impl SimStorage {
    /// An empty disk with 1 TiB of space and no faults planned.
    pub fn new() -> Self {
        SimStorage::from_nodes(BTreeMap::new(), CutFates::default(), DEFAULT_CAPACITY_BYTES, false)
    }

    /// An empty disk that loses power at `cut.at_op`.
    pub fn with_power_cut(cut: PowerCut) -> Self {
        let storage = SimStorage::new();
        storage.set_power_cut(Some(cut));
        storage
    }

    fn from_nodes(
        nodes: BTreeMap<PathBuf, Node>,
        fates: CutFates,
        capacity_bytes: u64,
        journal: bool,
    ) -> Self {
        let state = State {
            nodes,
            removed: Vec::new(),
            op_count: 0,
            sync_count: 0,
            create_count: 0,
            cut: None,
            powered_off: false,
            fail_sync_at: None,
            fail_sync_of: None,
            fail_create_at: None,
            fates,
            capacity_bytes,
            planned_captures: Vec::new(),
            captures: Vec::new(),
            hold_background: false,
            let_through: None,
            journal: journal.then(Vec::new),
        };
        SimStorage {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changed: Condvar::new(),
                powered_off: AtomicBool::new(false),
            }),
        }
    }

    /// Plans (or with `None` cancels) a power cut; counting continues from the current count.
    pub fn set_power_cut(&self, cut: Option<PowerCut>) {
        self.shared.state.lock().cut = cut;
    }

    /// Sets the fate weights used by [`SimStorage::after_power_cut`].
    pub fn set_cut_fates(&self, fates: CutFates) {
        self.shared.state.lock().fates = fates;
    }

    /// The next sync (`sync_range` or `sync_dir`) of a path that contains `fragment` fails
    /// with `EIO` and leaves its pages dirty.
    pub fn fail_next_sync_of(&self, fragment: &str) {
        self.shared.state.lock().fail_sync_of = Some(fragment.to_owned());
    }

    /// The `n`-th sync from now on (1-based; `sync_range` and `sync_dir` count) fails with
    /// `EIO` and leaves its pages dirty.
    pub fn fail_sync_at(&self, n: u64) {
        let mut state = self.shared.state.lock();
        state.fail_sync_at = Some(state.sync_count + n);
    }

    /// The `n`-th `create_segment` from now on (1-based) fails with `StorageFull`.
    pub fn fail_create_with_enospc_at(&self, n: u64) {
        let mut state = self.shared.state.lock();
        state.fail_create_at = Some(state.create_count + n);
    }

    /// Total bytes of the disk: creating a file past it fails with `StorageFull`.
    pub fn set_capacity_bytes(&self, capacity_bytes: u64) {
        self.shared.state.lock().capacity_bytes = capacity_bytes;
    }

    /// Cuts the power now, as if the planned cut had fired.
    pub fn power_off(&self) {
        let mut state = self.shared.state.lock();
        self.cut_power(&mut state);
    }

    /// Whether the power is cut (every operation fails).
    pub fn is_powered_off(&self) -> bool {
        self.shared.powered_off.load(Ordering::Acquire)
    }

    /// Counted operations so far (including a failed one).
    pub fn op_count(&self) -> u64 {
        self.shared.state.lock().op_count
    }

    /// Starts (clearing it) or stops recording the journal of counted operations.
    pub fn record_journal(&self, on: bool) {
        self.shared.state.lock().journal = on.then(Vec::new);
    }

    /// The journal entries with `seq > after` (empty when the journal is off).
    pub fn journal_since(&self, after: u64) -> Vec<OpRecord> {
        let state = self.shared.state.lock();
        let Some(journal) = &state.journal else {
            return Vec::new();
        };
        let start = journal.partition_point(|op| op.seq <= after);
        journal[start..].to_vec()
    }

    /// While held, operations that change the disk (counted ones, and creating or removing
    /// directories) from the store's background threads wait until released or the power is
    /// cut. A harness holds the gate while it drives a store call and releases it to let
    /// background work run at a point of its choosing.
    ///
    /// The store must not wait for a background thread that is parked here; that is, the
    /// harness must let background work finish before the next call that could wait for it.
    pub fn hold_background(&self, hold: bool) {
        let mut state = self.shared.state.lock();
        state.hold_background = hold;
        state.let_through = None;
        drop(state);
        self.shared.changed.notify_all();
    }

    /// While the gate is held, lets the background threads named exactly `name` through
    /// (one kind of work at a time keeps their operations in a fixed order); `None` lets
    /// none through.
    pub fn let_background_through(&self, name: Option<&str>) {
        let mut state = self.shared.state.lock();
        state.let_through = name.map(str::to_owned);
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Blocks until the next counted operation, a gate change or a power cut, or `timeout`.
    pub fn wait_for_activity(&self, timeout: Duration) {
        let mut state = self.shared.state.lock();
        let _ = self.shared.changed.wait_for(&mut state, timeout);
    }

    /// Creates `dir` and its parents with durable entries (the mount point a test starts from).
    pub fn create_dir_all_durable(&self, dir: &Path) {
        let mut state = self.shared.state.lock();
        for ancestor in ancestors_top_down(dir) {
            state
                .nodes
                .entry(ancestor)
                .or_insert(Node { file: None, entry_durable: true })
                .entry_durable = true;
        }
    }

    /// The written image of a file (what a reader sees now).
    pub fn file_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let file = self.shared.state.lock().nodes.get(path)?.file.clone()?;
        let data = file.lock();
        Some(data.written.clone())
    }

    /// The durable image of a file (what survives a power cut for sure).
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let file = self.shared.state.lock().nodes.get(path)?.file.clone()?;
        let data = file.lock();
        Some(data.durable.clone())
    }

    /// Overwrites bytes of a file in both images without counting (damage planted by a test).
    ///
    /// # Errors
    /// `NotFound` for a missing file, `InvalidInput` past its end.
    pub fn write_raw(&self, path: &Path, pos: u64, bytes: &[u8]) -> io::Result<()> {
        let file = self.shared.state.lock().nodes.get(path).and_then(|node| node.file.clone());
        let file = file.ok_or_else(|| not_found(path))?;
        let mut data = file.lock();
        let range = byte_range(path, pos, bytes.len() as u64, data.written.len())?;
        data.written[range.clone()].copy_from_slice(bytes);
        data.durable[range].copy_from_slice(bytes);
        Ok(())
    }

    /// Every file's path, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        let state = self.shared.state.lock();
        state.nodes.iter().filter(|(_, node)| node.file.is_some()).map(|(p, _)| p.clone()).collect()
    }

    /// The disk after a power cut now (or at the planned cut, if it fired), using the planned
    /// cut's seed (0 without one) and the configured fates. The new disk has no faults
    /// planned, every entry durable and every page clean; this one is left as it is.
    pub fn after_power_cut(&self) -> SimStorage {
        let (seed, fates) = {
            let state = self.shared.state.lock();
            (state.cut.map_or(0, |cut| cut.seed), state.fates)
        };
        self.after_power_cut_with(seed, fates)
    }

    /// [`SimStorage::after_power_cut`] with an explicit seed and fates.
    pub fn after_power_cut_with(&self, seed: u64, fates: CutFates) -> SimStorage {
        let state = self.shared.state.lock();
        state.after_cut(seed, fates)
    }

    /// Plans captures: just before operation `cut.at_op` would run, the disk as a power cut
    /// there would leave it (with `cut.seed`) is recorded, and the run goes on. One run
    /// then yields the post-reboot disk of many crash points; [`SimStorage::take_captures`]
    /// collects them.
    pub fn capture_before_ops(&self, mut cuts: Vec<PowerCut>) {
        cuts.sort_by_key(|cut| std::cmp::Reverse(cut.at_op));
        self.shared.state.lock().planned_captures = cuts;
    }

    /// The captured disks so far, and for planned cuts past the last operation the disk as
    /// it is now; clears the plan.
    pub fn take_captures(&self) -> Vec<(PowerCut, SimStorage)> {
        let mut state = self.shared.state.lock();
        let planned = std::mem::take(&mut state.planned_captures);
        for cut in planned.into_iter().rev() {
            let disk = state.after_cut(cut.seed, state.fates);
            state.captures.push((cut, disk));
        }
        std::mem::take(&mut state.captures)
    }

    fn cut_power(&self, state: &mut State) {
        state.powered_off = true;
        self.shared.powered_off.store(true, Ordering::Release);
        self.shared.changed.notify_all();
    }

    /// Counts one operation: waits at the gate if held for this thread, fails after a power
    /// cut (or fires the planned one), journals it. Returns the locked state to apply it.
    fn begin_op(
        &self,
        kind: OpKind,
        path: &Path,
        pos: u64,
        len: u64,
    ) -> io::Result<MutexGuard<'_, State>> {
        let mut state = self.shared.state.lock();
        let thread = std::thread::current().name().map(str::to_owned);
        while state.gated() && !state.powered_off {
            self.shared.changed.wait(&mut state);
        }
        if state.powered_off {
            return Err(power_lost(path));
        }
        while state.planned_captures.last().is_some_and(|cut| cut.at_op <= state.op_count + 1) {
            if let Some(cut) = state.planned_captures.pop() {
                let disk = state.after_cut(cut.seed, state.fates);
                state.captures.push((cut, disk));
            }
        }
        state.op_count += 1;
        let seq = state.op_count;
        let mut failed = false;
        if state.cut.is_some_and(|cut| seq >= cut.at_op) {
            self.cut_power(&mut state);
            failed = true;
        }
        if let Some(journal) = &mut state.journal {
            let path = path.to_path_buf();
            journal.push(OpRecord { seq, kind, path: path.clone(), pos, len, thread, failed });
        }
        self.shared.changed.notify_all();
        if failed {
            return Err(power_lost(path));
        }
        Ok(state)
    }

    fn mark_failed(state: &mut State) {
        if let Some(last) = state.journal.as_mut().and_then(|journal| journal.last_mut()) {
            last.failed = true;
        }
    }

    /// The state lock for an uncounted change (directories): waits at the gate like a
    /// counted operation, and fails after a power cut.
    fn begin_uncounted(&self, path: &Path) -> io::Result<MutexGuard<'_, State>> {
        let mut state = self.shared.state.lock();
        while state.gated() && !state.powered_off {
            self.shared.changed.wait(&mut state);
        }
        if state.powered_off {
            return Err(power_lost(path));
        }
        Ok(state)
    }

    fn check_power(&self, path: &Path) -> io::Result<()> {
        if self.is_powered_off() { Err(power_lost(path)) } else { Ok(()) }
    }

    fn segment(&self, path: &Path, file: FileRef, size: u64) -> Arc<dyn SegmentFile> {
        Arc::new(SimSegment { storage: self.clone_handle(), path: path.to_path_buf(), file, size })
    }

    fn clone_handle(&self) -> SimStorage {
        SimStorage { shared: self.shared.clone() }
    }
}

impl Node {
    fn after_cut(&self, rng: &mut SimRng, fates: &CutFates) -> Node {
        let file =
            self.file.as_ref().map(|file| Arc::new(Mutex::new(file.lock().after_cut(rng, fates))));
        Node { file, entry_durable: true }
    }
}

impl State {
    /// The disk a power cut now would leave, as a new storage (see `after_power_cut`).
    fn after_cut(&self, seed: u64, fates: CutFates) -> SimStorage {
        let mut rng = SimRng::new(seed);
        let mut nodes: BTreeMap<PathBuf, Node> = BTreeMap::new();
        let parent_alive = |nodes: &BTreeMap<PathBuf, Node>, path: &Path| match path.parent() {
            None => true,
            Some(parent) if parent.parent().is_none() => true,
            Some(parent) => nodes.get(parent).is_some_and(|node| node.file.is_none()),
        };
        for (path, node) in &self.nodes {
            if !parent_alive(&nodes, path) {
                continue;
            }
            if node.entry_durable || rng.chance(fates.entry_survival_percent) {
                nodes.insert(path.clone(), node.after_cut(&mut rng, &fates));
            }
        }
        for (path, node) in &self.removed {
            if nodes.contains_key(path) || !parent_alive(&nodes, path) {
                continue;
            }
            if rng.chance(fates.entry_survival_percent) {
                continue; // the removal survived
            }
            nodes.insert(path.clone(), node.after_cut(&mut rng, &fates));
        }
        SimStorage::from_nodes(nodes, self.fates, self.capacity_bytes, self.journal.is_some())
    }

    /// Whether the sync just counted, of `path`, is one planned to fail (clearing the plan).
    fn sync_fails(&mut self, path: &Path) -> bool {
        if self.fail_sync_at == Some(self.sync_count) {
            return true;
        }
        let matches = |fragment: &String| path.to_string_lossy().contains(fragment.as_str());
        self.fail_sync_of.take_if(|fragment| matches(fragment)).is_some()
    }

    /// Whether the calling thread must wait at the gate.
    fn gated(&self) -> bool {
        if !self.hold_background || !is_background_thread() {
            return false;
        }
        let current = std::thread::current();
        self.let_through.is_none() || current.name() != self.let_through.as_deref()
    }

    /// Makes every entry change in `dir` durable.
    fn sync_entries(&mut self, dir: &Path) {
        for (path, node) in self.nodes.iter_mut() {
            if path.parent() == Some(dir) {
                node.entry_durable = true;
            }
        }
        self.removed.retain(|(path, _)| path.parent() != Some(dir));
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.parent().is_none() || self.nodes.get(path).is_some_and(|node| node.file.is_none())
    }

    fn used_bytes(&self) -> u64 {
        self.nodes
            .values()
            .filter_map(|node| node.file.as_ref())
            .map(|f| f.lock().written.len() as u64)
            .sum()
    }

    fn remove(&mut self, path: &Path) {
        if let Some(node) = self.nodes.remove(path) {
            self.removed.push((path.to_path_buf(), node));
        }
    }
}

impl Storage for SimStorage {
    fn create_segment(&self, path: &Path, size: u64) -> io::Result<Arc<dyn SegmentFile>> {
        let mut state = self.begin_op(OpKind::CreateSegment, path, 0, size)?;
        state.create_count += 1;
        if state.fail_create_at == Some(state.create_count) {
            Self::mark_failed(&mut state);
            return Err(io::Error::new(io::ErrorKind::StorageFull, "simulated ENOSPC"));
        }
        let len = usize::try_from(size).map_err(|_| invalid(path, "size does not fit memory"))?;
        if let Some(file) = state.nodes.get(path).and_then(|node| node.file.clone()) {
            let mut data = file.lock();
            if data.written.len() < len {
                data.resize(len);
            }
            drop(data);
            // As with `mmap`, only the first `size` bytes of a longer file are used.
            return Ok(self.segment(path, file, size));
        }
        if !path.parent().is_some_and(|parent| state.is_dir(parent)) {
            Self::mark_failed(&mut state);
            return Err(not_found(path));
        }
        if state.used_bytes().saturating_add(size) > state.capacity_bytes {
            Self::mark_failed(&mut state);
            return Err(io::Error::new(io::ErrorKind::StorageFull, "simulated disk full"));
        }
        let file = Arc::new(Mutex::new(FileData::new(len, SystemTime::now())));
        state
            .nodes
            .insert(path.to_path_buf(), Node { file: Some(file.clone()), entry_durable: false });
        drop(state);
        Ok(self.segment(path, file, size))
    }

    fn open_segment(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        self.check_power(path)?;
        let file = self.shared.state.lock().nodes.get(path).and_then(|node| node.file.clone());
        let file = file.ok_or_else(|| not_found(path))?;
        let size = file.lock().written.len() as u64;
        Ok(self.segment(path, file, size))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.check_power(dir)?;
        let state = self.shared.state.lock();
        let mut listed = Vec::new();
        for (path, node) in state.nodes.iter().filter(|(path, _)| path.parent() == Some(dir)) {
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            let len = node.file.as_ref().map_or(0, |file| file.lock().written.len() as u64);
            listed.push(DirEntry { name: name.to_owned(), len, is_dir: node.file.is_none() });
        }
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.begin_uncounted(dir)?;
        for ancestor in ancestors_top_down(dir) {
            match state.nodes.get(&ancestor) {
                Some(node) if node.file.is_some() => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is a file", ancestor.display()),
                    ));
                }
                Some(_) => {}
                None => {
                    state.nodes.insert(ancestor, Node { file: None, entry_durable: false });
                }
            }
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.begin_op(OpKind::RemoveFile, path, 0, 0)?;
        if state.nodes.get(path).is_some_and(|node| node.file.is_some()) {
            state.remove(path);
        }
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.begin_uncounted(dir)?;
        let is_empty_dir = state.nodes.get(dir).is_some_and(|node| node.file.is_none())
            && !state.nodes.keys().any(|path| path.parent() == Some(dir));
        if is_empty_dir {
            state.remove(dir);
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.begin_op(OpKind::SyncDir, dir, 0, 0)?;
        state.sync_count += 1;
        if state.sync_fails(dir) {
            Self::mark_failed(&mut state);
            return Err(io::Error::from_raw_os_error(EIO));
        }
        if !state.is_dir(dir) {
            Self::mark_failed(&mut state);
            return Err(not_found(dir));
        }
        state.sync_entries(dir);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        !self.is_powered_off() && {
            let state = self.shared.state.lock();
            path.parent().is_none() || state.nodes.contains_key(path)
        }
    }

    fn create_marker(&self, path: &Path) -> io::Result<()> {
        let mut state = self.begin_op(OpKind::CreateMarker, path, 0, 0)?;
        let Some(parent) = path.parent().filter(|parent| state.is_dir(parent)) else {
            Self::mark_failed(&mut state);
            return Err(not_found(path));
        };
        let parent = parent.to_path_buf();
        let file = Arc::new(Mutex::new(FileData::new(0, SystemTime::now())));
        state.nodes.insert(path.to_path_buf(), Node { file: Some(file), entry_durable: true });
        state.sync_entries(&parent);
        Ok(())
    }

    fn disk_usage(&self, dir: &Path) -> io::Result<DiskUsage> {
        self.check_power(dir)?;
        let state = self.shared.state.lock();
        let used_bytes = state.used_bytes();
        Ok(DiskUsage {
            used_bytes,
            available_bytes: state.capacity_bytes.saturating_sub(used_bytes),
        })
    }

    fn modified(&self, path: &Path) -> io::Result<SystemTime> {
        self.check_power(path)?;
        let file = self.shared.state.lock().nodes.get(path).and_then(|node| node.file.clone());
        let file = file.ok_or_else(|| not_found(path))?;
        let modified = file.lock().modified;
        Ok(modified)
    }

    fn lock_dir(&self, root: &Path) -> io::Result<DirLock> {
        self.check_power(root)?;
        Ok(DirLock::unlocked())
    }
}

/// One open file of a [`SimStorage`]; it stays usable after its path is removed.
struct SimSegment {
    storage: SimStorage,
    path: PathBuf,
    file: FileRef,
    size: u64,
}

impl fmt::Debug for SimSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimSegment").field("path", &self.path).field("size", &self.size).finish()
    }
}

impl SegmentFile for SimSegment {
    fn path(&self) -> &Path {
        &self.path
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        let range = byte_range(&self.path, pos, data.len() as u64, self.size as usize)?;
        let mut state = self.storage.begin_op(OpKind::Write, &self.path, pos, data.len() as u64)?;
        let mut file = self.file.lock();
        if range.end > file.written.len() {
            Self::fail(&mut state);
            return Err(invalid(&self.path, "write past the end of the file"));
        }
        file.written[range.clone()].copy_from_slice(data);
        if !range.is_empty() {
            for page in range.start / SIM_PAGE_SIZE..=(range.end - 1) / SIM_PAGE_SIZE {
                let page_start = page * SIM_PAGE_SIZE;
                let lo = range.start.max(page_start) - page_start;
                let hi = range.end.min(page_start + SIM_PAGE_SIZE) - page_start;
                let span = file.dirty[page].map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi)));
                file.dirty[page] = Some(span);
            }
        }
        file.modified = SystemTime::now();
        Ok(())
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.storage.check_power(&self.path)?;
        let file = self.file.lock();
        let range = byte_range(&self.path, pos, buf.len() as u64, file.written.len())?;
        buf.copy_from_slice(&file.written[range]);
        Ok(())
    }

    fn view(self: Arc<Self>, pos: u64, len: usize) -> io::Result<Bytes> {
        self.storage.check_power(&self.path)?;
        let file = self.file.lock();
        let range = byte_range(&self.path, pos, len as u64, file.written.len())?;
        Ok(Bytes::copy_from_slice(&file.written[range]))
    }

    fn sync_range(&self, pos: u64, len: u64) -> io::Result<()> {
        let mut state = self.storage.begin_op(OpKind::SyncRange, &self.path, pos, len)?;
        state.sync_count += 1;
        if state.sync_fails(&self.path) {
            Self::fail(&mut state);
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let mut file = self.file.lock();
        let range = match byte_range(&self.path, pos, len, file.written.len()) {
            Ok(range) => range,
            Err(err) => {
                Self::fail(&mut state);
                return Err(err);
            }
        };
        if range.is_empty() {
            return Ok(());
        }
        // msync works on whole pages: every page the range touches becomes durable.
        for page in range.start / SIM_PAGE_SIZE..=(range.end - 1) / SIM_PAGE_SIZE {
            if let Some((lo, hi)) = file.dirty[page].take() {
                let start = page * SIM_PAGE_SIZE;
                let FileData { written, durable, .. } = &mut *file;
                durable[start + lo..start + hi].copy_from_slice(&written[start + lo..start + hi]);
            }
        }
        Ok(())
    }

    fn prefault_range(&self, _pos: u64, _len: u64) -> io::Result<()> {
        self.storage.check_power(&self.path)
    }
}

impl SimSegment {
    fn fail(state: &mut State) {
        SimStorage::mark_failed(state);
    }
}

fn is_background_thread() -> bool {
    std::thread::current().name().is_some_and(|name| name.starts_with(BACKGROUND_THREAD_PREFIX))
}

/// `dir` and its ancestors below the file system root, outermost first.
fn ancestors_top_down(dir: &Path) -> Vec<PathBuf> {
    let mut ancestors: Vec<PathBuf> = dir
        .ancestors()
        .filter(|path| path.parent().is_some() && !path.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect();
    ancestors.reverse();
    ancestors
}

fn byte_range(path: &Path, pos: u64, len: u64, size: usize) -> io::Result<std::ops::Range<usize>> {
    let end = pos.checked_add(len).filter(|&end| end <= size as u64);
    match end {
        Some(end) => Ok(pos as usize..end as usize),
        None => Err(invalid(path, &format!("range {pos}+{len} past the file size {size}"))),
    }
}

fn power_lost(path: &Path) -> io::Error {
    io::Error::other(format!("simulated power loss ({})", path.display()))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} does not exist", path.display()))
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {what}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> SimStorage {
        let storage = SimStorage::new();
        storage.create_dir_all_durable(Path::new("/mnt"));
        storage
    }

    #[test]
    fn synced_pages_survive_and_unsynced_follow_their_fate() {
        let storage = disk();
        let path = Path::new("/mnt/f");
        let file = storage.create_segment(path, 3 * 4096).unwrap();
        storage.sync_dir(Path::new("/mnt")).unwrap();
        file.write_at(0, &[1; 4096]).unwrap();
        file.write_at(4096, &[2; 100]).unwrap();
        file.sync_range(0, 10).unwrap();
        file.write_at(8192, &[3; 4096]).unwrap();
        let keep = CutFates { keep: 1, drop: 0, torn: 0, garbage: 0, ..CutFates::default() };
        let kept = storage.after_power_cut_with(1, keep).file_contents(path).unwrap();
        assert_eq!(&kept[..4096], &[1; 4096]);
        assert_eq!(&kept[4096..4196], &[2; 100]);
        assert_eq!(&kept[8192..], &[3; 4096]);
        let drop = CutFates { keep: 0, drop: 1, torn: 0, garbage: 0, ..CutFates::default() };
        let dropped = storage.after_power_cut_with(1, drop).file_contents(path).unwrap();
        assert_eq!(&dropped[..4096], &[1; 4096], "the synced page is durable");
        assert!(dropped[4096..].iter().all(|&b| b == 0), "unsynced pages are dropped");
        let torn = CutFates { keep: 0, drop: 0, torn: 1, garbage: 0, ..CutFates::default() };
        let torn = storage.after_power_cut_with(7, torn).file_contents(path).unwrap();
        let prefix = torn[8192..].iter().take_while(|&&b| b == 3).count();
        assert!(prefix > 0 && prefix < 4096, "torn prefix {prefix}");
        assert!(torn[8192 + prefix..].iter().all(|&b| b == 0));
    }

    #[test]
    fn power_cut_fails_the_nth_op_and_everything_after() {
        let storage = disk();
        storage.set_power_cut(Some(PowerCut { at_op: 3, seed: 9 }));
        let file = storage.create_segment(Path::new("/mnt/f"), 4096).unwrap();
        file.write_at(0, b"abc").unwrap();
        assert!(file.write_at(3, b"def").is_err());
        assert!(storage.is_powered_off());
        assert!(file.sync_range(0, 4096).is_err());
        assert!(file.read_at(0, &mut [0; 3]).is_err());
        assert_eq!(storage.op_count(), 3);
        storage.set_cut_fates(CutFates::whole_pages());
        let after = storage.after_power_cut();
        assert!(!after.is_powered_off());
        if let Some(bytes) = after.file_contents(Path::new("/mnt/f")) {
            assert!(bytes[..3] == *b"abc" || bytes[..3] == [0; 3], "{:?}", &bytes[..3]);
            assert_eq!(&bytes[3..6], &[0; 3], "the failed write never happened");
        }
    }

    #[test]
    fn unsynced_entries_may_vanish_and_removals_may_be_undone() {
        let mut vanished = 0;
        let mut resurrected = 0;
        for seed in 0..64 {
            let storage = disk();
            storage.create_dir_all(Path::new("/mnt/a/b")).unwrap();
            storage.create_segment(Path::new("/mnt/a/b/new"), 10).unwrap();
            let old = storage.create_segment(Path::new("/mnt/old"), 10).unwrap();
            old.write_at(0, b"x").unwrap();
            old.sync_range(0, 10).unwrap();
            storage.sync_dir(Path::new("/mnt")).unwrap();
            storage.remove_file(Path::new("/mnt/old")).unwrap();
            let after = storage.after_power_cut_with(seed, CutFates::default());
            if !after.exists(Path::new("/mnt/a/b/new")) {
                vanished += 1;
            }
            if let Some(bytes) = after.file_contents(Path::new("/mnt/old")) {
                assert_eq!(bytes[0], b'x');
                resurrected += 1;
            }
            assert!(after.exists(Path::new("/mnt/a")), "a synced entry stays");
        }
        assert!(vanished > 0 && vanished < 64, "{vanished}");
        assert!(resurrected > 0 && resurrected < 64, "{resurrected}");

        let storage = disk();
        storage.create_segment(Path::new("/mnt/f"), 10).unwrap();
        storage.sync_dir(Path::new("/mnt")).unwrap();
        storage.remove_file(Path::new("/mnt/f")).unwrap();
        storage.sync_dir(Path::new("/mnt")).unwrap();
        for seed in 0..16 {
            let after = storage.after_power_cut_with(seed, CutFates::default());
            assert!(!after.exists(Path::new("/mnt/f")), "a synced removal stays");
        }
    }

    #[test]
    fn injected_errors() {
        let storage = disk();
        storage.fail_create_with_enospc_at(2);
        let file = storage.create_segment(Path::new("/mnt/a"), 4096).unwrap();
        let err = storage.create_segment(Path::new("/mnt/b"), 4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        storage.fail_sync_at(2);
        file.write_at(0, b"x").unwrap();
        file.sync_range(0, 1).unwrap();
        file.write_at(0, b"y").unwrap();
        assert_eq!(file.sync_range(0, 1).unwrap_err().raw_os_error(), Some(EIO));
        assert_eq!(storage.durable_contents(Path::new("/mnt/a")).unwrap()[0], b'x');
        assert!(!storage.is_powered_off());
        storage.set_capacity_bytes(5000);
        let err = storage.create_segment(Path::new("/mnt/c"), 4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn gate_parks_background_threads_until_released() {
        let storage = Arc::new(disk());
        storage.record_journal(true);
        storage.hold_background(true);
        let file = storage.create_segment(Path::new("/mnt/f"), 4096).unwrap();
        let background = {
            let file = file.clone();
            std::thread::Builder::new()
                .name("ferromq-test".into())
                .spawn(move || file.write_at(0, b"bg"))
                .unwrap()
        };
        std::thread::sleep(Duration::from_millis(20));
        file.write_at(10, b"fg").unwrap();
        assert_eq!(storage.journal_since(0).len(), 2, "the background write waits");
        storage.hold_background(false);
        background.join().unwrap().unwrap();
        let journal = storage.journal_since(0);
        assert_eq!(journal.len(), 3);
        assert!(journal[2].is_background() && !journal[1].is_background());
        assert_eq!(storage.journal_since(2).len(), 1);
    }

    #[test]
    fn captures_equal_a_cut_at_that_op() {
        let run = |capture: bool, cut: Option<PowerCut>| {
            let storage = disk();
            storage.set_cut_fates(CutFates::default());
            if capture {
                storage.capture_before_ops(vec![
                    PowerCut { at_op: 4, seed: 5 },
                    PowerCut { at_op: 99, seed: 6 },
                ]);
            }
            storage.set_power_cut(cut);
            let file = storage.create_segment(Path::new("/mnt/f"), 8192).unwrap();
            let _ = storage.sync_dir(Path::new("/mnt"));
            let _ = file.write_at(0, &[7; 5000]);
            let _ = file.write_at(5000, &[8; 100]);
            let _ = file.sync_range(0, 8192);
            storage
        };
        let mut captures = run(true, None).take_captures();
        assert_eq!(captures.len(), 2);
        let (cut, captured) = captures.remove(0);
        assert_eq!(cut.at_op, 4);
        let cut_there = run(false, Some(cut)).after_power_cut();
        let path = Path::new("/mnt/f");
        assert_eq!(captured.file_contents(path), cut_there.file_contents(path));
        let (cut, at_end) = captures.remove(0);
        assert_eq!(cut.at_op, 99);
        assert_eq!(&at_end.file_contents(path).unwrap()[4990..5010], &[[7; 10], [8; 10]].concat());
    }

    /// A store on the simulated disk whose background services stay idle.
    fn quiet_store(storage: &Arc<SimStorage>, flush: crate::FlushMode) -> crate::MessageStore {
        let mut config = crate::StoreConfig::small_for_tests("/mnt/store");
        config.flush_disk_type = flush;
        config.flush_interval_commit_log_ms = 60_000;
        config.flush_interval_consume_queue_ms = 60_000;
        config.clean_resource_interval_ms = 86_400_000;
        crate::MessageStore::open_simulated(config, storage.clone()).unwrap()
    }

    #[test]
    fn a_failed_sync_poisons_the_store() {
        let storage = Arc::new(disk());
        let store = quiet_store(&storage, crate::FlushMode::Sync);
        let put = |body: &[u8]| store.put(&crate::PutMessage::new("TopicTest", 0, body));
        assert!(put(b"one").unwrap().status.is_ok());
        storage.fail_sync_at(1);
        assert!(put(b"two").is_err(), "the put whose flush failed is not acknowledged");
        let err = put(b"three").unwrap_err();
        assert!(matches!(err, crate::Error::Poisoned { .. }), "{err}");
        drop(store);
        let reopened = quiet_store(&storage, crate::FlushMode::Sync);
        assert!(reopened.put(&crate::PutMessage::new("TopicTest", 0, b"four")).is_ok());
    }

    #[test]
    fn a_full_disk_fails_the_put_that_needs_a_new_file() {
        let storage = Arc::new(disk());
        let store = quiet_store(&storage, crate::FlushMode::Async);
        // Let the background pre-allocation of the first segments finish first.
        let wait_for = |path: &str| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !storage.exists(Path::new(path)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_for("/mnt/store/commitlog/00000000000000000000");
        let usage = storage.disk_usage(Path::new("/mnt")).unwrap();
        storage.set_capacity_bytes(usage.used_bytes + 1);
        // The first put of a queue creates its ConsumeQueue file.
        let err = store.put(&crate::PutMessage::new("TopicTest", 0, b"x")).unwrap_err();
        assert!(matches!(err, crate::Error::DiskFull { .. }), "{err}");
        storage.set_capacity_bytes(1 << 40);
        assert!(store.put(&crate::PutMessage::new("TopicTest", 0, b"y")).unwrap().status.is_ok());
        wait_for("/mnt/store/commitlog/00000000000000065536");
        storage.fail_create_with_enospc_at(1);
        let err = store.put(&crate::PutMessage::new("OtherTopic", 0, b"z")).unwrap_err();
        assert!(matches!(err, crate::Error::DiskFull { .. }), "{err}");
    }

    #[test]
    fn rng_is_deterministic() {
        let (mut a, mut b) = (SimRng::new(42), SimRng::new(42));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(SimRng::new(1).below(10) < 10);
    }
}

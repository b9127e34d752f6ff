//! The database a connection has selected, for `db.namespace`: the index it was opened with,
//! until a `SELECT` (or `RESET`) sent through the wrapper switches it.
//!
//! redis-rs's connections report the index they were opened with (`get_db()`) whatever was
//! selected since, so the wrapper follows the switches it sends itself, per wrapped connection
//! and shared by its clones (the clones of a multiplexed connection or a connection manager
//! share one server connection, hence one selected database). How far that can be trusted
//! depends on the kind of connection ([`SelectBehaviour`]); where it cannot, `db.namespace` is
//! left out rather than reported wrong.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use redis::{Cmd, Pipeline};

use crate::command::{CommandName, PackedCommands, second_arg, simple};

/// State: nothing switched through the wrapper; the connection's `get_db()` holds.
const CONFIGURED: i64 = -1;
/// State: the selected database is not known (`db.namespace` is left out).
const UNKNOWN: i64 = -2;

/// How a kind of connection keeps a database selected with `SELECT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SelectBehaviour {
    /// One server connection for the life of the wrapper and its clones
    /// (`redis::Connection`, `redis::aio::MultiplexedConnection`): a `SELECT` holds until the
    /// next one.
    Kept,
    /// Reconnects in the background to the database it was configured with
    /// (`redis::aio::ConnectionManager`), unseen by the wrapper: a `SELECT` of another database
    /// holds only until then, so the database is unknown after it; a `SELECT` of the configured
    /// database is right either way.
    ResetOnReconnect,
    /// A new server connection for every call (`redis::Client`): a `SELECT` never carries over
    /// to the next call.
    NotKept,
    /// Any other type (a pooled connection, a cluster connection, a user's type): unknown
    /// after any `SELECT`, even of the configured database (it may have reached another
    /// server connection than the one that switched).
    Unknown,
}

impl SelectBehaviour {
    /// The behaviour of connection type `C`: redis-rs's own types by name (through references
    /// and boxes, as redis-rs implements its sync trait for anything that dereferences to a
    /// connection), `Unknown` for every other type.
    pub(crate) fn of<C: ?Sized>() -> Self {
        Self::of_type_name(std::any::type_name::<C>())
    }

    fn of_type_name(mut name: &str) -> Self {
        loop {
            let trimmed = name.trim_start_matches('&').trim_start_matches("mut ");
            let unboxed = trimmed
                .strip_prefix("alloc::boxed::Box<")
                .and_then(|inner| inner.strip_suffix('>'));
            match unboxed {
                Some(inner) => name = inner,
                None if trimmed.len() == name.len() => break,
                None => name = trimmed,
            }
        }
        // Only redis-rs's own types, by their last path segment (robust to its modules moving;
        // a type renamed in a future version falls back to `Unknown`, which is safe).
        let Some(path) = name.strip_prefix("redis::") else {
            return Self::Unknown;
        };
        match path.rsplit("::").next() {
            Some("Connection" | "MultiplexedConnection") => Self::Kept,
            Some("ConnectionManager") => Self::ResetOnReconnect,
            Some("Client") => Self::NotKept,
            _ => Self::Unknown,
        }
    }
}

/// The database selected through one wrapped connection, shared by its clones.
#[derive(Clone, Debug)]
pub(crate) struct SelectedDb {
    state: Arc<State>,
    behaviour: SelectBehaviour,
}

#[derive(Debug)]
struct State {
    /// The database index, `CONFIGURED` or `UNKNOWN`.
    db: AtomicI64,
    /// Switches in flight (sent, not yet settled), in the low 32 bits, and switches settled
    /// so far, in the high 32 bits (wrapping): two switches that overlap leave the database
    /// unknown, as the order the server ran them in is.
    switches: AtomicU64,
}

/// One switch in flight, in [`State::switches`].
const IN_FLIGHT: u64 = 1;
/// One switch settled, in [`State::switches`].
const SETTLED: u64 = 1 << 32;

/// A call that switches the database (it holds a `SELECT` or `RESET`): settled with the call's
/// outcome (dropped unsettled: unknown).
#[derive(Debug)]
pub(crate) struct PendingSelect {
    state: Arc<State>,
    /// The state once the switch took effect.
    after: i64,
    /// [`State::switches`] when it was sent (with itself counted in flight).
    sent: u64,
    settled: bool,
}

/// Whether the database switch of a call took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SwitchOutcome {
    /// The call succeeded.
    Applied,
    /// The server refused the one command (an error reply to a single `SELECT`).
    Refused,
    /// Unknown: the connection failed, the future was dropped, or a pipeline holding the
    /// switch had an error somewhere.
    Uncertain,
}

impl SelectedDb {
    pub(crate) fn new(behaviour: SelectBehaviour) -> Self {
        Self {
            state: Arc::new(State {
                db: AtomicI64::new(CONFIGURED),
                switches: AtomicU64::new(0),
            }),
            behaviour,
        }
    }

    /// The database index for `db.namespace`: `configured` (the connection's `get_db()`) unless
    /// a switch was seen; `None` when it is not known.
    pub(crate) fn current(&self, configured: i64) -> Option<i64> {
        match self.state.db.load(Ordering::Relaxed) {
            CONFIGURED => Some(configured),
            UNKNOWN => None,
            db => Some(db),
        }
    }

    /// Prepares the settlement of a call switching to `target` (`None`: an index that could not
    /// be read); `None` when the switch does not matter for this kind of connection.
    pub(crate) fn switch(&self, target: Option<i64>, configured: i64) -> Option<PendingSelect> {
        let after = match (self.behaviour, target) {
            (SelectBehaviour::NotKept, _) => return None,
            (SelectBehaviour::Unknown, _) => UNKNOWN,
            // Back to the configured database: right for one server connection, kept or
            // reconnected (a reconnect returns there too).
            (_, Some(db)) if db == configured => CONFIGURED,
            (SelectBehaviour::Kept, Some(db)) => db,
            _ => UNKNOWN,
        };
        let sent = self.state.switches.fetch_add(IN_FLIGHT, Ordering::SeqCst) + IN_FLIGHT;
        Some(PendingSelect {
            state: Arc::clone(&self.state),
            after,
            sent,
            settled: false,
        })
    }
}

impl PendingSelect {
    pub(crate) fn settle(mut self, outcome: SwitchOutcome) {
        self.settled = true;
        let db = &self.state.db;
        let now = self.state.switches.load(Ordering::SeqCst);
        // Another switch sent before this one was answered, or settled meanwhile: which ran
        // last on the server is unknown.
        let overlapped = now & 0xffff_ffff != IN_FLIGHT || now >> 32 != self.sent >> 32;
        match outcome {
            SwitchOutcome::Applied if overlapped => db.store(UNKNOWN, Ordering::SeqCst),
            SwitchOutcome::Applied => db.store(self.after, Ordering::SeqCst),
            SwitchOutcome::Refused => {}
            SwitchOutcome::Uncertain => {
                // Unknown, unless the switch would not change anything anyway.
                if db.load(Ordering::SeqCst) != self.after {
                    db.store(UNKNOWN, Ordering::SeqCst);
                }
            }
        }
    }
}

impl Drop for PendingSelect {
    fn drop(&mut self) {
        if !self.settled {
            self.state.db.store(UNKNOWN, Ordering::SeqCst);
        }
        // Settled, and no longer in flight.
        self.state
            .switches
            .fetch_add(SETTLED.wrapping_sub(IN_FLIGHT), Ordering::SeqCst);
    }
}

/// A database index as Redis reads it: decimal digits, no sign.
fn parse_index(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 18 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The database a command named `name` (resolved) switches to: `Some(Some(index))` for
/// `SELECT index`, with `index` read from `second()`, its first argument (`Some(None)` when
/// unreadable); `Some(Some(0))` for `RESET`; `None` for any other command.
pub(crate) fn target_of<'a>(
    name: CommandName,
    second: impl FnOnce() -> Option<&'a [u8]>,
) -> Option<Option<i64>> {
    match name.name {
        "SELECT" => Some(second().and_then(parse_index)),
        "RESET" => Some(Some(0)),
        _ => None,
    }
}

/// [`target_of`] for an unresolved command: compares its name without the table lookup.
fn target_of_cmd(cmd: &Cmd) -> Option<Option<i64>> {
    let first = simple(cmd.args_iter().next())?;
    if first.eq_ignore_ascii_case(b"SELECT") {
        Some(second_arg(cmd).and_then(parse_index))
    } else if first.eq_ignore_ascii_case(b"RESET") {
        Some(Some(0))
    } else {
        None
    }
}

/// The database the last `SELECT` or `RESET` of `pipeline` switches to; `None` without one.
pub(crate) fn target_of_pipeline(pipeline: &Pipeline) -> Option<Option<i64>> {
    pipeline.cmd_iter().filter_map(target_of_cmd).last()
}

/// The database the last `SELECT` or `RESET` of packed commands switches to; `None` without
/// one.
pub(crate) fn target_of_packed(packed: &[u8]) -> Option<Option<i64>> {
    PackedCommands::new(packed)
        .filter_map(|command| target_of(command.name, || command.second))
        .last()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn behaviour_of_redis_types() {
        use redis::aio::{ConnectionManager, MultiplexedConnection};
        assert_eq!(
            SelectBehaviour::of::<redis::Connection>(),
            SelectBehaviour::Kept
        );
        assert_eq!(
            SelectBehaviour::of::<&mut redis::Connection>(),
            SelectBehaviour::Kept
        );
        assert_eq!(
            SelectBehaviour::of::<Box<redis::Connection>>(),
            SelectBehaviour::Kept
        );
        assert_eq!(
            SelectBehaviour::of::<MultiplexedConnection>(),
            SelectBehaviour::Kept
        );
        assert_eq!(
            SelectBehaviour::of::<ConnectionManager>(),
            SelectBehaviour::ResetOnReconnect
        );
        assert_eq!(
            SelectBehaviour::of::<redis::Client>(),
            SelectBehaviour::NotKept
        );
        struct Connection;
        assert_eq!(
            SelectBehaviour::of::<Connection>(),
            SelectBehaviour::Unknown
        );
        assert_eq!(
            SelectBehaviour::of::<std::sync::Arc<redis::Connection>>(),
            SelectBehaviour::Unknown
        );
    }

    #[test]
    fn kept_follows_select_and_reset() {
        let db = SelectedDb::new(SelectBehaviour::Kept);
        assert_eq!(db.current(0), Some(0));
        db.switch(Some(3), 0)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        assert_eq!(db.current(0), Some(3));
        // Clones share the state.
        let clone = db.clone();
        clone
            .switch(Some(99), 0)
            .unwrap()
            .settle(SwitchOutcome::Refused);
        assert_eq!(db.current(0), Some(3));
        clone
            .switch(Some(0), 0)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        assert_eq!(db.current(0), Some(0));
        db.switch(Some(5), 0)
            .unwrap()
            .settle(SwitchOutcome::Uncertain);
        assert_eq!(clone.current(0), None);
        db.switch(Some(5), 0)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        // An uncertain switch to the database already selected changes nothing.
        db.switch(Some(5), 0)
            .unwrap()
            .settle(SwitchOutcome::Uncertain);
        assert_eq!(db.current(0), Some(5));
        db.switch(None, 0).unwrap().settle(SwitchOutcome::Applied);
        assert_eq!(db.current(0), None);
    }

    #[test]
    fn reset_on_reconnect_knows_only_the_configured_database() {
        let db = SelectedDb::new(SelectBehaviour::ResetOnReconnect);
        db.switch(Some(3), 2)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        assert_eq!(db.current(2), None);
        db.switch(Some(2), 2)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        assert_eq!(db.current(2), Some(2));
    }

    #[test]
    fn not_kept_and_unknown() {
        let client = SelectedDb::new(SelectBehaviour::NotKept);
        assert!(client.switch(Some(3), 0).is_none());
        assert_eq!(client.current(0), Some(0));
        let other = SelectedDb::new(SelectBehaviour::Unknown);
        other
            .switch(Some(3), 0)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        assert_eq!(other.current(0), None);
        // Even back to the configured database: another server connection may still be on 3.
        other
            .switch(Some(0), 0)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        assert_eq!(other.current(0), None);
    }

    #[test]
    fn overlapping_switches_leave_the_database_unknown() {
        let db = SelectedDb::new(SelectBehaviour::Kept);
        let three = db.switch(Some(3), 0).unwrap();
        let five = db.switch(Some(5), 0).unwrap();
        five.settle(SwitchOutcome::Applied);
        assert_eq!(db.current(0), None);
        three.settle(SwitchOutcome::Applied);
        assert_eq!(db.current(0), None);
        // One at a time again: known.
        db.switch(Some(4), 0)
            .unwrap()
            .settle(SwitchOutcome::Applied);
        assert_eq!(db.current(0), Some(4));
        // A switch dropped unsettled leaves it unknown.
        drop(db.switch(Some(6), 0).unwrap());
        assert_eq!(db.current(0), None);
    }

    #[test]
    fn targets() {
        let mut pipe = redis::pipe();
        pipe.get("k").cmd("select").arg(4).get("k");
        assert_eq!(target_of_pipeline(&pipe), Some(Some(4)));
        assert_eq!(target_of_packed(&pipe.get_packed_pipeline()), Some(Some(4)));
        pipe.cmd("RESET");
        assert_eq!(target_of_pipeline(&pipe), Some(Some(0)));
        assert_eq!(target_of_packed(&pipe.get_packed_pipeline()), Some(Some(0)));
        let mut pipe = redis::pipe();
        pipe.get("k").set("select", 4);
        assert_eq!(target_of_pipeline(&pipe), None);
        assert_eq!(target_of_packed(&pipe.get_packed_pipeline()), None);
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg("-1");
        assert_eq!(target_of_pipeline(&pipe), Some(None));
        assert_eq!(parse_index(b"12"), Some(12));
        assert_eq!(parse_index(b"+1"), None);
        assert_eq!(parse_index(b"99999999999999999999"), None);
    }
}

//! What a command is called and what its obfuscated text looks like, read from a [`Cmd`], a
//! [`Pipeline`] or the packed RESP bytes the sync connection trait hands over.
//!
//! Names are resolved against a fixed table of known commands ([`crate::command_names`]), so
//! the reported name is always a `&'static str`: no allocation, bounded cardinality, and no way
//! for an argument value to end up in a span name or a metric attribute. The first argument is
//! upper-cased into a small stack buffer, and hashed on the way, before the lookup.

use std::sync::OnceLock;

use redis::{Arg, Cmd, Pipeline};

use crate::command_names::COMMANDS;

/// Reported for a command whose name is not in the table (or is not a plausible name at all).
pub(crate) const UNKNOWN: &str = "UNKNOWN";
/// Span name and `db.operation.name` of a pipeline of different commands sent without
/// `MULTI`/`EXEC`.
pub(crate) const PIPELINE: &str = "PIPELINE";
/// Span name and `db.operation.name` of a `MULTI`/`EXEC` transaction of different commands.
pub(crate) const MULTI: &str = "MULTI";

/// Longest name we try to resolve (the longest in the table, `SENTINEL GET-MASTER-ADDR-BY-NAME`,
/// is 32 bytes).
const MAX_NAME: usize = 32;
/// Upper bound of `db.query.text`, in bytes; longer text is cut and ends with `…`.
pub(crate) const MAX_QUERY_TEXT: usize = 2048;

/// A resolved command name and how many leading arguments it spans (2 for `CLIENT SETNAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CommandName {
    pub(crate) name: &'static str,
    pub(crate) words: usize,
}

impl CommandName {
    pub(crate) const UNKNOWN: Self = Self {
        name: UNKNOWN,
        words: 1,
    };
}

/// Resolves the name of a command from its first two arguments.
pub(crate) fn resolve(first: Option<&[u8]>, second: Option<&[u8]>) -> CommandName {
    let Some(first) = first else {
        return CommandName::UNKNOWN;
    };
    let mut buf = [0u8; MAX_NAME];
    let Some((len, hash)) = upper_into(first, &mut buf, FNV_OFFSET) else {
        return CommandName::UNKNOWN;
    };
    let Some(index) = lookup(&buf[..len], hash) else {
        return CommandName::UNKNOWN;
    };
    if let Some(second) = second
        && IS_CONTAINER[index]
        && let Some((space, rest)) = buf[len..].split_first_mut()
    {
        *space = b' ';
        if let Some((sub_len, hash)) = upper_into(second, rest, fnv_step(hash, b' '))
            && let Some(sub) = lookup(&buf[..len + 1 + sub_len], hash)
        {
            return CommandName {
                name: COMMANDS[sub],
                words: 2,
            };
        }
    }
    CommandName {
        name: COMMANDS[index],
        words: 1,
    }
}

/// Resolves the name of a [`Cmd`] and counts its arguments (the name included).
pub(crate) fn of_cmd(cmd: &Cmd) -> (CommandName, usize) {
    let mut args = cmd.args_iter();
    let argc = args.len();
    let first = simple(args.next());
    let second = simple(args.next());
    (resolve(first, second), argc)
}

/// The argument after a command's name, when it is a plain byte string.
pub(crate) fn second_arg(cmd: &Cmd) -> Option<&[u8]> {
    simple(cmd.args_iter().nth(1))
}

pub(crate) fn simple(arg: Option<Arg<&[u8]>>) -> Option<&[u8]> {
    match arg {
        Some(Arg::Simple(bytes)) => Some(bytes),
        _ => None,
    }
}

/// The span name and `db.operation.name` of a pipeline (`transaction` false) or a
/// `MULTI`/`EXEC` transaction of `commands`, as the Redis semantic conventions name them:
///
/// - every command the same known one: `PIPELINE <CMD>` / `MULTI <CMD>` (`PIPELINE GET`);
/// - a pipeline of a single command is that command (`GET`): a batch of one is modelled as a
///   single operation;
/// - otherwise (mixed or unknown commands, or none): `PIPELINE` / `MULTI`.
pub(crate) fn batch_name(
    transaction: bool,
    commands: impl IntoIterator<Item = CommandName>,
) -> &'static str {
    let generic = if transaction { MULTI } else { PIPELINE };
    let mut commands = commands.into_iter();
    let Some(first) = commands.next() else {
        return generic;
    };
    let mut count = 1usize;
    for command in commands {
        if command.name != first.name {
            return generic;
        }
        count += 1;
    }
    if count == 1 && !transaction {
        return first.name;
    }
    prefixed(transaction, first.name).unwrap_or(generic)
}

/// `PIPELINE <CMD>` or `MULTI <CMD>` for a command of the table; `None` for `UNKNOWN`. The
/// names are built once, on first use, so that they are `&'static str` like every other name.
fn prefixed(transaction: bool, name: &str) -> Option<&'static str> {
    static NAMES: OnceLock<Box<[[Box<str>; 2]]>> = OnceLock::new();
    let index = COMMANDS
        .binary_search_by(|known| known.as_bytes().cmp(name.as_bytes()))
        .ok()?;
    let names = NAMES.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|command| {
                [
                    format!("{PIPELINE} {command}").into_boxed_str(),
                    format!("{MULTI} {command}").into_boxed_str(),
                ]
            })
            .collect()
    });
    names
        .get(index)
        .map(|pair| &*pair[usize::from(transaction)])
}

/// The commands of an async pipeline, `MULTI`/`EXEC` excluded.
pub(crate) fn pipeline_commands(pipeline: &Pipeline) -> impl Iterator<Item = CommandName> + '_ {
    pipeline.cmd_iter().map(|cmd| of_cmd(cmd).0)
}

/// Copies `src` upper-cased into `dst` and continues the FNV-1a `hash` over it; `None` if it
/// does not fit or holds a byte no command name has.
fn upper_into(src: &[u8], dst: &mut [u8], mut hash: u32) -> Option<(usize, u32)> {
    if src.is_empty() || src.len() > dst.len() {
        return None;
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        if !(s.is_ascii_alphanumeric() || matches!(s, b'.' | b'_' | b'-')) {
            return None;
        }
        let upper = s.to_ascii_uppercase();
        *d = upper;
        hash = fnv_step(hash, upper);
    }
    Some((src.len(), hash))
}

// The command table is indexed by an open-addressing hash table built at compile time, so a
// lookup is one hash (computed while upper-casing) and usually one comparison.

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;
/// Slots in the hash table: a power of two, about four times the number of commands.
const SLOTS: usize = 2048;
const EMPTY: u16 = u16::MAX;

const fn fnv_step(hash: u32, byte: u8) -> u32 {
    (hash ^ byte as u32).wrapping_mul(FNV_PRIME)
}

const fn fnv(bytes: &[u8]) -> u32 {
    let mut hash = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        hash = fnv_step(hash, bytes[i]);
        i += 1;
    }
    hash
}

const fn build_slots() -> [u16; SLOTS] {
    assert!(COMMANDS.len() * 2 < SLOTS && COMMANDS.len() < EMPTY as usize);
    let mut slots = [EMPTY; SLOTS];
    let mut i = 0;
    while i < COMMANDS.len() {
        let mut slot = fnv(COMMANDS[i].as_bytes()) as usize & (SLOTS - 1);
        while slots[slot] != EMPTY {
            slot = (slot + 1) & (SLOTS - 1);
        }
        slots[slot] = i as u16;
        i += 1;
    }
    slots
}

/// Whether `COMMANDS[i]` has subcommands: the table is sorted, so `X SUB` follows `X`.
const fn build_containers() -> [bool; COMMANDS.len()] {
    let mut containers = [false; COMMANDS.len()];
    let mut i = 0;
    while i + 1 < COMMANDS.len() {
        let name = COMMANDS[i].as_bytes();
        let next = COMMANDS[i + 1].as_bytes();
        if next.len() > name.len() && next[name.len()] == b' ' {
            let mut same = true;
            let mut j = 0;
            while j < name.len() {
                if name[j] != next[j] {
                    same = false;
                }
                j += 1;
            }
            containers[i] = same;
        }
        i += 1;
    }
    containers
}

static SLOT_TABLE: [u16; SLOTS] = build_slots();
static IS_CONTAINER: [bool; COMMANDS.len()] = build_containers();

/// Index in [`COMMANDS`] of the upper-cased `name` whose FNV-1a hash is `hash`.
fn lookup(name: &[u8], hash: u32) -> Option<usize> {
    let mut slot = hash as usize & (SLOTS - 1);
    loop {
        let index = usize::from(*SLOT_TABLE.get(slot)?);
        let known = COMMANDS.get(index)?;
        if known.as_bytes() == name {
            return Some(index);
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
}

/// Appends `NAME ? ? …` (one `?` per argument after the name) to `out`, within
/// [`MAX_QUERY_TEXT`].
pub(crate) fn write_obfuscated(out: &mut String, name: CommandName, argc: usize) {
    if !push_bounded(out, name.name) {
        return;
    }
    for _ in name.words..argc {
        if !push_bounded(out, " ?") {
            return;
        }
    }
}

/// Appends `s` if the text stays within [`MAX_QUERY_TEXT`]; otherwise marks the text as cut
/// (once) and returns `false`.
fn push_bounded(out: &mut String, s: &str) -> bool {
    if out.ends_with('…') {
        return false;
    }
    if out.len() + s.len() + '…'.len_utf8() > MAX_QUERY_TEXT {
        out.push('…');
        return false;
    }
    out.push_str(s);
    true
}

/// `db.query.text` of a single command in obfuscated form.
pub(crate) fn obfuscated_single(name: CommandName, argc: usize) -> String {
    let mut out = String::with_capacity(name.name.len() + 2 * argc.saturating_sub(name.words));
    write_obfuscated(&mut out, name, argc);
    out
}

/// `db.query.text` of an async pipeline in obfuscated form: the commands joined by `; `, inside
/// `MULTI; …; EXEC` for a transaction.
pub(crate) fn obfuscated_pipeline(pipeline: &Pipeline) -> String {
    let mut out = String::new();
    let transaction = pipeline.is_transaction();
    if transaction {
        push_bounded(&mut out, MULTI);
    }
    for cmd in pipeline.cmd_iter() {
        if !out.is_empty() && !push_bounded(&mut out, "; ") {
            return out;
        }
        let (name, argc) = of_cmd(cmd);
        write_obfuscated(&mut out, name, argc);
    }
    if transaction && !out.is_empty() {
        push_bounded(&mut out, "; EXEC");
    }
    out
}

/// `db.query.text` of packed commands (sync pipelines) in obfuscated form, joined by `; `.
pub(crate) fn obfuscated_packed(packed: &[u8]) -> String {
    let mut out = String::new();
    for command in PackedCommands::new(packed) {
        if !out.is_empty() && !push_bounded(&mut out, "; ") {
            break;
        }
        write_obfuscated(&mut out, command.name, command.argc);
    }
    out
}

/// One command read from packed RESP bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedCommand<'a> {
    pub(crate) name: CommandName,
    pub(crate) argc: usize,
    /// The argument after the name (for a `SELECT`, the database index).
    pub(crate) second: Option<&'a [u8]>,
}

/// Iterates over the commands in packed RESP bytes (`*N\r\n$L\r\n…\r\n`), as redis-rs encodes
/// them. Stops at the first malformed byte; never reads out of bounds.
pub(crate) struct PackedCommands<'a> {
    rest: &'a [u8],
}

impl<'a> PackedCommands<'a> {
    pub(crate) fn new(packed: &'a [u8]) -> Self {
        Self { rest: packed }
    }

    /// Reads one command and advances; `None` at the end or on malformed input.
    fn read_command(&mut self) -> Option<PackedCommand<'a>> {
        let mut rest = self.rest;
        let argc = read_header(&mut rest, b'*')?;
        let mut first = None;
        let mut second = None;
        for i in 0..argc {
            let len = read_header(&mut rest, b'$')?;
            let end = len.checked_add(2)?;
            let bulk = rest.get(..len)?;
            if rest.get(len..end)? != b"\r\n" {
                return None;
            }
            rest = &rest[end..];
            match i {
                0 => first = Some(bulk),
                1 => second = Some(bulk),
                _ => {}
            }
        }
        self.rest = rest;
        Some(PackedCommand {
            name: resolve(first, second),
            argc,
            second,
        })
    }
}

impl<'a> Iterator for PackedCommands<'a> {
    type Item = PackedCommand<'a>;

    fn next(&mut self) -> Option<PackedCommand<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let command = self.read_command();
        if command.is_none() {
            self.rest = &[];
        }
        command
    }
}

/// Reads `<prefix><decimal>\r\n` and advances `rest` past it.
fn read_header(rest: &mut &[u8], prefix: u8) -> Option<usize> {
    let (&first, tail) = rest.split_first()?;
    if first != prefix {
        return None;
    }
    let end = tail.iter().position(|&b| b == b'\r')?;
    if end == 0 || end > 19 || tail.get(end + 1) != Some(&b'\n') {
        return None;
    }
    let mut value: usize = 0;
    for &digit in &tail[..end] {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(usize::from(digit - b'0'))?;
    }
    *rest = &tail[end + 2..];
    Some(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_all_found() {
        assert!(
            COMMANDS
                .windows(2)
                .all(|w| w[0].as_bytes() < w[1].as_bytes())
        );
        for (i, name) in COMMANDS.iter().enumerate() {
            assert!(name.len() <= MAX_NAME, "{name}");
            assert_eq!(
                lookup(name.as_bytes(), fnv(name.as_bytes())),
                Some(i),
                "{name}"
            );
        }
        let containers: Vec<&str> = COMMANDS
            .iter()
            .zip(IS_CONTAINER.iter())
            .filter(|(_, container)| **container)
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(
            containers,
            [
                "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "HOTKEYS", "LATENCY",
                "MEMORY", "MODULE", "OBJECT", "PUBSUB", "SCRIPT", "SENTINEL", "SLOWLOG", "XGROUP",
                "XINFO"
            ]
        );
    }

    /// Every command redis-rs 1.8 sends: the names its `cmd(..)` calls use in
    /// `src/commands/mod.rs` (including both arms of its `cmd(if … { "A" } else { "B" })`
    /// calls), and the subcommands it sends to container commands there and in `sentinel.rs`
    /// and `script.rs`. Listed here by hand, checked against the redis-rs source when the
    /// dependency is upgraded.
    #[test]
    fn redis_rs_commands_are_known() {
        const SINGLE: &[&str] = &[
            "ACL",
            "APPEND",
            "BF.ADD",
            "BF.CARD",
            "BF.EXISTS",
            "BF.INFO",
            "BF.INSERT",
            "BF.LOADCHUNK",
            "BF.MADD",
            "BF.MEXISTS",
            "BF.RESERVE",
            "BF.SCANDUMP",
            "BITCOUNT",
            "BITOP",
            "BLMOVE",
            "BLMPOP",
            "BLPOP",
            "BRPOP",
            "BRPOPLPUSH",
            "BZMPOP",
            "BZPOPMAX",
            "BZPOPMIN",
            "CLIENT",
            "COPY",
            "DECRBY",
            "DEL",
            "DELEX",
            "DIGEST",
            "EXISTS",
            "EXPIRE",
            "EXPIREAT",
            "EXPIRETIME",
            "FLUSHALL",
            "FLUSHDB",
            "FT.CREATE",
            "GEOADD",
            "GEODIST",
            "GEOHASH",
            "GEOPOS",
            "GEORADIUS",
            "GEORADIUSBYMEMBER",
            "GET",
            "GETBIT",
            "GETDEL",
            "GETEX",
            "GETRANGE",
            "GETSET",
            "HDEL",
            "HELLO",
            "HEXISTS",
            "HEXPIRE",
            "HEXPIREAT",
            "HEXPIRETIME",
            "HGET",
            "HGETALL",
            "HGETDEL",
            "HGETEX",
            "HINCRBY",
            "HINCRBYFLOAT",
            "HKEYS",
            "HLEN",
            "HMGET",
            "HMSET",
            "HOTKEYS",
            "HPERSIST",
            "HPEXPIRE",
            "HPEXPIREAT",
            "HPEXPIRETIME",
            "HPTTL",
            "HSET",
            "HSETEX",
            "HSETNX",
            "HTTL",
            "HVALS",
            "INCRBY",
            "INCRBYFLOAT",
            "INCREX",
            "KEYS",
            "LINDEX",
            "LINSERT",
            "LLEN",
            "LMOVE",
            "LMPOP",
            "LPOP",
            "LPOS",
            "LPUSH",
            "LPUSHX",
            "LRANGE",
            "LREM",
            "LSET",
            "LTRIM",
            "MGET",
            "MSET",
            "MSETEX",
            "MSETNX",
            "OBJECT",
            "PERSIST",
            "PEXPIRE",
            "PEXPIREAT",
            "PEXPIRETIME",
            "PFADD",
            "PFCOUNT",
            "PFMERGE",
            "PING",
            "PSETEX",
            "PTTL",
            "PUBLISH",
            "RENAME",
            "RENAMENX",
            "RPOP",
            "RPOPLPUSH",
            "RPUSH",
            "RPUSHX",
            "SADD",
            "SCARD",
            "SDIFF",
            "SDIFFSTORE",
            "SET",
            "SETBIT",
            "SETEX",
            "SETNX",
            "SETRANGE",
            "SINTER",
            "SINTERSTORE",
            "SISMEMBER",
            "SMEMBERS",
            "SMISMEMBER",
            "SMOVE",
            "SPOP",
            "SPUBLISH",
            "SRANDMEMBER",
            "SREM",
            "STRLEN",
            "SUNION",
            "SUNIONSTORE",
            "TTL",
            "TYPE",
            "UNLINK",
            "VADD",
            "VCARD",
            "VDIM",
            "VEMB",
            "VGETATTR",
            "VINFO",
            "VLINKS",
            "VRANDMEMBER",
            "VREM",
            "VSETATTR",
            "VSIM",
            "XACK",
            "XACKDEL",
            "XADD",
            "XAUTOCLAIM",
            "XCFGSET",
            "XCLAIM",
            "XDEL",
            "XDELEX",
            "XGROUP",
            "XINFO",
            "XLEN",
            "XNACK",
            "XPENDING",
            "XRANGE",
            "XREAD",
            "XREADGROUP",
            "XREVRANGE",
            "XTRIM",
            "ZADD",
            "ZCARD",
            "ZCOUNT",
            "ZINCRBY",
            "ZINTERSTORE",
            "ZLEXCOUNT",
            "ZMPOP",
            "ZMSCORE",
            "ZPOPMAX",
            "ZPOPMIN",
            "ZRANDMEMBER",
            "ZRANGE",
            "ZRANGEBYLEX",
            "ZRANGEBYSCORE",
            "ZRANK",
            "ZREM",
            "ZREMRANGEBYLEX",
            "ZREMRANGEBYRANK",
            "ZREMRANGEBYSCORE",
            "ZREVRANGE",
            "ZREVRANGEBYLEX",
            "ZREVRANGEBYSCORE",
            "ZREVRANK",
            "ZSCORE",
            "ZUNIONSTORE",
        ];
        for name in SINGLE {
            let mut cmd = redis::cmd(name);
            cmd.arg("key");
            assert_eq!(of_cmd(&cmd).0.name, *name, "redis-rs sends {name}");
        }
        const SUBCOMMANDS: &[(&str, &str)] = &[
            ("ACL", "CAT"),
            ("ACL", "DELUSER"),
            ("ACL", "DRYRUN"),
            ("ACL", "GENPASS"),
            ("ACL", "GETUSER"),
            ("ACL", "HELP"),
            ("ACL", "LIST"),
            ("ACL", "LOAD"),
            ("ACL", "LOG"),
            ("ACL", "SAVE"),
            ("ACL", "SETUSER"),
            ("ACL", "USERS"),
            ("ACL", "WHOAMI"),
            ("CLIENT", "GETNAME"),
            ("CLIENT", "ID"),
            ("CLIENT", "SETNAME"),
            ("OBJECT", "ENCODING"),
            ("OBJECT", "FREQ"),
            ("OBJECT", "IDLETIME"),
            ("OBJECT", "REFCOUNT"),
            ("XGROUP", "CREATE"),
            ("XGROUP", "CREATECONSUMER"),
            ("XGROUP", "DELCONSUMER"),
            ("XGROUP", "DESTROY"),
            ("XGROUP", "SETID"),
            ("XINFO", "CONSUMERS"),
            ("XINFO", "GROUPS"),
            ("XINFO", "STREAM"),
            ("HOTKEYS", "GET"),
            ("HOTKEYS", "RESET"),
            ("HOTKEYS", "START"),
            ("HOTKEYS", "STOP"),
            ("SCRIPT", "LOAD"),
            ("SENTINEL", "MASTERS"),
            ("SENTINEL", "SLAVES"),
        ];
        for (container, sub) in SUBCOMMANDS {
            let mut cmd = redis::cmd(container);
            cmd.arg(*sub).arg("arg");
            let name = format!("{container} {sub}");
            let resolved = of_cmd(&cmd).0;
            assert_eq!(resolved.name, name, "redis-rs sends {name}");
            assert_eq!(resolved.words, 2, "{name}");
        }
    }

    #[test]
    fn batch_names_follow_the_redis_conventions() {
        let get = resolve(Some(b"get"), Some(b"k"));
        let set = resolve(Some(b"SET"), Some(b"k"));
        // Identical commands: the command, prefixed.
        assert_eq!(batch_name(false, [get, get, get]), "PIPELINE GET");
        assert_eq!(batch_name(true, [get, get]), "MULTI GET");
        // A pipeline of one command is that command; a transaction stays a transaction.
        assert_eq!(batch_name(false, [set]), "SET");
        assert_eq!(batch_name(true, [set]), "MULTI SET");
        // Mixed, unknown or no commands: the generic names.
        assert_eq!(batch_name(false, [get, set]), PIPELINE);
        assert_eq!(batch_name(true, [set, get, set]), MULTI);
        let unknown = resolve(Some(b"NOTACOMMAND"), None);
        assert_eq!(batch_name(false, [unknown, unknown]), PIPELINE);
        assert_eq!(batch_name(true, [unknown]), MULTI);
        assert_eq!(batch_name(false, []), PIPELINE);
        // Subcommands are part of the command.
        let config_get = resolve(Some(b"CONFIG"), Some(b"GET"));
        assert_eq!(
            batch_name(false, [config_get, config_get]),
            "PIPELINE CONFIG GET"
        );
        let mut pipe = redis::pipe();
        pipe.incr("a", 1).incr("b", 2);
        assert_eq!(
            batch_name(pipe.is_transaction(), pipeline_commands(&pipe)),
            "PIPELINE INCRBY"
        );
        pipe.atomic();
        assert_eq!(
            batch_name(pipe.is_transaction(), pipeline_commands(&pipe)),
            "MULTI INCRBY"
        );
        // The same `&'static str` every time: no allocation per call after the first.
        assert!(std::ptr::eq(
            batch_name(false, [get, get]),
            batch_name(false, [get, get])
        ));
    }

    #[test]
    fn resolves_case_insensitively_without_arguments() {
        assert_eq!(resolve(Some(b"get"), Some(b"secret-key")).name, "GET");
        assert_eq!(resolve(Some(b"HsEt"), None).name, "HSET");
        assert_eq!(resolve(Some(b"json.set"), Some(b"k")).name, "JSON.SET");
    }

    #[test]
    fn resolves_subcommands() {
        let n = resolve(Some(b"client"), Some(b"setname"));
        assert_eq!(
            n,
            CommandName {
                name: "CLIENT SETNAME",
                words: 2
            }
        );
        let n = resolve(Some(b"CONFIG"), Some(b"get"));
        assert_eq!(
            n,
            CommandName {
                name: "CONFIG GET",
                words: 2
            }
        );
        // An unknown second word is an argument, not a subcommand: it never shows up.
        let n = resolve(Some(b"CLIENT"), Some(b"hunter2"));
        assert_eq!(
            n,
            CommandName {
                name: "CLIENT",
                words: 1
            }
        );
        // A non-container keeps its first word only.
        assert_eq!(resolve(Some(b"SET"), Some(b"GET")).name, "SET");
    }

    #[test]
    fn unknown_and_hostile_names() {
        assert_eq!(resolve(None, None).name, UNKNOWN);
        assert_eq!(resolve(Some(b""), None).name, UNKNOWN);
        assert_eq!(resolve(Some(b"NOTACOMMAND"), None).name, UNKNOWN);
        assert_eq!(resolve(Some(b"GET\r\n"), None).name, UNKNOWN);
        assert_eq!(resolve(Some(&[0xff; 8]), None).name, UNKNOWN);
        assert_eq!(resolve(Some(&[b'A'; 1000]), None).name, UNKNOWN);
        let long_sub = [b'X'; 40];
        assert_eq!(resolve(Some(b"CLUSTER"), Some(&long_sub)).name, "CLUSTER");
    }

    #[test]
    fn cmd_and_obfuscation() {
        let mut cmd = redis::cmd("hset");
        cmd.arg("user:1").arg("name").arg("alice");
        let (name, argc) = of_cmd(&cmd);
        assert_eq!(name.name, "HSET");
        assert_eq!(argc, 4);
        assert_eq!(obfuscated_single(name, argc), "HSET ? ? ?");

        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("SETNAME").arg("my-name");
        let (name, argc) = of_cmd(&cmd);
        assert_eq!(obfuscated_single(name, argc), "CLIENT SETNAME ?");

        let (name, argc) = of_cmd(&redis::cmd("PING"));
        assert_eq!(obfuscated_single(name, argc), "PING");
    }

    #[test]
    fn pipelines_obfuscated() {
        let mut pipe = redis::pipe();
        pipe.set("k", "v").get("k");
        assert_eq!(obfuscated_pipeline(&pipe), "SET ? ?; GET ?");
        pipe.atomic();
        assert_eq!(obfuscated_pipeline(&pipe), "MULTI; SET ? ?; GET ?; EXEC");
        assert_eq!(
            obfuscated_packed(&pipe.get_packed_pipeline()),
            "MULTI; SET ? ?; GET ?; EXEC"
        );
    }

    #[test]
    fn obfuscated_text_is_bounded() {
        let mut cmd = redis::cmd("MSET");
        for i in 0..10_000 {
            cmd.arg(i).arg(i);
        }
        let (name, argc) = of_cmd(&cmd);
        let text = obfuscated_single(name, argc);
        assert!(text.len() <= MAX_QUERY_TEXT, "{}", text.len());
        assert!(text.starts_with("MSET ? ?"));
        assert!(text.ends_with('…'));

        let mut pipe = redis::pipe();
        for i in 0..10_000 {
            pipe.set(i, i);
        }
        let text = obfuscated_pipeline(&pipe);
        assert!(text.len() <= MAX_QUERY_TEXT);
        assert!(text.ends_with('…'));
        let text = obfuscated_packed(&pipe.get_packed_pipeline());
        assert!(text.len() <= MAX_QUERY_TEXT);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn packed_commands() {
        let mut pipe = redis::pipe();
        pipe.cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory")
            .incr("counter", 2);
        let packed = pipe.get_packed_pipeline();
        let commands: Vec<_> = PackedCommands::new(&packed).collect();
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0].name.name, "CONFIG GET");
        assert_eq!(commands[0].argc, 3);
        assert_eq!(commands[1].name.name, "INCRBY");
        assert_eq!(commands[1].argc, 3);
        // A binary argument with CR LF inside is skipped by length, not by scanning.
        let mut cmd = redis::cmd("SET");
        cmd.arg("k").arg(&b"a\r\n*1\r\n$4\r\nPING\r\n"[..]);
        let packed = cmd.get_packed_command();
        let commands: Vec<_> = PackedCommands::new(&packed).collect();
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].argc, 3);
    }

    #[test]
    fn packed_garbage_never_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"*",
            b"*\r\n",
            b"*1\r",
            b"*1\r\n",
            b"*1\r\n$3\r\nGE",
            b"*1\r\n$3\r\nGETXX",
            b"*99999999999999999999\r\n",
            b"*1\r\n$18446744073709551615\r\nGET\r\n",
            b"*2\r\n$3\r\nGET\r\n",
            b"$3\r\nGET\r\n",
            b"*-1\r\n",
        ];
        for case in cases {
            let _ = PackedCommands::new(case).count();
            let _ = obfuscated_packed(case);
        }
        let valid = redis::cmd("GET").arg("k").get_packed_command();
        for cut in 0..valid.len() {
            assert_eq!(
                PackedCommands::new(&valid[..cut]).count(),
                0,
                "cut at {cut}"
            );
        }
    }
}

//! The data model shared by the three services and the analysis itself: communities
//! (connected components) and money cycles (directed elementary cycles) of a subgraph.
//!
//! The JSON shapes here are the analyzer's HTTP API (see the example's README).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Most cycles reported for one subgraph; more set [`Analysis::truncated`].
pub const MAX_CYCLES: usize = 64;
/// Longest cycle searched for, in accounts.
pub const MAX_CYCLE_LEN: usize = 8;
/// Most accounts an analysis accepts; a larger subgraph is rejected as invalid input.
pub const MAX_ACCOUNTS: usize = 10_000;
/// DFS steps the cycle search may take before it stops and reports `truncated`.
const MAX_STEPS: usize = 200_000;

/// One account, as stored in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Account id, e.g. `acc-001`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `low`, `medium` or `high`; the worker raises it to `high` for accounts in a ring.
    pub risk_level: String,
}

/// One transfer of money between two accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Sending account id.
    pub from: String,
    /// Receiving account id.
    pub to: String,
    /// Amount transferred.
    pub amount: f64,
}

/// The analyzer's request body: the neighbourhood of `root`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subgraph {
    /// The account the analysis was asked for.
    pub root: String,
    /// Accounts of the neighbourhood (the root included).
    pub accounts: Vec<Account>,
    /// Transactions between those accounts.
    pub transactions: Vec<Transaction>,
}

/// A connected component of the subgraph, ignoring the direction of transfers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Community {
    /// Member account ids, sorted.
    pub accounts: Vec<String>,
    /// Sum of the amounts of the transactions inside the community.
    pub total_amount: f64,
}

/// A ring: money leaving an account and coming back to it through the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    /// Account ids in the order money flows, starting at the smallest id.
    pub accounts: Vec<String>,
    /// Sum of the amounts along the ring (the largest transfer per hop).
    pub total_amount: f64,
}

/// The analyzer's response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The account the analysis was asked for.
    pub root: String,
    /// Connected components, largest first.
    pub communities: Vec<Community>,
    /// Money cycles found, at most [`MAX_CYCLES`], each at most [`MAX_CYCLE_LEN`] long.
    pub cycles: Vec<Cycle>,
    /// Accounts that receive money in the subgraph but send none (outflows), sorted.
    pub sinks: Vec<String>,
    /// Whether the cycle search stopped at one of its bounds.
    pub truncated: bool,
}

/// Why a subgraph cannot be analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidSubgraph {
    /// More than [`MAX_ACCOUNTS`] accounts.
    TooLarge(usize),
    /// A transaction names an account that is not in `accounts`.
    UnknownAccount(String),
}

impl std::fmt::Display for InvalidSubgraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge(n) => write!(f, "{n} accounts, at most {MAX_ACCOUNTS} are analysed"),
            Self::UnknownAccount(id) => write!(f, "transaction names unknown account {id:?}"),
        }
    }
}

impl std::error::Error for InvalidSubgraph {}

/// Finds the communities, money cycles and sinks of `graph`.
///
/// Bounded: cycles are searched up to [`MAX_CYCLE_LEN`] accounts and [`MAX_CYCLES`] results.
pub fn analyze(graph: &Subgraph) -> Result<Analysis, InvalidSubgraph> {
    if graph.accounts.len() > MAX_ACCOUNTS {
        return Err(InvalidSubgraph::TooLarge(graph.accounts.len()));
    }
    let ids: BTreeSet<&str> = graph.accounts.iter().map(|a| a.id.as_str()).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let names: Vec<&str> = ids.iter().copied().collect();
    let n = names.len();

    // Directed adjacency with the largest amount per (from, to) pair.
    let mut out: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); n];
    let mut parent: Vec<usize> = (0..n).collect();
    let mut sends = vec![false; n];
    let mut receives = vec![false; n];
    for t in &graph.transactions {
        let from = *index
            .get(t.from.as_str())
            .ok_or_else(|| InvalidSubgraph::UnknownAccount(t.from.clone()))?;
        let to = *index
            .get(t.to.as_str())
            .ok_or_else(|| InvalidSubgraph::UnknownAccount(t.to.clone()))?;
        let e = out[from].entry(to).or_insert(0.0);
        *e = e.max(t.amount);
        sends[from] = true;
        receives[to] = true;
        union(&mut parent, from, to);
    }

    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut totals: BTreeMap<usize, f64> = BTreeMap::new();
    for t in &graph.transactions {
        if let Some(&from) = index.get(t.from.as_str()) {
            *totals.entry(find(&mut parent, from)).or_default() += t.amount;
        }
    }
    let mut communities: Vec<Community> = groups
        .into_iter()
        .map(|(root, members)| Community {
            accounts: members.iter().map(|&i| names[i].to_owned()).collect(),
            total_amount: round2(totals.get(&root).copied().unwrap_or(0.0)),
        })
        .collect();
    communities.sort_by_key(|c| std::cmp::Reverse(c.accounts.len()));

    let (cycles, truncated) = find_cycles(&out);
    let cycles = cycles
        .into_iter()
        .map(|c| {
            let total = c
                .iter()
                .enumerate()
                .map(|(k, &i)| out[i].get(&c[(k + 1) % c.len()]).copied().unwrap_or(0.0))
                .sum();
            Cycle {
                accounts: c.iter().map(|&i| names[i].to_owned()).collect(),
                total_amount: round2(total),
            }
        })
        .collect();
    let sinks = (0..n)
        .filter(|&i| receives[i] && !sends[i])
        .map(|i| names[i].to_owned())
        .collect();
    Ok(Analysis {
        root: graph.root.clone(),
        communities,
        cycles,
        sinks,
        truncated,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

/// Elementary directed cycles, each reported once, starting at its smallest node: from each
/// start `s`, a depth-first search through nodes greater than `s` back to `s`.
fn find_cycles(out: &[BTreeMap<usize, f64>]) -> (Vec<Vec<usize>>, bool) {
    let mut cycles = Vec::new();
    let mut steps = 0usize;
    let mut on_path = vec![false; out.len()];
    for start in 0..out.len() {
        // Stack of (node, iterator position over its successors).
        let mut path = vec![start];
        let mut cursors: Vec<usize> = vec![0];
        on_path[start] = true;
        while let Some(&node) = path.last() {
            steps += 1;
            if steps > MAX_STEPS || cycles.len() >= MAX_CYCLES {
                return (cycles, true);
            }
            let k = cursors.last().copied().unwrap_or(0);
            let next = out[node].keys().nth(k).copied();
            if let Some(c) = cursors.last_mut() {
                *c += 1;
            }
            match next {
                Some(next) if next == start => cycles.push(path.clone()),
                Some(next) if next > start && !on_path[next] && path.len() < MAX_CYCLE_LEN => {
                    on_path[next] = true;
                    path.push(next);
                    cursors.push(0);
                }
                Some(_) => {}
                None => {
                    on_path[node] = false;
                    path.pop();
                    cursors.pop();
                }
            }
        }
    }
    (cycles, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(id: &str) -> Account {
        Account {
            id: id.into(),
            name: id.into(),
            risk_level: "low".into(),
        }
    }

    fn tx(from: &str, to: &str, amount: f64) -> Transaction {
        Transaction {
            from: from.into(),
            to: to.into(),
            amount,
        }
    }

    #[test]
    fn the_seed_graph_has_one_ring_one_outflow_and_an_isolated_account() {
        let g = Subgraph {
            root: "acc-001".into(),
            accounts: [
                "acc-001",
                "acc-002",
                "acc-003",
                "acc-004",
                "acc-isolated-999",
            ]
            .map(acc)
            .to_vec(),
            transactions: vec![
                tx("acc-001", "acc-002", 1000.50),
                tx("acc-002", "acc-003", 500.00),
                tx("acc-003", "acc-001", 2000.00),
                tx("acc-002", "acc-004", 750.00),
            ],
        };
        let a = analyze(&g).expect("valid");
        assert_eq!(a.cycles.len(), 1);
        assert_eq!(a.cycles[0].accounts, ["acc-001", "acc-002", "acc-003"]);
        assert_eq!(a.cycles[0].total_amount, 3500.50);
        assert_eq!(a.sinks, ["acc-004"]);
        assert_eq!(a.communities.len(), 2);
        assert_eq!(
            a.communities[0].accounts,
            ["acc-001", "acc-002", "acc-003", "acc-004"]
        );
        assert_eq!(a.communities[0].total_amount, 4250.50);
        assert_eq!(a.communities[1].accounts, ["acc-isolated-999"]);
        assert!(!a.truncated);
    }

    #[test]
    fn every_elementary_cycle_is_found_once() {
        // a⇄b and a→b→c→a: cycles [a,b] and [a,b,c].
        let g = Subgraph {
            root: "a".into(),
            accounts: ["a", "b", "c"].map(acc).to_vec(),
            transactions: vec![
                tx("a", "b", 1.0),
                tx("b", "a", 1.0),
                tx("b", "c", 1.0),
                tx("c", "a", 1.0),
            ],
        };
        let mut cycles: Vec<_> = analyze(&g)
            .expect("valid")
            .cycles
            .into_iter()
            .map(|c| c.accounts)
            .collect();
        cycles.sort();
        assert_eq!(cycles, [vec!["a", "b"], vec!["a", "b", "c"]]);
    }

    #[test]
    fn a_dense_graph_is_cut_off_and_says_so() {
        let ids: Vec<String> = (0..30).map(|i| format!("n{i:02}")).collect();
        let mut transactions = Vec::new();
        for a in &ids {
            for b in &ids {
                if a != b {
                    transactions.push(tx(a, b, 1.0));
                }
            }
        }
        let g = Subgraph {
            root: ids[0].clone(),
            accounts: ids.iter().map(|i| acc(i)).collect(),
            transactions,
        };
        let a = analyze(&g).expect("valid");
        assert!(a.truncated);
        assert_eq!(a.cycles.len(), MAX_CYCLES);
    }

    #[test]
    fn unknown_accounts_are_rejected() {
        let g = Subgraph {
            root: "a".into(),
            accounts: vec![acc("a")],
            transactions: vec![tx("a", "zz", 1.0)],
        };
        assert_eq!(
            analyze(&g),
            Err(InvalidSubgraph::UnknownAccount("zz".into()))
        );
    }
}

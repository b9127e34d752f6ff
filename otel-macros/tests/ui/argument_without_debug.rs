struct Pool;

#[otel_core::traced]
fn query(pool: &Pool, sql: &str) -> usize {
    let _ = pool;
    sql.len()
}

fn main() {}

//! The limit of writing rows into Postgres: COPY FROM STDIN (binary) over the server's
//! Unix socket, in one durable transaction, set beside a benchmark's own writes.

use std::str::FromStr as _;
use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolCopyExt as _};
use sqlx::{Connection as _, PgConnection};

/// Rows of a table (or query) read out in COPY binary format, untimed.
pub async fn read_out(pool: &PgPool, source: &str) -> anyhow::Result<bytes::Bytes> {
    let stream = pool.copy_out_raw(&format!("COPY {source} TO STDOUT (FORMAT binary)")).await?;
    Ok(axum::body::to_bytes(axum::body::Body::from_stream(stream), usize::MAX).await?)
}

/// Rows in COPY binary format written into each `(table, rows)` in one transaction whose
/// commit is part of the time. Returns the seconds taken in all, and those of each table.
pub async fn write_in(pool: &PgPool, url: &str, data: &[(String, bytes::Bytes)]) -> anyhow::Result<(f64, Vec<f64>)> {
    // Over the server's Unix socket: sqlx flushes CopyData and CopyDone separately, and on
    // loopback TCP Nagle's algorithm holds the second for the server's delayed ACK (40 ms a
    // table). The services' own connections are TCP, so if anything this favours COPY.
    let (socket,): (String,) = sqlx::query_as("SHOW unix_socket_directories").fetch_one(pool).await?;
    let socket = socket.split(',').next().unwrap_or_default().trim().to_owned();
    let options = PgConnectOptions::from_str(url)?.socket(socket);
    let mut conn = PgConnection::connect_with(&options).await?;
    let at = Instant::now();
    let mut tx = conn.begin().await?;
    let mut each = Vec::new();
    for (table, rows) in data {
        let started = Instant::now();
        let mut into = tx.copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT binary)")).await?;
        into.send(rows.as_ref()).await?;
        into.finish().await?;
        each.push(started.elapsed().as_secs_f64());
    }
    tx.commit().await?;
    let seconds = at.elapsed().as_secs_f64();
    conn.close().await?;
    Ok((seconds, each))
}

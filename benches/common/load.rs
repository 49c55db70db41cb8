//! Load generation shared by the benchmarks: `total` requests from
//! `concurrency` tasks, with latency percentiles and throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Figures {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub rps: f64,
}

/// Sends `total` requests from `concurrency` tasks; every answer must be
/// 200.
pub async fn measure<F, Fut>(total: usize, concurrency: usize, send: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = reqwest::StatusCode> + Send,
{
    let send = Arc::new(send);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (send, next) = (send.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let t = Instant::now();
                    let status = send(i).await;
                    assert_eq!(status, reqwest::StatusCode::OK);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Figures {
        p50: pct(0.50),
        p99: pct(0.99),
        max: *all.last().expect("samples"),
        rps: all.len() as f64 / elapsed.as_secs_f64(),
    }
}

pub fn report(name: &str, total: usize, concurrency: usize, f: &Figures) {
    println!(
        "{name:<28} n={total:<6} c={concurrency:<4} p50={:>8.2?} p99={:>8.2?} max={:>8.2?} {:>9.0} req/s",
        f.p50, f.p99, f.max, f.rps
    );
}

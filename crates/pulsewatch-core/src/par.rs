//! The one parallel map: items spread over the machine's cores on scoped threads, results in
//! input order. A panic in `f` is caught and reported with the item it happened on; no result
//! is ever silently dropped. Used by the corpus evaluation and the engine's batch forecasts.
//! (Written by hand: it is twenty lines over `std::thread::scope`, not worth a rayon pool.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A worker panicked on item `index`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("a worker panicked on item {index}: {message}")]
pub struct WorkerPanic {
    pub index: usize,
    pub message: String,
}

/// Worker threads for `n` items: the available cores, at most `n`, at least 1.
pub fn threads_for(n: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n.max(1))
}

/// Maps `f` over `items` in parallel; the results in input order, or the first panic.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Result<Vec<R>, WorkerPanic> {
    let n = items.len();
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    let failed: Mutex<Option<WorkerPanic>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads_for(n) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    match catch_unwind(AssertUnwindSafe(|| f(&items[i]))) {
                        Ok(r) => {
                            if let Ok(mut o) = out.lock() {
                                o[i] = Some(r);
                            }
                        }
                        Err(p) => {
                            let message = p
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| p.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "non-text panic".into());
                            if let Ok(mut fl) = failed.lock()
                                && fl.is_none()
                            {
                                *fl = Some(WorkerPanic { index: i, message });
                            }
                            // Stop handing out work: the run has failed.
                            next.store(n, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(p) = failed.into_inner().ok().flatten() {
        return Err(p);
    }
    let out = out.into_inner().map_err(|_| WorkerPanic {
        index: 0,
        message: "result lock poisoned".into(),
    })?;
    out.into_iter()
        .enumerate()
        .map(|(index, r)| {
            r.ok_or(WorkerPanic {
                index,
                message: "no result".into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_input_order() {
        let items: Vec<u64> = (0..1000).collect();
        let out = map(&items, |x| x * 2).expect("no panic");
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_worker_is_reported_with_its_item() {
        let items: Vec<u64> = (0..50).collect();
        let err = map(&items, |&x| {
            if x == 17 {
                panic!("bad item {x}");
            }
            x
        })
        .expect_err("item 17 panics");
        assert_eq!(err.index, 17);
        assert!(err.message.contains("bad item 17"), "{err}");
    }
}

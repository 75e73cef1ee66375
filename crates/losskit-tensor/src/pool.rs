//! Running a whole computation on rayon's pool.
//!
//! A parallel loop started from a thread outside rayon's pool hands its work to the pool and puts the calling thread
//! to sleep until the loop is done: two wake-ups and two context switches per loop, tens of microseconds. A loss or
//! a sampler runs a dozen or more such loops per call, which on small inputs costs as much as the work itself
//! (measured: multi-similarity at 512×128 took 1.33 ms per call from the main thread, 0.94 ms on a worker, 2
//! threads). [`on_worker`] moves the whole computation onto a worker once; its loops then split their work from that
//! worker's own queue.

/// Runs `op` on a worker thread of the current rayon pool (at once when the calling thread already is one) and
/// returns its result. Results do not change: only which thread starts the work does.
pub fn on_worker<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() { op() } else { rayon::scope(|_| op()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_worker_of_the_current_pool() {
        assert!(rayon::current_thread_index().is_none());
        assert!(on_worker(rayon::current_thread_index).is_some());
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let (inside, threads) =
            pool.install(|| on_worker(|| (rayon::current_thread_index(), rayon::current_num_threads())));
        assert!(inside.is_some());
        assert_eq!(threads, 3);
        let borrowed = [1, 2, 3];
        assert_eq!(on_worker(|| borrowed.iter().sum::<i32>()), 6);
    }
}

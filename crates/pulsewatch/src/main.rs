/// mimalloc instead of glibc's malloc: the engine frees and reallocates every series' strings
/// and points each poll, and glibc's per-thread arenas keep those pages resident (see
/// the README, "Fleet scale", for the figures).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> color_eyre::Result<std::process::ExitCode> {
    // candle (lstm-ae) re-reads /proc/cpuinfo on every matrix multiply unless rayon's thread
    // count is set, which costs ~40 % of a fit; pin it to the core count before any thread starts.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: nothing else runs yet, so no other thread reads the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    pulsewatch::cli::main()
}

//! Sources: where live series come from. Each is a tokio task sending [`source::SourceEvent`]s
//! to the engine: [`replay`] (the NAB corpus or demo data streamed as if live), [`promql`]
//! (Prometheus `query_range` polls) and [`host`] (this machine's CPU, memory and network).
//! [`fetch`] downloads the NAB corpus (`pulsewatch fetch-nab`).

pub mod fetch;
pub mod host;
pub mod promql;
pub mod replay;
pub mod source;

//! Ingest: where series come from.
//!
//! * [`nab`]: the NAB corpus on disk, and [`fetch`] its downloader.
//! * Live sources, each a tokio task sending [`source::SourceEvent`]s to the engine:
//!   [`replay`] (the NAB corpus streamed as if live), [`promql`] (Prometheus `query_range`
//!   polls) and [`host`] (this machine's CPU, memory and network).

pub mod demo;
pub mod fetch;
pub mod host;
pub mod nab;
pub mod promql;
pub mod replay;
pub mod source;

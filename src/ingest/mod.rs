//! Ingest: where series come from. Today the NAB corpus on disk ([`nab`]) and its downloader
//! ([`fetch`]).

pub mod fetch;
pub mod nab;

//! pulsewatch-core's integration tests, in one binary: the NAB reader and scorer against NAB's
//! published results, detector causality, and the Isolation Forest and LSTM autoencoder.

mod detector_causality;
mod fuzz_properties;
mod isolation_forest;
#[cfg(feature = "lstm")]
mod lstm_ae;
mod nab_reader;
mod nab_scorer;

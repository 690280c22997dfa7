//! Protocol front ends: each turns its wire messages into calls of the core vocabulary
//! and the results back into its wire format. Per-connection protocol state lives here.

pub mod qga;

//! Integration tests of losskit-losses (one binary, so linking happens once).
//!
//! * `torch`: frozen PyTorch/torchvision values and gradients (fixtures/losses.json, written by
//!   tools/fixtures/gen_losses.py), in f64 and f32.
//! * `oracle`: plain-loop transcriptions of each formula, bypassing the shared drivers.
//! * `registry`: the registry's own rules (names, parameters, papers, order).
//! * `suites`: what every registered loss must satisfy, iterating over `LOSSES` (gradcheck, bad input, extreme
//!   input, reductions, weights, permutation, precision, thread-count determinism).
//! * `identities`: loss-specific identities (shift invariance, zero-sum gradients, focal γ = 0 ≡ cross-entropy, ...).

mod classification;
mod classification_b;
mod common;
mod episodic;
mod identities;
mod metric_learning;
mod metric_learning_b;
mod metrix;
mod oracle;
mod registry;
mod suites;
mod torch;

//! Integration tests of `losskit-samplers` (one binary): imbalanced-learn / scikit-learn fixtures and invariants.

mod class_weight;
mod common;
mod invariants;
mod knn;
mod smote;
mod strategy;
mod weights;

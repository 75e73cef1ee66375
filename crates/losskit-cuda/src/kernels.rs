//! CUDA C kernel sources, compiled by NVRTC at first use (see [`crate::Gpu`]).

static SOURCES: &[(&str, &str)] = &[
    ("cross_entropy", include_str!("kernels/cross_entropy.cu")),
    ("softmax_family", include_str!("kernels/softmax_family.cu")),
    ("binary", include_str!("kernels/binary.cu")),
    ("pairwise", include_str!("kernels/pairwise.cu")),
    ("knn", include_str!("kernels/knn.cu")),
    ("linear_ce", include_str!("kernels/linear_ce.cu")),
    ("anyloss", include_str!("kernels/anyloss.cu")),
    ("train", include_str!("kernels/train.cu")),
];

/// Every kernel file as `(name, CUDA C source)`, so a test can compile each one with NVRTC without a GPU.
pub fn kernel_sources() -> &'static [(&'static str, &'static str)] {
    SOURCES
}

pub(crate) fn source(name: &str) -> Option<&'static str> {
    SOURCES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

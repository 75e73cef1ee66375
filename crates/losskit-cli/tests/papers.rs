//! Every registered loss and sampler names a paper key that `docs/papers.md` documents, so the paper → API map
//! cannot fall behind the registries.

fn papers() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/papers.md")).expect("docs/papers.md")
}

#[test]
fn every_loss_and_sampler_paper_key_is_in_papers_md() {
    let doc = papers();
    let mut missing = Vec::new();
    for e in losskit::losses::LOSSES {
        if !doc.contains(&format!("`{}`", e.paper)) {
            missing.push(format!("loss {} -> {}", e.name, e.paper));
        }
    }
    for e in losskit::samplers::SAMPLERS {
        if !doc.contains(&format!("`{}`", e.paper)) {
            missing.push(format!("sampler {} -> {}", e.name, e.paper));
        }
    }
    assert!(missing.is_empty(), "paper keys missing from docs/papers.md: {missing:?}");
    assert!(losskit::samplers::SAMPLERS.len() >= 2 && losskit::losses::LOSSES.len() >= 3);
}

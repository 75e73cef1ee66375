//! `cargo xtask publish-plan`: the publishable crates in the order `cargo publish` must take them, with manifest
//! checks (description, license, repository).

use anyhow::Result;

use crate::util;

pub fn run(args: &[String]) -> Result<bool> {
    if let Some(a) = args.first() {
        anyhow::bail!("cargo xtask publish-plan takes no arguments (got {a:?})");
    }
    let packages = util::workspace()?;
    // Dev-dependencies with a version must exist on the registry too, so they count when they do not form a cycle.
    let order = util::dependency_order(&packages, &["normal", "build", "dev"])
        .or_else(|_| util::dependency_order(&packages, &["normal", "build"]))?;
    let mut ok = true;
    let mut step = 0;
    println!("publish order:");
    for p in order.iter().filter(|p| !p.unpublished) {
        step += 1;
        let mut problems = Vec::new();
        if p.description.as_deref().is_none_or(|d| d.trim().is_empty()) {
            problems.push("no description");
        }
        if p.license.as_deref().is_none_or(|l| l.trim().is_empty()) && p.license_file.is_none() {
            problems.push("no license or license-file");
        }
        if p.repository.as_deref().is_none_or(|r| r.trim().is_empty()) {
            problems.push("no repository");
        }
        let status = if problems.is_empty() { "ok".to_string() } else { format!("MISSING: {}", problems.join(", ")) };
        ok &= problems.is_empty();
        println!("  {step}. {} {}  [{status}]", p.name, p.version);
    }
    let skipped: Vec<&str> = order.iter().filter(|p| p.unpublished).map(|p| p.name.as_str()).collect();
    if !skipped.is_empty() {
        println!("not published (publish = false): {}", skipped.join(", "));
    }
    if !ok {
        println!("some manifests lack required fields");
    }
    Ok(ok)
}

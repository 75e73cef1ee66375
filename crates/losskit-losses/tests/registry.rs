//! The registry's rules: unique kebab-case names in the documented order, snake_case parameters whose defaults are
//! in range, a paper key present in docs/papers.md with a full reference, forms matching the family.

use losskit_losses::{Error, Family, LOSSES, Range, registry};

fn kebab(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

fn snake(s: &str) -> bool {
    !s.is_empty()
        && s.split('_').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

#[test]
fn foundation_losses_come_first_in_order() {
    let names: Vec<&str> = LOSSES.iter().map(|e| e.name).collect();
    assert!(names.len() >= 3);
    assert_eq!(&names[..3], ["cross-entropy", "binary-cross-entropy", "focal"]);
}

#[test]
fn names_are_unique_kebab_case_and_found() {
    for (i, e) in LOSSES.iter().enumerate() {
        assert!(kebab(e.name), "{}", e.name);
        assert!(LOSSES[..i].iter().all(|o| o.name != e.name), "duplicate {}", e.name);
        assert_eq!(registry::find(e.name).map(|f| f.name), Ok(e.name));
    }
    assert!(matches!(registry::find("no-such-loss"), Err(Error::UnknownName { kind: "loss", .. })));
}

#[test]
fn parameters_are_snake_case_with_defaults_in_range() {
    for e in LOSSES {
        for (i, p) in e.params.iter().enumerate() {
            assert!(snake(p.name), "{}: {}", e.name, p.name);
            assert!(p.name != "reduction", "{}: reduction is implicit", e.name);
            assert!(e.params[..i].iter().all(|o| o.name != p.name), "{}: duplicate {}", e.name, p.name);
            assert!(!p.help.is_empty(), "{}: {} has no help", e.name, p.name);
            if p.range == Range::Vector {
                assert_eq!(p.default, "none", "{}: vector {} defaults to none", e.name, p.name);
                continue;
            }
            // Giving the default explicitly must parse and build exactly like leaving it out.
            let pairs = [(p.name.to_string(), p.default.to_string())];
            let params = e.params(&pairs).unwrap_or_else(|err| panic!("{}: default of {}: {err}", e.name, p.name));
            (e.build)(&params).unwrap_or_else(|err| panic!("{}: default of {}: {err}", e.name, p.name));
        }
        e.build_default().unwrap_or_else(|err| panic!("{}: {err}", e.name));
    }
}

#[test]
fn papers_are_listed_in_docs() {
    let papers =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/papers.md")).expect("docs/papers.md");
    for e in LOSSES {
        assert!(
            papers.contains(&format!("| `{}` |", e.paper)),
            "{}: paper key {} not in docs/papers.md",
            e.name,
            e.paper
        );
        assert!(e.reference.contains("(20") || e.reference.contains("(19"), "{}: reference has no year", e.name);
        assert!(!e.summary.is_empty());
    }
    let key = |name: &str| registry::find(name).map(|e| e.paper);
    assert_eq!(key("cross-entropy"), Ok("pytorch"));
    assert_eq!(key("binary-cross-entropy"), Ok("pytorch"));
    assert_eq!(key("focal"), Ok("lin2017focal"));
    assert!(registry::find("focal").is_ok_and(|e| e.reference.contains("arXiv:1708.02002")));
}

#[test]
fn built_forms_match_the_family() {
    for e in LOSSES {
        let b = e.build_default().unwrap_or_else(|err| panic!("{}: {err}", e.name));
        match e.family {
            Family::Classification => assert!(b.class.is_some(), "{}", e.name),
            Family::Binary => assert!(b.binary.is_some(), "{}", e.name),
            _ => {}
        }
    }
    let focal = registry::find("focal").and_then(|e| e.build_default()).expect("focal");
    assert!(focal.class.is_some() && focal.binary.is_some(), "focal builds both forms");
}

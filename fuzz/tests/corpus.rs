//! The checked-in fuzz corpora, replayed through the properties on the stable toolchain: every
//! seed and every input the fuzzers kept holds its property, in CI without nightly too.

#[test]
fn every_corpus_input_holds_its_property() {
    // Proves each fuzz target's property holds on its whole corpus (and that each corpus has
    // inputs: an empty folder would make this test vacuous).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, property) in tpw_fuzz::TARGETS {
        let folder = root.join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
        inputs.sort();
        assert!(!inputs.is_empty(), "the {target} corpus is empty");
        for input in inputs {
            let data = std::fs::read(&input)
                .unwrap_or_else(|error| panic!("{}: {error}", input.display()));
            let outcome = std::panic::catch_unwind(|| property(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} breaks the property",
                input.display()
            );
        }
    }
}
